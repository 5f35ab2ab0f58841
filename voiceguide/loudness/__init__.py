"""Loudness: bring a session to a target integrated loudness without clipping.

Integrated loudness (EBU R128) gates out silence, so it depends only on the
sounds of a session and how they sit together, not on the length of its holds:
every long silence is cut short (see condensed). A Forecast predicts it for any
gains from each sound analysed once; Meter measures the session as encoded
(its MP3 frames decoded in this process); Loudness measures a mix.
A look-ahead limiter keeps the peaks that the gain raises under the ceiling.
"""

from voiceguide.loudness._energies import (
    GATE_BLOCK,
    GATE_STEP,
    LOOKAHEAD,
    SILENCE_LUFS,
    Energies,
    Loudness,
    condensed,
    integrated,
)
from voiceguide.loudness._forecast import BIN, Analyses, Binned, Forecast, laid_out
from voiceguide.loudness._peaks import CEILING_DBFS, TRUE_PEAK_LIMIT_DBTP, limit, loudness_of, true_peak
from voiceguide.loudness._periodic import Periodic

__all__ = [
    "BIN", "CEILING_DBFS", "GATE_BLOCK", "GATE_STEP", "LOOKAHEAD", "SILENCE_LUFS", "TRUE_PEAK_LIMIT_DBTP", "Analyses",
    "Periodic",
    "Binned", "Energies", "Forecast", "Loudness", "condensed", "integrated", "laid_out", "limit", "loudness_of",
    "true_peak",
]
