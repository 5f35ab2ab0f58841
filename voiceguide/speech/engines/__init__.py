"""Speech engines behind one small interface, looked up by name.

A new engine is a new Engine subclass registered in the ``voiceguide.speech.engines``
entry-point group, not a new branch in the renderer; voiceguide's own engines
are registered there too (pyproject.toml). An engine checks what it needs when
created and says what to install.
"""

from __future__ import annotations

import functools
import importlib
import json
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from voiceguide import tools
from voiceguide.cache import Cache
from voiceguide.environment import Environment
from voiceguide.errors import EngineError, InputError, VoiceError
from voiceguide.speech.engines import languages

ENTRY_POINT_GROUP = "voiceguide.engines"  # the plugins' entry-point group, a public name
# The engine `voiceguide voices` lists when asked for none.
DEFAULT_ENGINE = "pyttsx3"


@dataclass(frozen=True)
class VoiceInfo:
    id: str
    name: str
    languages: tuple[str, ...]


class Engine(ABC):
    """Turns one line of text into a WAV file.

    ``synthesize`` may write any sample rate and channel count; the speech
    layer converts, checks, trims and caches what it gets. The speech layer
    calls ``synthesize`` from several threads at once.
    """

    name: ClassVar[str]

    def __init__(self, environment: Environment) -> None:
        """Check what the engine needs (raise EngineUnavailable naming what to install) and get ready.
        ``environment`` says which tools to run and where answers may be kept."""
        self.environment = environment

    @abstractmethod
    def version(self) -> str:
        """Changes whenever the same request could sound different; part of the cache key."""

    @abstractmethod
    def voices(self) -> list[VoiceInfo]:
        """The voices this engine can speak with."""

    @abstractmethod
    def default_voice(self) -> str:
        """Id of the voice used when a routine names none."""

    @abstractmethod
    def synthesize(self, text: str, voice: str, rate: int, volume: float, path: Path, timeout: float) -> None:
        """Write ``text`` spoken by voice id ``voice`` to the WAV file ``path``.

        ``rate`` is in words per minute and ``volume`` from 0 to 1. Raises
        EngineError on failure, and on a synthesis that outlasts ``timeout``.
        """

    def close(self) -> None:
        """Let go of what synthesize keeps between lines (processes kept running); it may be called again after."""

    def voice_version(self, voice: str) -> str:
        """Changes whenever voice id ``voice`` could sound different (its model file replaced); part of the cache key."""
        return ""

    def resolve_voice(self, wanted: str | None, base: Path | None = None) -> str:
        """The voice id for ``wanted``: an id, the last part of an id, a language (its code, or its name in
        English: the main country's voice first), or a voice's name.

        ``base`` is the folder of the file that asked for the voice, for engines
        whose voices may be files named relative to it.
        """
        if not wanted:
            return self.default_voice()
        voices = self.voices()
        folded = wanted.casefold()
        for match in (
            lambda v: v.id.casefold() == folded,
            lambda v: v.id.casefold().rsplit("/", 1)[-1] == folded,
            lambda v: folded in (lang.casefold() for lang in v.languages),
            lambda v: v.name.casefold() == folded,
        ):
            found = [v for v in voices if match(v)]
            if found:
                return found[0].id
        # A language's name in English ("French"): its voices, the main country's first.
        spoken = [(rank, index, v) for index, v in enumerate(voices)
                  if (rank := languages.speaks(wanted, v.name, v.languages)) is not None]
        if spoken:
            return min(spoken, key=lambda found: found[:2])[2].id
        # Compare folded words, names without their "(region)", so "englsh" finds the English voices.
        candidates: dict[str, VoiceInfo] = {}
        for v in voices:
            for word in (v.id, v.id.rsplit("/", 1)[-1], v.name, v.name.split(" (")[0], *v.languages):
                candidates.setdefault(word.casefold(), v)
        import difflib

        close = difflib.get_close_matches(folded, list(candidates), n=8, cutoff=0.6)
        shown = dict.fromkeys(f"{_short_id(candidates[c])} ({candidates[c].name})" for c in close)
        hint = f"; close matches: {', '.join(list(shown)[:4])}" if shown else ""
        raise VoiceError(f"unknown voice '{wanted}' for engine {self.name}{hint} (see `{self.voices_command()}`)")

    def voice_for_language(self, code: str) -> str:
        """The voice id for a routine that gives a `language` and names no voice: the voice of this engine that
        speaks it best (the main country's first, or the one of the code's country: pt-br)."""
        spoken = [(rank, index, v) for index, v in enumerate(self.voices())
                  if (rank := languages.speaks_code(code, v.languages)) is not None]
        if spoken:
            return min(spoken, key=lambda found: found[:2])[2].id
        raise VoiceError(f"engine {self.name} has no voice that speaks {languages.name_of(code)} ({code})"
                         f"{self.more_voices} (see `{self.voices_command()}`)")

    # How to get a voice of a language the engine has none for, after a semicolon; empty if there is no way.
    more_voices: ClassVar[str] = ""

    @classmethod
    def voices_command(cls) -> str:
        """The command that lists this engine's voices, for messages."""
        return "voiceguide voices" if cls.name == DEFAULT_ENGINE else f"voiceguide voices --engine {cls.name}"


def _short_id(voice: VoiceInfo) -> str:
    return voice.id.rsplit("/", 1)[-1]


def engine_names(environment: Environment) -> list[str]:
    return sorted(_engines(environment.cache))


def create_engine(name: str, environment: Environment) -> Engine:
    """A ready engine by name; unknown names are refused with the list of valid ones."""
    engines = _engines(environment.cache)
    if name not in engines:
        raise InputError(f"unknown engine '{name}'; valid engines: {', '.join(sorted(engines))}")
    cls = _load(engines[name])
    try:
        return cls(environment)
    except (EngineError, InputError):
        raise
    except Exception as error:  # a plugin's bug: name the plugin, not our code
        raise EngineError(f"engine '{name}' ({_origin(engines[name])}) failed to start: "
                          f"{type(error).__name__}: {error}") from error


@dataclass(frozen=True)
class _Entry:
    """An engine's entry point: its name, its object as ``module:attribute``, the package that registered it."""

    name: str
    value: str
    package: str | None


@functools.cache
def _engines(cache: Cache) -> dict[str, _Entry]:
    """Every registered engine by name; nothing is imported until an engine is created.

    The table is read from the packages' metadata once, and kept on disk
    until a package is installed, upgraded or removed (tools.installed):
    importing importlib.metadata would cost every command 40 ms.
    """
    table = cache.answer("entry-points", tools.installed(), _registered, _readable)
    found = {name: _Entry(name, value, package) for name, (value, package) in json.loads(table).items()}
    if not found:
        raise EngineError("no speech engines are registered: voiceguide's package metadata is missing "
                          "(install it with `pip install .` or `pip install -e .`)")
    return found


def _registered() -> str:
    """The engines' entry points as the packages' metadata lists them, as JSON: name -> [object, package]."""
    # Imported here: the speech worker is in this package and starts for every clip.
    from importlib import metadata

    found: dict[str, list[str | None]] = {}
    # The first registration of a name wins, as the first package on sys.path wins an import.
    for entry in metadata.entry_points(group=ENTRY_POINT_GROUP):
        dist = getattr(entry, "dist", None)
        found.setdefault(entry.name, [entry.value, getattr(dist, "name", None) if dist is not None else None])
    return json.dumps(found)


def _readable(text: str) -> bool:
    try:
        table = json.loads(text)
        return bool(table) and all(isinstance(value, str) for value, _ in table.values())
    except (ValueError, TypeError, AttributeError):
        return False


def _load(entry: _Entry) -> type[Engine]:
    """The engine class behind an entry point; a plugin that cannot load fails alone, naming itself."""
    module, _, attribute = entry.value.split("[")[0].partition(":")  # "module:attribute [extras]"
    try:
        cls = importlib.import_module(module.strip())
        for part in attribute.strip().split(".") if attribute.strip() else ():
            cls = getattr(cls, part)
    except Exception as error:
        raise EngineError(f"engine '{entry.name}' ({_origin(entry)}) cannot be loaded: "
                          f"{type(error).__name__}: {error}") from error
    if not (isinstance(cls, type) and issubclass(cls, Engine)):
        raise EngineError(f"engine '{entry.name}' ({_origin(entry)}) is not a voiceguide Engine class")
    if getattr(cls, "name", None) != entry.name:
        raise EngineError(f"engine '{entry.name}' ({_origin(entry)}) calls itself '{getattr(cls, 'name', None)}'; "
                          "the class's name must match its entry point")
    return cls


def _origin(entry: _Entry) -> str:
    """``entry``'s object and the package that registered it, as a user would look for it."""
    package = f" from package {entry.package}" if entry.package else ""
    return f"{entry.value}{package}"
