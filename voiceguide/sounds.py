"""Chime sounds for the timeline: built-ins synthesized in code, or a person's own sound file."""

from __future__ import annotations

import numpy as np

from voiceguide import audio, chimes
from voiceguide.errors import AudioError, InputError
from voiceguide.routine import Chime

# Chimes sit below speech so an end-of-hold signal never startles.
CHIME_PEAK_DBFS = -9.0


class Sounds:
    """Samples of each chime, made once per run."""

    def __init__(self) -> None:
        self._samples: dict[tuple[str, str | None], np.ndarray] = {}

    def samples(self, chime: Chime) -> np.ndarray:
        key = (chime.name, str(chime.path) if chime.path else None)
        if key not in self._samples:
            self._samples[key] = _level(self._load(chime))
        return self._samples[key]

    def length(self, chime: Chime) -> int:
        return len(self.samples(chime))

    @staticmethod
    def _load(chime: Chime) -> np.ndarray:
        if chime.path is None:
            return chimes.synthesize(chime.name)
        try:
            samples = audio.decode(chime.path)
        except AudioError as error:
            raise InputError(f"{chime.where}: chime {error}") from None
        if not np.any(samples):
            raise InputError(f"{chime.where}: chime {chime.path}: the sound file is silent")
        return samples


def _level(samples: np.ndarray) -> np.ndarray:
    if not len(samples):
        return samples
    peak = float(np.max(np.abs(samples.astype(np.int32))))
    gain = 32767 * 10 ** (CHIME_PEAK_DBFS / 20) / peak
    return np.round(samples.astype(np.float64) * gain).astype("<i2")
