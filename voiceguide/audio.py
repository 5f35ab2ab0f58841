"""Sound files in and out: decode them to 44.1 kHz mono samples, write clips as WAV.

A 16-bit PCM WAV (what speech engines write) is read directly; pydub reads
and converts other WAVs in-process; anything else goes through ffmpeg
first, because pydub's own loader needs ffprobe, which the bundled ffmpeg
lacks. A long file (a playlist's music) is streamed from ffmpeg a block at
a time. The MP3 is written by mp3.py.
"""

from __future__ import annotations

import io
import math
import subprocess
import tempfile
import warnings
import wave
from collections.abc import Generator
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

import numpy as np

with warnings.catch_warnings():
    # pydub warns at import when no ffmpeg is on PATH; it only reads WAV here, which needs none.
    warnings.simplefilter("ignore", RuntimeWarning)
    from pydub import AudioSegment

from voiceguide.errors import AudioError
from voiceguide.units import SAMPLE_RATE

if TYPE_CHECKING:
    from voiceguide.tools import Tools


def decode(path: Path, tools: Tools, seconds: float | None = None) -> np.ndarray:
    """Samples of a sound file (its first ``seconds``) as 44.1 kHz mono int16; AudioError if it is not audio.

    A plain WAV is read directly; anything else through ``tools``' ffmpeg.
    """
    try:
        with open(path, "rb") as file:
            is_wav = file.read(4) == b"RIFF"
    except OSError as error:
        raise AudioError(f"{path}: cannot read: {error.strerror or error}") from None
    segment = None
    if is_wav and seconds is None:
        plain = _plain_wav(path)
        if plain is not None:
            return resample(*plain)
        try:
            with warnings.catch_warnings():
                # pydub falls back to ffprobe for WAVs it cannot parse and warns when none exists.
                warnings.simplefilter("ignore", RuntimeWarning)
                segment = AudioSegment.from_wav(str(path))
        except Exception:  # a WAV pydub cannot parse (float, extensible): let ffmpeg read it
            segment = None
    if segment is None:
        segment = AudioSegment.from_wav(io.BytesIO(_ffmpeg_to_wav(tools.ffmpeg, path, seconds)))
    segment = segment.set_channels(1).set_sample_width(2)
    samples = np.frombuffer(segment.raw_data, dtype="<i2")
    return resample(samples, segment.frame_rate)


def stream(path: Path, tools: Tools, block: int = 1 << 16) -> Generator[np.ndarray, None, None]:
    """Samples of a sound file as 44.1 kHz mono int16, ``block`` at a time (the last one shorter), so that a
    long file is never held whole; AudioError, after the last block, if it is not audio.

    A 16-bit PCM WAV at 44.1 kHz is read directly; anything else through ``tools``' ffmpeg.
    """
    try:
        with open(path, "rb") as file:
            is_wav = file.read(4) == b"RIFF"
    except OSError as error:
        raise AudioError(f"{path}: cannot read: {error.strerror or error}") from None
    channels = _plain_channels(path) if is_wav else None
    if channels is None:
        yield from _ffmpeg_stream(path, tools, block)
        return
    with wave.open(str(path), "rb") as file:
        while frames := file.readframes(block):
            data = np.frombuffer(frames, dtype="<i2", count=len(frames) // 2 // channels * channels)
            yield data if channels == 1 else np.round(data.reshape(-1, channels).mean(axis=1)).astype("<i2")


def _plain_channels(path: Path) -> int | None:
    """The channels of a 16-bit PCM WAV at SAMPLE_RATE, which needs no converting; None for any other."""
    try:
        with wave.open(str(path), "rb") as file:
            plain = file.getsampwidth() == 2 and file.getframerate() == SAMPLE_RATE
            return file.getnchannels() if plain else None
    except (wave.Error, EOFError, OSError):
        return None


def _ffmpeg_stream(path: Path, tools: Tools, block: int) -> Generator[np.ndarray, None, None]:
    command = [tools.ffmpeg, "-nostdin", "-v", "error", "-i", str(path),
               "-vn", "-ac", "1", "-ar", str(SAMPLE_RATE), "-c:a", "pcm_s16le", "-f", "s16le", "-"]
    # What ffmpeg says goes to a file: a damaged file can make it say more than a pipe holds.
    with tempfile.TemporaryFile() as said:
        process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=said)
        assert process.stdout is not None
        read = 0
        try:
            while chunk := process.stdout.read(2 * block):
                read += len(chunk) // 2
                yield np.frombuffer(chunk, dtype="<i2", count=len(chunk) // 2)
            process.wait()
        finally:
            if process.poll() is None:  # the reader stopped early
                process.kill()
                process.wait()
            process.stdout.close()
        if process.returncode != 0 or not read:
            said.seek(0)
            detail = said.read().decode(errors="replace").strip().splitlines()
            raise AudioError(f"{path}: not an audio file ({detail[-1] if detail else 'no audio in it'})")


def resample(samples: np.ndarray, rate: int) -> np.ndarray:
    """``samples`` at ``rate`` Hz as SAMPLE_RATE, band-limited.

    Done in the frequency domain rather than with pydub's linear interpolation,
    whose images above the old Nyquist frequency the MP3 encoder would cut,
    changing the loudness that was measured before encoding. The sound is
    padded with silence to a length whose transforms are quick: an FFT of a
    length with a large prime factor takes twenty times as long.
    """
    if rate == SAMPLE_RATE or not len(samples):
        return samples.copy()
    common = math.gcd(rate, SAMPLE_RATE)
    into, out_of = SAMPLE_RATE // common, rate // common  # samples out per samples in
    count = round(len(samples) * into / out_of)
    blocks = quick_length(-(-len(samples) // out_of))
    size_in, size_out = blocks * out_of, blocks * into
    # In single precision: within a hundredth of a step of int16, in half the time and memory.
    spectrum = np.fft.rfft(samples.astype(np.float32), size_in)
    kept = min(len(spectrum), size_out // 2 + 1)
    resized = np.zeros(size_out // 2 + 1, dtype=np.complex64)
    resized[:kept] = spectrum[:kept]
    del spectrum
    result = np.fft.irfft(resized, size_out)[:count]
    result *= np.float32(size_out / size_in)
    return np.rint(np.clip(result, -32768, 32767, out=result), out=result).astype("<i2")


def quick_length(length: int) -> int:
    """The least length at or above ``length`` made of the factors 2, 3 and 5, which FFTs take fastest."""
    best = 1 << max(0, (length - 1).bit_length())
    fives = 1
    while fives < best:
        threes = fives
        while threes < best:
            size = threes
            while size < length:
                size *= 2
            best = min(best, size)
            threes *= 3
        fives *= 5
    return best


def _plain_wav(path: Path) -> tuple[np.ndarray, int] | None:
    """Samples and rate of a 16-bit PCM WAV, the kind speech engines write, read directly; None for any other."""
    try:
        with wave.open(str(path), "rb") as file:
            if file.getsampwidth() != 2:
                return None
            channels, rate = file.getnchannels(), file.getframerate()
            data = np.frombuffer(file.readframes(file.getnframes()), dtype="<i2")
    except (wave.Error, EOFError, OSError):
        return None
    if channels > 1:
        data = np.round(data[: len(data) // channels * channels].reshape(-1, channels).mean(axis=1)).astype("<i2")
    return data, rate


def _ffmpeg_to_wav(ffmpeg: str, path: Path, seconds: float | None = None) -> bytes:
    command = [ffmpeg, "-nostdin", "-v", "error", "-i", str(path),
               "-vn", "-ac", "1", "-ar", str(SAMPLE_RATE), "-c:a", "pcm_s16le", "-f", "wav", "-"]
    if seconds is not None:
        command[-3:-3] = ["-t", f"{seconds:g}"]
    result = subprocess.run(command, stdin=subprocess.DEVNULL, capture_output=True)
    if result.returncode != 0 or len(result.stdout) <= 44:
        detail = result.stderr.decode(errors="replace").strip().splitlines()
        reason = detail[-1] if detail else "no audio in it"
        raise AudioError(f"{path}: not an audio file ({reason})")
    return result.stdout


def write_wav(file: BinaryIO, samples: np.ndarray) -> None:
    with wave.open(file, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(SAMPLE_RATE)
        out.writeframes(samples.astype("<i2").tobytes())
