from __future__ import annotations

import subprocess
import wave
from pathlib import Path

import numpy as np
import pytest

from voiceguide.routine import BUILTIN_CHIMES
from voiceguide.sounds.chimes import SAMPLE_RATE, synthesize

SOUNDING = [name for name in BUILTIN_CHIMES if name != "none"]
FULL_SCALE = 32768.0

LENGTH_RANGE_S = {
    "bell": (2.5, 5.0),
    "soft": (2.5, 6.0),
    "gong": (4.0, 8.0),
    "wood": (0.0, 0.4),
}
# soft swells in; everything else is struck.
ONSET_S = {"bell": 0.015, "soft": 0.15, "gong": 0.015, "wood": 0.015}


def dbfs(level: float) -> float:
    return 20 * np.log10(max(level, 1e-12) / FULL_SCALE)


def peak_dbfs(x: np.ndarray) -> float:
    return dbfs(float(np.max(np.abs(x.astype(np.int32)))))


def rms_dbfs(x: np.ndarray) -> float:
    return dbfs(float(np.sqrt(np.mean(x.astype(np.float64) ** 2))))


def ms(seconds: float) -> int:
    return round(seconds * SAMPLE_RATE)


def spectrum(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    size = 1 << (int(np.ceil(np.log2(x.size))) + 1)
    mag = np.abs(np.fft.rfft(x.astype(np.float64) * np.hanning(x.size), size))
    return np.fft.rfftfreq(size, 1 / SAMPLE_RATE), mag


def spectral_peaks(x: np.ndarray, count: int = 5, floor_db: float = -40.0) -> list[float]:
    """Frequencies of the strongest local maxima, loudest first, merging peaks
    closer than 1.5 % (a detuned beating pair counts as one partial)."""
    freqs, mag = spectrum(x)
    inner = mag[1:-1]
    is_peak = (inner > mag[:-2]) & (inner >= mag[2:]) & (inner > mag.max() * 10 ** (floor_db / 20))
    candidates = np.flatnonzero(is_peak) + 1
    found: list[float] = []
    for i in candidates[np.argsort(mag[candidates])[::-1]]:
        if all(abs(freqs[i] - f) > max(15.0, 0.015 * f) for f in found):
            found.append(float(freqs[i]))
        if len(found) == count:
            break
    return found


@pytest.fixture(scope="module", params=SOUNDING)
def chime(request: pytest.FixtureRequest) -> tuple[str, np.ndarray]:
    return request.param, synthesize(request.param)


def test_builtin_names() -> None:
    assert BUILTIN_CHIMES == ("bell", "soft", "gong", "wood", "none")
    assert SAMPLE_RATE == 44100


def test_mono_int16(chime: tuple[str, np.ndarray]) -> None:
    _, x = chime
    assert x.dtype == np.int16
    assert x.ndim == 1
    assert x.size > 0


def test_deterministic(chime: tuple[str, np.ndarray]) -> None:
    name, x = chime
    again = synthesize(name)
    assert again.tobytes() == x.tobytes()


def test_peak_is_minus_3_dbfs(chime: tuple[str, np.ndarray]) -> None:
    _, x = chime
    assert abs(peak_dbfs(x) - -3.0) <= 0.2


def test_no_clipping(chime: tuple[str, np.ndarray]) -> None:
    _, x = chime
    assert np.max(np.abs(x.astype(np.int32))) < 32767


def test_length(chime: tuple[str, np.ndarray]) -> None:
    name, x = chime
    low, high = LENGTH_RANGE_S[name]
    assert low <= x.size / SAMPLE_RATE < high


def test_ends_in_silence(chime: tuple[str, np.ndarray]) -> None:
    _, x = chime
    assert peak_dbfs(x[-ms(0.05):]) < -50.0


def test_starts_with_sound(chime: tuple[str, np.ndarray]) -> None:
    name, x = chime
    window = 0.15 if name == "soft" else 0.02
    assert peak_dbfs(x[: ms(window)]) > -20.0
    assert peak_dbfs(x[: ms(0.005)]) > -40.0
    assert np.argmax(np.abs(x.astype(np.int32))) < ms(ONSET_S[name])


@pytest.mark.parametrize("name", ["bell", "soft", "gong"])
def test_rings_down(name: str) -> None:
    x = synthesize(name)
    early = rms_dbfs(x[ms(0.5) : ms(1.0)])
    late = rms_dbfs(x[-ms(0.5) :])
    assert early - late >= 20.0


def test_bell_is_inharmonic() -> None:
    peaks = spectral_peaks(synthesize("bell"), count=6, floor_db=-30.0)
    assert len(peaks) >= 3
    ratios = np.array(peaks) / min(peaks)
    assert np.any(np.abs(ratios - np.round(ratios)) > 0.05), peaks


def test_gong_is_low() -> None:
    assert spectral_peaks(synthesize("gong"), count=1)[0] < 200.0


def test_wood_centroid() -> None:
    freqs, mag = spectrum(synthesize("wood"))
    centroid = np.sum(freqs * mag) / np.sum(mag)
    assert 500.0 < centroid < 3000.0


def test_none_is_empty() -> None:
    x = synthesize("none")
    assert x.dtype == np.int16
    assert x.size == 0


def test_unknown_name_raises() -> None:
    with pytest.raises(ValueError, match="unknown chime 'chirp'"):
        synthesize("chirp")


def test_decodes_as_audio(chime: tuple[str, np.ndarray], tmp_path: Path) -> None:
    imageio_ffmpeg = pytest.importorskip("imageio_ffmpeg")
    name, x = chime
    path = tmp_path / f"{name}.wav"
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(SAMPLE_RATE)
        out.writeframes(x.astype("<i2").tobytes())
    decoded = subprocess.run(
        [imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-i", str(path),
         "-f", "s16le", "-ac", "1", "-ar", str(SAMPLE_RATE), "-"],
        capture_output=True,
        check=True,
    ).stdout
    samples = np.frombuffer(decoded, dtype="<i2")
    assert samples.size == x.size
    assert np.array_equal(samples, x)
