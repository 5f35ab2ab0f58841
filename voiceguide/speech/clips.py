"""Spoken clips: synthesize each distinct line once, check it, trim it, cache it.

A clip is stored as 44.1 kHz mono 16-bit WAV, trimmed to its audible speech,
keyed by everything that changes how it sounds. The timeline is planned from
the lengths of these clips and the renderer plays exactly them.

numpy and the audio modules are imported only once a clip comes back: a build
starts its engines first and loads them while the engines speak (see
api.plan_session).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import threading
import unicodedata
import wave
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from pathlib import Path
from typing import TYPE_CHECKING

from voiceguide.cache import Clip
from voiceguide.environment import Environment
from voiceguide.errors import EngineError, EngineTimeout, InputError, Location, VoiceError, printable
from voiceguide.plan.timeline import Line
from voiceguide.routine import Voice
from voiceguide.speech.engines import Engine, create_engine
from voiceguide.units import SAMPLE_RATE

if TYPE_CHECKING:
    import numpy as np

DEFAULT_VOICE = Voice(engine="pyttsx3", rate=160, volume=1.0)
# Bumped whenever clip processing changes, so old clips are not reused.
CLIP_FORMAT = 4
CLIPS = f"clips-{CLIP_FORMAT}"  # the cache's folder of spoken clips
# Speech quieter than this, relative to the clip's peak, counts as the gap around it.
TRIM_BELOW_PEAK_DB = 40.0
EDGE_FADE_MS = 4
# Seconds one clip may take before its synthesis counts as hung; a long
# paragraph on a slow machine takes a few seconds, a hung one forever.
SYNTHESIS_TIMEOUT = 60.0
# Lines that time out one after another before the engine is given up for hung: a hung line is tried again
# (a stopped worker may come back), but an engine that keeps hanging would keep a build waiting for ever.
GIVE_UP_AFTER = 3
# Seconds without a new clip after which a build says what it is waiting for.
WAITING_NOTE_AFTER = 5.0
# Free space under which a failed write is put down to a full disk.
FULL_DISK_BYTES = 1 << 20

Progress = Callable[[int, int], None]


class Speech:
    """The speech layer: engines, voice lookup, synthesis with checks, and the cache."""

    def __init__(self, environment: Environment, jobs: int | None = None, timeout: float | None = None):
        self.environment = environment
        self.cache = environment.cache
        self.jobs = max(1, jobs or os.cpu_count() or 1)
        self.timeout = timeout or SYNTHESIS_TIMEOUT
        self.synthesized = 0
        self._engines: dict[str, Engine] = {}
        self._voices: dict[tuple[str, str | None, Path | None, str | None], str] = {}
        self._clips: dict[Line, Clip] = {}
        self._speaking = threading.BoundedSemaphore(self.jobs)  # engines at work at once
        # What start began: the threads, the folder the engines write to, and each clip's future and key.
        self._pool: ThreadPoolExecutor | None = None
        self._folder: tempfile.TemporaryDirectory | None = None
        self._futures: dict[Future, str] = {}
        # Lines that timed out in a row, the error that gave the engine up, and each line being spoken now.
        self._lock = threading.Lock()
        self._timeouts = 0
        self._gave_up: EngineError | None = None
        self._now: dict[int, Line] = {}

    def engine(self, name: str, where: Location | None = None) -> Engine:
        if name not in self._engines:
            try:
                self._engines[name] = create_engine(name, self.environment)
            except InputError as error:
                raise InputError(f"{where}: {error}" if where else str(error)) from None
        return self._engines[name]

    def voice_id(self, voice: Voice) -> str:
        # A voice may be a model file named relative to the routine or profile that names it.
        base = Path(voice.voice_at.path).parent if voice.voice_at else None
        # A routine's language chooses the voice only where no voice is named.
        language = voice.language if voice.voice is None else None
        key = (voice.engine or "", voice.voice, base, language)
        if key not in self._voices:
            engine = self.engine(voice.engine or "", voice.engine_at)
            where = voice.language_at if language else voice.voice_at
            try:
                self._voices[key] = (engine.voice_for_language(language) if language
                                     else engine.resolve_voice(voice.voice, base))
            except VoiceError as error:
                raise VoiceError(f"{where}: {error}" if where else str(error)) from None
        return self._voices[key]

    def key(self, line: Line) -> str:
        voice = line.voice
        engine = self.engine(voice.engine or "", voice.engine_at)
        voice_id = self.voice_id(voice)
        parts = [CLIP_FORMAT, engine.name, engine.version(), voice_id, engine.voice_version(voice_id),
                 voice.rate, voice.volume, line.text]
        return hashlib.sha256(json.dumps(parts).encode()).hexdigest()

    def start(self, lines: list[Line]) -> None:
        """Begin speaking, in the background, the lines that have no clip yet; prepare takes the clips.

        A build starts its engines this way before it loads what the rest of
        it needs; stop ends what start began, whatever happens in between.
        """
        missing: dict[str, Line] = {}
        for line in lines:
            if line in self._clips:
                continue
            key = self.key(line)
            if key in self._futures.values():
                continue  # on its way
            clip = self.cache.clip(CLIPS, key)
            if clip is None:
                missing.setdefault(key, line)
            else:
                self._clips[line] = clip
        if not missing:
            return
        if self._pool is None or self._folder is None:
            # One folder for what the engines write: each file goes as soon as its clip is read.
            self._folder = tempfile.TemporaryDirectory(prefix=f"voiceguide-{os.getpid()}-")  # see export/leftovers.py
            # One thread more than engines at once (see _speaking): while a thread checks and trims the clip
            # it got, the next line is already being spoken, where its core would otherwise wait for that.
            self._pool = ThreadPoolExecutor(max_workers=min(self.jobs + 1, len(missing)))
        folder = Path(self._folder.name)
        # The longest lines first, so that the last to be spoken are short and the cores finish together.
        for key in sorted(missing, key=lambda key: -len(missing[key].text)):
            self._futures[self._pool.submit(self._synthesize, missing[key], folder / f"{key}.wav")] = key

    def prepare(self, lines: list[Line], progress: Progress | None = None,
                made: Callable[[Clip], None] | None = None) -> None:
        """Make sure every line has a clip: from the cache, or synthesized in parallel (see start).

        ``made`` is given each new clip as it is stored, while the next ones are still being spoken.
        """
        self.start(lines)
        if self._futures:
            try:
                done, total = 0, len(self._futures)
                if progress:
                    progress(done, total)
                # Each clip is taken as soon as it is ready; a long wait for the next is said once.
                waiting, noted = set(self._futures), False
                while waiting:
                    ready, waiting = wait(waiting, timeout=WAITING_NOTE_AFTER, return_when=FIRST_COMPLETED)
                    if not ready and not noted:
                        self._note_waiting()
                        noted = True
                    for future in ready:
                        clip = self.cache.put_clip(CLIPS, self._futures[future], future.result())
                        if made:
                            made(clip)
                        self.synthesized += 1
                        done += 1
                        noted = False
                        if progress:
                            progress(done, total)
            finally:
                self.stop()
        for line in lines:
            if line not in self._clips:
                self._clips[line] = self._stored(line)

    def stop(self) -> None:
        """End what start began: lines not yet begun are dropped, those being spoken are waited for."""
        if self._pool is None:
            return
        for future in self._futures:
            future.cancel()
        self._pool.shutdown(wait=True)
        for engine in self._engines.values():
            engine.close()
        if self._folder is not None:
            self._folder.cleanup()
        self._pool, self._folder = None, None
        self._futures = {}

    def _stored(self, line: Line) -> Clip:
        clip = self.cache.clip(CLIPS, self.key(line))
        if clip is None:  # deleted from the cache since it was made: made again
            self.prepare([line])
            return self._clips[line]
        return clip

    def clip(self, line: Line) -> Clip:
        if line not in self._clips:
            self.prepare([line])
        return self._clips[line]

    def length(self, line: Line) -> int:
        return self.clip(line).length

    def _synthesize(self, line: Line, path: Path) -> np.ndarray:
        """One clip, written by the engine to ``path`` and checked; one retry, then an error that names the text."""
        voice = line.voice
        engine = self.engine(voice.engine or "")
        voice_id = self.voice_id(voice)
        error: EngineError | None = None
        for _ in range(2):
            try:
                with self._speaking:
                    if self._gave_up is not None:
                        raise self._gave_up
                    with self._lock:
                        self._now[threading.get_ident()] = line
                    try:
                        engine.synthesize(line.text, voice_id, voice.rate or 0, voice.volume or 1.0, path, self.timeout)
                    except EngineTimeout as failure:
                        self._timed_out(line, failure)  # while this line still holds its engine: see _gave_up
                        raise
                    finally:
                        with self._lock:
                            self._now.pop(threading.get_ident(), None)
                clip = _checked(line, path, self.environment)
                with self._lock:
                    self._timeouts = 0
                return clip
            except EngineError as failure:
                if failure is self._gave_up:
                    raise
                error = _full_disk(failure, path.parent)
            finally:
                path.unlink(missing_ok=True)
        raise EngineError(f'{_where(line)}could not speak "{_short(printable(line.text))}": {error or "unknown failure"}')

    def _timed_out(self, line: Line, failure: EngineTimeout) -> None:
        """Count a line that timed out; once GIVE_UP_AFTER have in a row, the engine is given up for hung: every
        line still to be spoken fails at once with the error raised here."""
        with self._lock:
            self._timeouts += 1
            if self._timeouts >= GIVE_UP_AFTER and self._gave_up is None:
                self._gave_up = EngineError(
                    f'{_where(line)}could not speak "{_short(printable(line.text))}": {failure}, as with the '
                    f"{self._timeouts - 1} tries before it: the engine seems to hang, giving up")
            if self._gave_up is not None:
                raise self._gave_up

    def _note_waiting(self) -> None:
        """Say, once a wait has gone on a while, which lines the engines are still speaking."""
        with self._lock:
            lines = list(self._now.values())
        if lines:
            engine = lines[0].voice.engine or DEFAULT_VOICE.engine
            said = ", ".join(f'"{_short(printable(line.text))}"' for line in lines)
            print(f"note: still waiting for {engine} to speak {said}", file=self.environment.stderr, flush=True)


def _where(line: Line) -> str:
    return f"{line.where}: " if line.where is not None else ""


def _full_disk(failure: EngineError, folder: Path) -> EngineError:
    """``failure``, or, when the disk of the folder the engine writes to is full, an error that says so: an
    engine that cannot write its file reports only that the file came out incomplete."""
    try:
        free = shutil.disk_usage(folder).free
    except OSError:
        return failure
    if free >= FULL_DISK_BYTES:
        return failure
    return EngineError(f"no room left on the disk of the temporary folder {folder} ({failure}): free some space, "
                       "or set TMPDIR to a folder on another disk")


def _checked(line: Line, path: Path, environment: Environment) -> np.ndarray:
    """The clip as 44.1 kHz mono, trimmed; refuses empty or implausibly short or long audio."""
    from voiceguide import audio

    if not path.is_file() or path.stat().st_size <= 44:
        raise EngineError("the engine wrote no audio")
    if _truncated_wav(path):
        raise EngineError("the engine wrote a truncated WAV file")
    try:
        samples = audio.decode(path, environment.tools)
    except Exception as error:
        raise EngineError(f"the engine wrote unreadable audio ({error})") from None
    samples = trim(samples)
    seconds = len(samples) / SAMPLE_RATE
    words = spoken_words(line.text)
    rate = line.voice.rate or DEFAULT_VOICE.rate or 160
    expected = words * 60 / rate
    # Generous bounds: voices differ, but a fraction of this or many times it means a broken clip.
    if seconds < min(0.15, expected / 2) or seconds < expected / 8 or seconds > expected * 6 + 3:
        raise EngineError(f"the engine wrote {seconds:.2f} s of audio for {words:g} words at {rate} words per minute")
    return samples


# Scripts written without spaces between words, and how much of a word each letter is: a Chinese character is
# a syllable, a Japanese kana a mora (both more than a word's share of time, which is what matters below); in
# Thai, Lao, Tibetan, Myanmar and Khmer a syllable is about two letters.
_UNSPACED = (((0x3040, 0x30FF), 1.0), ((0x31F0, 0x31FF), 1.0), ((0x3400, 0x4DBF), 1.0), ((0x4E00, 0x9FFF), 1.0),
             ((0xF900, 0xFAFF), 1.0), ((0xFF66, 0xFF9F), 1.0), ((0x20000, 0x3FFFF), 1.0),
             ((0x0E00, 0x0FFF), 0.5), ((0x1000, 0x109F), 0.5), ((0x1780, 0x17FF), 0.5))


def spoken_words(text: str) -> float:
    """How many words' time ``text`` takes to say, roughly, in any script.

    Words apart are counted, and a long word (or one a voice spells out,
    letter by letter, in a script it does not know) as one word for every
    four letters and marks; in scripts without spaces, letters count as
    above. It errs on the side of more words: the bounds it sets are wide.
    """
    total = 0.0
    for token in text.split():
        unspaced, other = 0.0, 0
        for char in token:
            kind, code = unicodedata.category(char)[0], ord(char)
            weight = next((share for (low, high), share in _UNSPACED if low <= code <= high), None)
            if weight is not None:
                # Letters only: a vowel sign joins the syllable of the letter it marks.
                unspaced += weight if kind in "LN" else 0.0
            elif kind in "LMN":
                other += 1
        total += unspaced + (max(1.0, other / 4) if other else 0.0)
    return max(1.0, total)


def _truncated_wav(path: Path) -> bool:
    """A WAV whose data stops before its header says: a write cut short, never to be cached."""
    try:
        with wave.open(str(path), "rb") as clip:
            frames = clip.getnframes()
            return len(clip.readframes(frames)) < frames * clip.getsampwidth() * clip.getnchannels()
    except (wave.Error, EOFError):
        return False  # not a plain PCM WAV (AIFF, float): decode() judges it


def trim(samples: np.ndarray) -> np.ndarray:
    """Cut the silence engines leave around speech (espeak-ng adds about 0.2 s at the end).

    Without this a "60 s" hold would be heard as 60.2 s and speech would not sit
    where the timeline says. Short fades keep the cut edges free of clicks.
    """
    import numpy as np

    if not len(samples):
        return samples
    level = np.abs(samples.astype(np.int32))
    peak = int(level.max())
    if peak == 0:
        return samples[:0]
    threshold = peak * 10 ** (-TRIM_BELOW_PEAK_DB / 20)
    loud = np.flatnonzero(level > threshold)
    clip = samples[loud[0] : loud[-1] + 1].astype("<i2")
    fade = min(len(clip) // 2, SAMPLE_RATE * EDGE_FADE_MS // 1000)
    if fade:
        ramp = np.linspace(0.0, 1.0, fade, endpoint=False)
        clip[:fade] = np.round(clip[:fade] * ramp)
        clip[-fade:] = np.round(clip[-fade:] * ramp[::-1])
    return clip


def _short(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
