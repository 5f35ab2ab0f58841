"""Built-in end-of-hold chimes, synthesized from decaying partials so that
voiceguide ships no audio assets and every machine renders identical samples."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from voiceguide.units import SAMPLE_RATE

# Leaves headroom so the caller can balance chimes against speech without clipping.
_PEAK = 10 ** (-3 / 20)
# The timeline treats the array length as the audible length, so cut at -60 dBFS.
_TAIL_FLOOR = 10 ** (-60 / 20)
# Past 100 dB below the whole chord a partial is under one int16 step, so it is
# not worth synthesizing; this keeps the long gong cheap.
_MODE_FLOOR = 1e-5
_TAIL_FADE_S = 0.01
_FULL_SCALE = 32767

# A mode is (frequency Hz, amplitude, decay time constant s, beat Hz).  A non-zero
# beat splits the mode into a slightly detuned pair, the shimmer of a real bell.
Mode = tuple[float, float, float, float]


def _modes(
    duration: float,
    modes: Sequence[Mode],
    glide: float = 0.0,
    glide_time: float = 1.0,
) -> np.ndarray:
    """Sum exponentially decaying sines.

    ``glide`` raises every partial's initial pitch by that fraction, relaxing
    with ``glide_time``: the pitch sag of a struck gong or block.
    """
    t = np.arange(round(duration * SAMPLE_RATE)) / SAMPLE_RATE
    # Integrated instantaneous frequency f * (1 + glide * exp(-t / glide_time)).
    warped = t - glide * glide_time * np.expm1(-t / glide_time)
    floor = _MODE_FLOOR * sum(amp for _, amp, _, _ in modes)
    out = np.zeros(t.size)
    # Each partial is worked out in these, in place: the same sums, without new arrays for every step.
    cycles, decay = np.empty(t.size), np.empty(t.size)
    tone, other = np.empty(t.size, np.float32), np.empty(t.size, np.float32)
    for freq, amp, tau, beat in modes:
        n = min(t.size, int(np.ceil(tau * np.log(amp / floor) * SAMPLE_RATE)))
        _sine(warped[:n], freq, cycles[:n], tone[:n])
        if beat:
            _sine(warped[:n], freq + beat, cycles[:n], other[:n])
            np.add(np.multiply(tone[:n], 0.7, out=tone[:n]), np.multiply(other[:n], 0.3, out=other[:n]), out=tone[:n])
        np.exp(np.divide(np.negative(t[:n], out=decay[:n]), tau, out=decay[:n]), out=decay[:n])
        out[:n] += np.multiply(np.multiply(decay[:n], amp, out=decay[:n]), tone[:n], out=decay[:n])
    return out


def _sine(time: np.ndarray, freq: float, cycles: np.ndarray, out: np.ndarray) -> None:
    """sin(2 pi freq time) into ``out`` (single precision), using ``cycles`` (double) as room to work in.

    The phase is counted in double precision, in cycles, and only what is
    left of the cycle it is in (half a cycle either way) goes to the sine:
    single precision is exact to 1e-7 there, 140 dB down, and its sine is
    some twenty times quicker than one of a phase of thousands of radians.
    """
    np.multiply(time, freq, out=cycles)
    np.subtract(cycles, np.rint(cycles), out=cycles)
    np.multiply(cycles, 2 * np.pi, out=out, casting="same_kind")
    np.sin(out, out=out)


def _envelope(
    x: np.ndarray, attack: float, impact: float = 0.0, impact_time: float = 1.0
) -> np.ndarray:
    """Shape the onset: an exponential rise with time constant ``attack``, and an
    ``impact`` boost that dies with ``impact_time``, since the moment of the strike
    is louder than the ring that follows it."""
    t = np.arange(x.size) / SAMPLE_RATE
    return x * -np.expm1(-t / attack) * (1.0 + impact * np.exp(-t / impact_time))


def _burst(seed: int, duration: float, time_constant: float) -> np.ndarray:
    """A fixed-seed noise burst: the contact noise of a mallet."""
    n = round(duration * SAMPLE_RATE)
    noise = np.random.default_rng(seed).uniform(-1.0, 1.0, n)
    return noise * np.exp(-np.arange(n) / (time_constant * SAMPLE_RATE))


def _mix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    out = a.copy()
    out[: b.size] += b[: out.size]
    return out


def _bell() -> np.ndarray:
    f0 = 740.0
    # Ratios of a tuned church bell: hum, prime, minor-third tierce, quint,
    # nominal and the inharmonic upper partials that make it sound struck.
    body = _modes(
        3.8,
        [
            (0.5 * f0, 0.45, 0.75, 0.9),
            (1.0 * f0, 1.00, 0.55, 1.7),
            (1.19 * f0, 0.55, 0.38, 0.0),
            (1.5 * f0, 0.30, 0.30, 2.3),
            (2.0 * f0, 0.50, 0.24, 0.0),
            (2.74 * f0, 0.28, 0.14, 3.1),
            (3.76 * f0, 0.16, 0.08, 0.0),
            (5.40 * f0, 0.09, 0.04, 0.0),
        ],
    )
    # Differencing tilts the noise towards the treble, so it reads as a metallic tick.
    strike = 0.6 * np.diff(_burst(seed=1, duration=0.006, time_constant=0.0008), prepend=0.0)
    return _mix(_envelope(body, 0.0005, impact=0.5, impact_time=0.03), strike)


def _soft() -> np.ndarray:
    f0 = 480.0
    # Singing-bowl partials: strong fundamental, sparse inharmonic overtones,
    # each beating slowly so the tone wavers rather than beeps.
    body = _modes(
        4.8,
        [
            (f0, 1.00, 0.62, 1.1),
            (2.71 * f0, 0.22, 0.42, 2.3),
            (5.15 * f0, 0.05, 0.25, 0.0),
        ],
    )
    return _envelope(body, 0.04)


def _gong() -> np.ndarray:
    f0 = 130.0
    ratios = (1.0, 1.58, 2.13, 2.41, 2.92, 3.37, 3.85, 4.46, 5.03, 5.62, 6.27, 7.05)
    beats = (0.45, 0.8, 1.3)
    modes: list[Mode] = [
        # Energy and sustain both fall with frequency, leaving a low hum.
        (r * f0, r**-0.8, 1.2 * r**-0.9, beats[i] if i < len(beats) else 0.0)
        for i, r in enumerate(ratios)
    ]
    body = _modes(6.2, modes, glide=0.015, glide_time=0.4)
    strike = 0.25 * _burst(seed=2, duration=0.01, time_constant=0.002)
    return _mix(_envelope(body, 0.001, impact=1.0, impact_time=0.02), strike)


def _wood() -> np.ndarray:
    body = _modes(
        0.4,
        [
            (1150.0, 1.00, 0.022, 0.0),
            (2960.0, 0.35, 0.009, 0.0),
            # The hollow body rings faintly after the knock, so it fades rather
            # than stops dead.
            (640.0, 0.02, 0.08, 0.0),
        ],
        glide=0.03,
        glide_time=0.008,
    )
    # Convolving the click with a short tone at the main mode band-limits it,
    # so the knock stays woody instead of hissing.
    kernel_t = np.arange(round(0.003 * SAMPLE_RATE)) / SAMPLE_RATE
    kernel = np.hanning(kernel_t.size) * np.sin(2 * np.pi * 1150.0 * kernel_t)
    click = np.convolve(_burst(seed=3, duration=0.002, time_constant=0.0006), kernel)
    click *= 0.5 / np.max(np.abs(click))
    return _mix(_envelope(body, 0.0003), click)


_SYNTHS: dict[str, Callable[[], np.ndarray]] = {
    "bell": _bell,
    "soft": _soft,
    "gong": _gong,
    "wood": _wood,
}


def _finish(x: np.ndarray) -> np.ndarray:
    x = x * (_PEAK / np.max(np.abs(x)))
    x = x[: np.flatnonzero(np.abs(x) >= _TAIL_FLOOR)[-1] + 1]
    # The cut lands mid-cycle; a short fade takes it to zero so it cannot click.
    fade = min(round(_TAIL_FADE_S * SAMPLE_RATE), x.size)
    x[x.size - fade :] *= 0.5 + 0.5 * np.cos(np.linspace(0.0, np.pi, fade))
    return np.round(x * _FULL_SCALE).astype(np.int16)


def synthesize(name: str) -> np.ndarray:
    """Mono int16 samples at SAMPLE_RATE for a built-in chime, peaking at -3 dBFS.

    ``"none"`` gives an empty array; the result ends where the sound fades
    below -60 dBFS, so its length is its audible length.
    """
    if name == "none":
        return np.zeros(0, dtype=np.int16)
    try:
        synth = _SYNTHS[name]
    except KeyError:
        raise ValueError(f"unknown chime {name!r}") from None
    return _finish(synth())
