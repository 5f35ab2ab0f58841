"""The loudness of a sound that repeats without end: filtered once, summed anywhere."""

from __future__ import annotations

import numpy as np

from voiceguide.loudness._energies import GATE_STEP
from voiceguide.loudness._filter import _K_LENGTH, _KWeighting
from voiceguide.loudness._forecast import BIN


class Periodic:
    """The K-weighted energy of a sound repeated without end (a bed's steady period, as a player decodes it).

    The period is filtered once, in the state the filter reaches after
    hearing it go round; any stretch of the repetition is then summed per
    100 ms from running sums, never filtered again: an hour under a bed costs
    what its period does.
    """

    def __init__(self, period: np.ndarray) -> None:
        weighting = _KWeighting()
        weighted = np.zeros(0)
        for _ in range(1 + -(-_K_LENGTH // len(period))):  # until the ring of the start has died away
            weighted = np.concatenate([weighting.feed(period), weighting.flush()])
        self.length = len(period)
        # Running sums per BIN, not per sample: a few minutes of music in a few MB, and exact enough for blocks
        # of 100 ms.
        bins = np.add.reduceat(np.square(weighted, dtype=np.float32), np.arange(0, len(weighted), BIN), dtype=np.float64)
        self.sums = np.concatenate([[0.0], np.cumsum(bins)])

    @classmethod
    def of_sums(cls, sums: np.ndarray, length: int) -> Periodic:
        """The period whose running sums (``sums``, as kept from another) are known."""
        period = cls.__new__(cls)
        period.length, period.sums = length, sums
        return period

    def blocks(self, offset: int, length: int) -> np.ndarray:
        """Energy per 100 ms (GATE_STEP samples, the last block partial) of ``length`` samples of the
        repetition, from ``offset`` within the period (to the nearest BIN)."""
        edges = offset + np.append(np.arange(0, length, GATE_STEP), length)
        turns, within = np.divmod(edges, self.length)
        return np.diff(turns * self.sums[-1] + np.interp(within / BIN, np.arange(len(self.sums)), self.sums))
