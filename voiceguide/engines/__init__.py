"""Speech engines behind one small interface, looked up by name.

A new engine is a new Engine subclass in ENGINES, not a new branch in the
renderer. An engine checks what it needs when created and says what to install.
"""

from __future__ import annotations

import difflib
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from voiceguide.errors import InputError, VoiceError


@dataclass(frozen=True)
class VoiceInfo:
    id: str
    name: str
    languages: tuple[str, ...]


class Engine(ABC):
    """Turns one line of text into a WAV file.

    ``synthesize`` may write any sample rate and channel count; the speech
    layer converts, checks, trims and caches what it gets.
    """

    name: ClassVar[str]

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

    def resolve_voice(self, wanted: str | None) -> str:
        """The voice id for ``wanted``: an id, the last part of an id, a language or a name."""
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
        # Compare folded words, names without their "(region)", so "englsh" finds the English voices.
        candidates: dict[str, VoiceInfo] = {}
        for v in voices:
            for word in (v.id, v.id.rsplit("/", 1)[-1], v.name, v.name.split(" (")[0], *v.languages):
                candidates.setdefault(word.casefold(), v)
        close = difflib.get_close_matches(folded, list(candidates), n=8, cutoff=0.6)
        shown = dict.fromkeys(f"{_short_id(candidates[c])} ({candidates[c].name})" for c in close)
        hint = f"; close matches: {', '.join(list(shown)[:4])}" if shown else ""
        raise VoiceError(f"unknown voice '{wanted}' for engine {self.name}{hint} (see `voiceguide voices`)")


def _short_id(voice: VoiceInfo) -> str:
    return voice.id.rsplit("/", 1)[-1]


def engine_names() -> list[str]:
    return sorted(_engines())


def create_engine(name: str) -> Engine:
    """A ready engine by name; unknown names are refused with the list of valid ones."""
    engines = _engines()
    if name not in engines:
        raise InputError(f"unknown engine '{name}'; valid engines: {', '.join(sorted(engines))}")
    return engines[name]()


def _engines() -> dict[str, type[Engine]]:
    from voiceguide.engines.pyttsx3_engine import Pyttsx3Engine

    return {cls.name: cls for cls in (Pyttsx3Engine,)}
