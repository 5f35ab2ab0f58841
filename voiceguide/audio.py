"""Sound in and out: decode files to 44.1 kHz mono samples, and stream samples into an MP3 encoder.

pydub reads and converts WAV clips in-process; anything else goes through
ffmpeg first, because pydub's own loader needs ffprobe, which the bundled
ffmpeg lacks. Encoding streams PCM into ffmpeg so that a session is never held
in memory whole.
"""

from __future__ import annotations

import io
import subprocess
import warnings
import wave
from pathlib import Path
from typing import BinaryIO

import numpy as np

with warnings.catch_warnings():
    # pydub warns at import when no ffmpeg is on PATH; it only reads WAV here, which needs none.
    warnings.simplefilter("ignore", RuntimeWarning)
    from pydub import AudioSegment

from voiceguide import tools
from voiceguide.errors import AudioError
from voiceguide.timeline import SAMPLE_RATE

# A hold of silence is written in blocks of this many samples, reused.
SILENCE_BLOCK = SAMPLE_RATE


def decode(path: Path) -> np.ndarray:
    """Samples of a sound file as 44.1 kHz mono int16; AudioError if it is not audio."""
    try:
        with open(path, "rb") as file:
            is_wav = file.read(4) == b"RIFF"
    except OSError as error:
        raise AudioError(f"{path}: cannot read: {error.strerror or error}") from None
    segment = None
    if is_wav:
        try:
            with warnings.catch_warnings():
                # pydub falls back to ffprobe for WAVs it cannot parse and warns when none exists.
                warnings.simplefilter("ignore", RuntimeWarning)
                segment = AudioSegment.from_wav(str(path))
        except Exception:  # a WAV pydub cannot parse (float, extensible): let ffmpeg read it
            segment = None
    if segment is None:
        segment = AudioSegment.from_wav(io.BytesIO(_ffmpeg_to_wav(path)))
    segment = segment.set_channels(1).set_sample_width(2)
    samples = np.frombuffer(segment.raw_data, dtype="<i2")
    return resample(samples, segment.frame_rate)


def resample(samples: np.ndarray, rate: int) -> np.ndarray:
    """``samples`` at ``rate`` Hz as SAMPLE_RATE, band-limited.

    Done in the frequency domain rather than with pydub's linear interpolation,
    whose images above the old Nyquist frequency the MP3 encoder would cut,
    changing the loudness that was measured before encoding.
    """
    if rate == SAMPLE_RATE or not len(samples):
        return samples.copy()
    count = round(len(samples) * SAMPLE_RATE / rate)
    spectrum = np.fft.rfft(samples.astype(np.float64))
    kept = min(len(spectrum), count // 2 + 1)
    resized = np.zeros(count // 2 + 1, dtype=complex)
    resized[:kept] = spectrum[:kept]
    result = np.fft.irfft(resized, count) * (count / len(samples))
    return np.round(np.clip(result, -32768, 32767)).astype("<i2")


def _ffmpeg_to_wav(path: Path) -> bytes:
    command = [tools.ffmpeg(), "-nostdin", "-v", "error", "-i", str(path),
               "-vn", "-ac", "1", "-ar", str(SAMPLE_RATE), "-c:a", "pcm_s16le", "-f", "wav", "-"]
    result = subprocess.run(command, capture_output=True)
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


class Mp3Encoder:
    """ffmpeg turning streamed PCM into a CBR MP3 file at ``path``.

    CBR because phones seek badly in VBR files; the Xing/Info frame ffmpeg
    writes lets players show the right duration. Tags are added afterwards.
    """

    def __init__(self, path: Path, bitrate: int):
        command = [
            tools.ffmpeg(), "-nostdin", "-v", "error", "-y",
            "-f", "s16le", "-ar", str(SAMPLE_RATE), "-ac", "1", "-i", "pipe:0",
            "-c:a", "libmp3lame", "-b:a", f"{bitrate}k", "-ar", str(SAMPLE_RATE), "-ac", "1",
            # No encoder tags of ffmpeg's own: the file's bytes depend only on the session.
            "-map_metadata", "-1", "-fflags", "+bitexact", "-flags:a", "+bitexact",
            "-id3v2_version", "0", "-write_xing", "1", "-f", "mp3", str(path),
        ]
        try:
            self._process = subprocess.Popen(command, stdin=subprocess.PIPE, stderr=subprocess.PIPE)
        except OSError as error:
            raise AudioError(f"cannot start ffmpeg: {error}") from None
        self._zeros = np.zeros(SILENCE_BLOCK, dtype="<i2").tobytes()
        self.written = 0

    def write(self, samples: np.ndarray) -> None:
        self._send(samples.astype("<i2", copy=False).tobytes())
        self.written += len(samples)

    def silence(self, count: int) -> None:
        remaining = count
        while remaining > 0:
            block = min(remaining, SILENCE_BLOCK)
            self._send(self._zeros[: 2 * block])
            remaining -= block
        self.written += count

    def _send(self, data: bytes) -> None:
        assert self._process.stdin is not None
        try:
            self._process.stdin.write(data)
        except BrokenPipeError:
            self._fail()

    def finish(self) -> None:
        assert self._process.stdin is not None
        try:
            self._process.stdin.close()
        except BrokenPipeError:
            pass
        if self._process.wait() != 0:
            self._fail()

    def abort(self) -> None:
        if self._process.poll() is None:
            self._process.kill()
        self._process.wait()

    def _fail(self) -> None:
        self.abort()
        assert self._process.stderr is not None
        lines = self._process.stderr.read().decode(errors="replace").strip().splitlines()
        raise AudioError(f"encoding the MP3 failed: {lines[-1] if lines else 'ffmpeg stopped'}")
