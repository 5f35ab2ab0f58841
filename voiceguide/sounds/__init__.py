"""Short sounds for the timeline: built-ins synthesized in code, or a person's own sound file.

numpy and the audio modules are imported when a sound is first made: a build
starts its engines first and loads them while the engines speak (see
api.plan_session).
"""

from __future__ import annotations

import hashlib
import json
from typing import TYPE_CHECKING

from voiceguide.cache import CacheError
from voiceguide.environment import Environment
from voiceguide.errors import AudioError, InputError
from voiceguide.routine import Sound
from voiceguide.units import SAMPLE_RATE

if TYPE_CHECKING:
    import numpy as np

# Every sound is made this loud here (a sharp knock less, by the peak cap);
# rendering then sets it at a fixed distance under the speech.
CHIME_LUFS = -27.0
CHIME_PEAK_DBFS = -9.0
# Above this the MP3 encoder cuts; a sharp strike that still holds such content
# rings when it is cut, and its peak grows past what was limited before encoding.
BAND_LIMIT_HZ = 11_000
SOUND_FORMAT = 3  # bumped whenever making or levelling sounds changes, so stored ones are made again
SOUNDS = f"sounds-{SOUND_FORMAT}"  # the cache's folder of made sounds


class Sounds:
    """Samples of each sound, made once per run, and kept in the environment's cache."""

    def __init__(self, environment: Environment) -> None:
        self._samples: dict[tuple[str, str | None], np.ndarray] = {}
        self._keys: dict[tuple[str, str | None], str] = {}
        self._environment = environment

    def samples(self, sound: Sound) -> np.ndarray:
        key = (sound.name, str(sound.path) if sound.path else None)
        if key not in self._samples:
            self._samples[key] = self._made(sound)
        return self._samples[key]

    def key(self, sound: Sound) -> str:
        """What the sound is made from (for a sound file, its path, size and time), as a digest: another sound has
        another key. Taken once a run, like its samples."""
        name = (sound.name, str(sound.path) if sound.path else None)
        if name not in self._keys:
            stat = sound.path.stat() if sound.path else None
            parts = [SOUND_FORMAT, CHIME_LUFS, CHIME_PEAK_DBFS, BAND_LIMIT_HZ, sound.name, str(sound.path),
                     stat and (stat.st_size, stat.st_mtime_ns)]
            self._keys[name] = hashlib.sha256(json.dumps(["sound", *parts]).encode()).hexdigest()
        return self._keys[name]

    def _made(self, sound: Sound) -> np.ndarray:
        # Synthesizing, band-limiting and measuring a gong takes longer than reading it back.
        key = self.key(sound)
        stored = self._environment.cache.clip(SOUNDS, key)
        if stored is not None:
            try:
                return stored.samples()
            except CacheError:
                pass  # whole a moment ago, changed since (another build, a cache clear): made again
        made = _level(self._load(sound))
        if len(made):
            self._environment.cache.put_clip(SOUNDS, key, made)
        return made

    def length(self, sound: Sound) -> int:
        return len(self.samples(sound))

    def _load(self, sound: Sound) -> np.ndarray:
        import numpy as np

        from voiceguide import audio
        from voiceguide.sounds import chimes

        if sound.path is None:
            return chimes.synthesize(sound.name)
        try:
            samples = audio.decode(sound.path, self._environment.tools)
        except AudioError as error:
            raise InputError(f"{sound.where}: chime {error}") from None
        if not np.any(samples):
            raise InputError(f"{sound.where}: chime {sound.path}: the sound file is silent")
        return samples


def _level(samples: np.ndarray) -> np.ndarray:
    import numpy as np

    from voiceguide.loudness import loudness_of

    if not len(samples):
        return samples
    smooth = band_limit(samples.astype(np.float64))
    peak = float(np.max(np.abs(smooth)))
    if peak == 0:
        return samples
    at_peak = smooth * (32767 * 10 ** (CHIME_PEAK_DBFS / 20) / peak)
    gain_db = min(0.0, CHIME_LUFS - loudness_of(np.round(at_peak).astype("<i2")))
    return np.round(at_peak * 10 ** (gain_db / 20)).astype("<i2")


def band_limit(samples: np.ndarray) -> np.ndarray:
    """Remove what lies above BAND_LIMIT_HZ, with a gentle slope so nothing rings.

    The sound is padded with silence, to a length whose FFT is quick, so
    that its end does not ring into its start.
    """
    import numpy as np

    from voiceguide import audio

    size = audio.quick_length(len(samples) + SAMPLE_RATE // 10)
    spectrum = np.fft.rfft(samples, size)
    frequencies = np.fft.rfftfreq(size, 1 / SAMPLE_RATE)
    slope = np.clip((frequencies - BAND_LIMIT_HZ) / 2000, 0.0, 1.0)
    return np.fft.irfft(spectrum * np.cos(slope * np.pi / 2) ** 2, size)[: len(samples)]
