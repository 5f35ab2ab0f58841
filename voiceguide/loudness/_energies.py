"""Measuring integrated loudness (EBU R128, ITU-R BS.1770): gated energies of 100 ms sub-blocks."""

from __future__ import annotations

import math

import numpy as np

from voiceguide.loudness._filter import _K_LENGTH, _KWeighting
from voiceguide.units import SAMPLE_RATE

# A silence longer than one 400 ms gating block only adds blocks below the
# absolute gate, which the measure ignores. Cut to one block plus its remainder
# in 100 ms steps, the blocks that do hold sound are measured exactly as in the
# whole session.
GATE_BLOCK = SAMPLE_RATE * 4 // 10
GATE_STEP = SAMPLE_RATE // 10
LOOKAHEAD = SAMPLE_RATE * 10 // 1000
SILENCE_LUFS = -70.0


def condensed(silence: int) -> int:
    """How much of a silence the meter needs: all of a short one, a long one cut short (see GATE_BLOCK)."""
    return silence if silence <= GATE_BLOCK else GATE_BLOCK + (silence - GATE_BLOCK) % GATE_STEP



class Energies:
    """A sink that keeps the K-weighted energy of every 100 ms sub-block of what it is given, silences whole.

    Under a bed nothing is silent: the energies of the words and those of
    the bed are added sub-block by sub-block (see render._bed_forecast).
    """

    def __init__(self) -> None:
        self.written = 0
        self._weighting = _KWeighting()
        self._carry = np.zeros(0)  # squared samples not yet a whole 100 ms sub-block
        self._energies: list[np.ndarray] = []  # sums of squares of 100 ms sub-blocks

    def write(self, samples: np.ndarray) -> None:
        if len(samples):
            self._add(self._weighting.feed(samples))
        self.written += len(samples)

    def silence(self, count: int) -> None:
        # The filter rings on for _K_LENGTH samples; the rest of a silence weighs nothing, and is not filtered.
        ring = min(count, _K_LENGTH)
        self._add(self._weighting.feed(np.zeros(ring)))
        self._add(self._weighting.flush())
        self._add_zeros(count - ring)
        self.written += count

    def energies(self) -> np.ndarray:
        """The energy of every whole sub-block so far (a last, shorter one is left out)."""
        self._add(self._weighting.flush())
        return np.concatenate(self._energies) if self._energies else np.zeros(0)

    def _add(self, weighted: np.ndarray) -> None:
        if len(weighted):
            self._add_squared(weighted.astype(np.float64) ** 2)

    def _add_squared(self, squared: np.ndarray) -> None:
        squared = np.concatenate([self._carry, squared])
        whole = len(squared) // GATE_STEP * GATE_STEP
        self._energies.append(squared[:whole].reshape(-1, GATE_STEP).sum(axis=1))
        self._carry = squared[whole:].copy()  # a view would hold the whole array

    def _add_zeros(self, count: int) -> None:
        if count < 2 * GATE_STEP:
            self._add_squared(np.zeros(count))
            return
        head = (GATE_STEP - len(self._carry)) % GATE_STEP
        self._add_squared(np.zeros(head))  # the sub-block begun before is complete now
        whole, rest = divmod(count - head, GATE_STEP)
        self._energies.append(np.zeros(whole))
        self._carry = np.zeros(rest)


class Loudness(Energies):
    """A sink that measures integrated loudness (ITU-R BS.1770) and sample peak in this process.

    Much faster than encoding and decoding; used where a Forecast cannot
    be. Long silences are cut short as in Meter.
    """

    def __init__(self) -> None:
        super().__init__()
        self.peak = 0

    def write(self, samples: np.ndarray) -> None:
        if len(samples):
            self.peak = max(self.peak, int(np.max(np.abs(samples.astype(np.int32)))))
        super().write(samples)

    def silence(self, count: int) -> None:
        self._add(self._weighting.feed(np.zeros(condensed(count))))
        self.written += count

    def result(self) -> tuple[float, float]:
        """Integrated loudness in LUFS (SILENCE_LUFS for a silent session) and sample peak in dBFS."""
        peak = 20 * math.log10(self.peak / 32768) if self.peak else -math.inf
        return integrated(self.energies()), peak

    def abort(self) -> None:
        pass


def integrated(energies: np.ndarray) -> float:
    """Integrated loudness in LUFS of K-weighted sums of squares over consecutive 100 ms sub-blocks."""
    if len(energies) < 4:
        return SILENCE_LUFS
    # 400 ms gating blocks every 100 ms, as mean squares of full scale.
    blocks = np.convolve(energies, np.ones(4), mode="valid") / (4 * GATE_STEP * 32768.0**2)
    loud = blocks[blocks > 10 ** ((SILENCE_LUFS + 0.691) / 10)]
    if not len(loud):
        return SILENCE_LUFS
    gate = np.mean(loud) * 10 ** (-10 / 10)
    kept = loud[loud > gate]
    return max(SILENCE_LUFS, -0.691 + 10 * math.log10(float(np.mean(kept))))


