"""A session under a bed, made as frames: the bed's steady loop encoded once and copied, only the stretches where
something sounds or the bed fades or dips encoded.

Each build is compared with the same session encoded whole (render.FRAMES_UNDER_BED = False: the session is
one piece, heard by one LAME from start to end), and both with the PCM that was mixed.
"""

from __future__ import annotations

import shutil
import wave
from pathlib import Path

import audio_probe
import numpy as np
import pytest
from test_frames import audio_frames, build

from voiceguide import mp3, render
from voiceguide.mp3 import Frames, _encoder
from voiceguide.mp3._crc import crc16
from voiceguide.mp3._frames import bytes_after, frame_bytes
from voiceguide.mp3._writer import Writer
from voiceguide.units import DELAY, FRAME, Piece

ROUTINE = """\
title: Evening rest
background: {{sound: {sound}, level: -20dB}}
chime: bell
steps:
  - title: Settle
    say: Lie down and let your breath slow down.
    hold: 70s
    halfway: true
  - title: Shoulders
    say: Now let your shoulders sink toward the floor.
    hold: 30s
  - title: Rest
    say: Rest here for a moment.
    hold: 8s
"""


@pytest.fixture
def cache(speech_cache: Path, tmp_path: Path) -> Path:
    """The session's clips, and nothing encoded yet."""
    own = tmp_path / "cache"
    shutil.copytree(speech_cache, own, ignore=shutil.ignore_patterns("frames-*", "levels"))
    return own


class Spy:
    """What the encoder was asked to encode, and the PCM of the session as a whole-session encode mixes it."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.encoded: list[Piece] = []
        self.pieces: list[Piece] = []
        self.pcm = b""
        real_encoder, real_write = _encoder._Encoder.__init__, mp3.Encoder.write

        def encoder(this, pieces, *rest, **options):  # type: ignore[no-untyped-def]
            self.encoded.extend(pieces)
            real_encoder(this, pieces, *rest, **options)

        def write(this, path, total, pieces, fill, *rest, **options):  # type: ignore[no-untyped-def]
            self.pieces = list(pieces)
            if len(pieces) == 1 and pieces[0].key is None:  # the whole session: its PCM is the reference
                kept: list[bytes] = []
                fill(pieces[0], lambda data: kept.append(bytes(data)))
                self.pcm = b"".join(kept)
            return real_write(this, path, total, pieces, fill, *rest, **options)

        monkeypatch.setattr(_encoder._Encoder, "__init__", encoder)
        monkeypatch.setattr(mp3.Encoder, "write", write)


def _pair(sound: str, tmp_path: Path, cache: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[np.ndarray, np.ndarray,
                                                                                             np.ndarray, list[Piece]]:
    """The session built whole and as frames: (whole, frames, mixed PCM) decoded, and the frames build's pieces."""
    routine = tmp_path / "rest.yaml"
    if sound == "file":  # a recording of its own: pink-ish noise with a slow swell, 20 s
        rng = np.random.default_rng(3)
        noise = np.cumsum(rng.normal(size=20 * 44100)) * 0.02
        noise -= np.convolve(noise, np.ones(441) / 441, mode="same")
        swell = 1 + 0.3 * np.sin(np.linspace(0, 6 * np.pi, len(noise)))
        _write_wav(tmp_path / "room.wav", noise * swell)
        sound = "room.wav"
    routine.write_text(ROUTINE.format(sound=sound))
    spy = Spy(monkeypatch)
    with monkeypatch.context() as patch:
        patch.setattr(render, "FRAMES_UNDER_BED", False)
        whole = audio_probe.decode(build(routine, tmp_path / "whole.mp3", tmp_path / "whole-cache"))
    source = np.frombuffer(spy.pcm, dtype="<i2")
    shutil.rmtree(cache / "levels", ignore_errors=True)
    ours = audio_probe.decode(build(routine, tmp_path / "frames.mp3", cache))
    return whole, ours, source, spy.pieces


def _write_wav(path: Path, samples: np.ndarray) -> None:
    with wave.open(str(path), "wb") as file:
        file.setnchannels(1)
        file.setsampwidth(2)
        file.setframerate(44100)
        file.writeframes(np.round(samples / np.max(np.abs(samples)) * 20000).astype("<i2").tobytes())


@pytest.mark.slow
@pytest.mark.parametrize("sound", ["rain", "drone", "file"])
def test_frames_under_a_bed_decode_like_the_session_encoded_whole(sound: str, tmp_path: Path, cache: Path,
                                                                   monkeypatch: pytest.MonkeyPatch, metered: list) -> None:
    whole, ours, source, pieces = _pair(sound, tmp_path, cache, monkeypatch)
    measured = list(metered)
    assert len(ours) == len(whole) == len(source), "the same length, to the sample"
    assert len(pieces) > 3 and all(piece.key for piece in pieces)
    source = source.astype(np.float64)
    difference = ours.astype(np.float64) - whole
    loud = np.sqrt(np.mean(source**2))
    assert np.sqrt(np.mean(difference**2)) < loud * 10 ** (-30 / 20)
    # Both are the session with the coding noise of 64 kbps, and as much of it.
    ours_noise, their_noise = ours - source, whole - source
    assert np.sqrt(np.mean(ours_noise**2)) < 1.12 * np.sqrt(np.mean(their_noise**2))
    # No click where encoded pieces meet the loop's frames: around every join the noise is what a whole
    # encode has there.
    joins = sorted(join for piece in pieces for edge in _encoder.frame_span(piece)
                   if 0 < (join := edge * FRAME - DELAY) < len(source) - FRAME)
    assert joins
    for join in joins:
        near = slice(max(0, join - 2 * FRAME), min(len(source), join + 2 * FRAME))
        assert np.max(np.abs(ours_noise[near])) <= 2 * np.max(np.abs(their_noise[near])) + 16, join / 44100
    # Loudness and timing unchanged; and what the build measured, from the loop's frames measured once, is what
    # the file holds.
    assert abs(audio_probe.loudness(ours) - audio_probe.loudness(whole.astype("<i2"))) < 0.1
    assert measured[-1][0] == pytest.approx(audio_probe.loudness(ours), abs=0.2)
    assert abs(audio_probe.first_loud(ours, 0, 10) - audio_probe.first_loud(whole, 0, 10)) < 0.005


@pytest.mark.slow
def test_under_a_bed_only_what_changes_is_encoded(tmp_path: Path, cache: Path, monkeypatch: pytest.MonkeyPatch,
                                                  metered: list) -> None:
    """The holds under the bed are copies of its loop; a rebuild after a new hold searches no level, is written
    once, measured as written, and encodes nothing but what moved."""
    routine = tmp_path / "rest.yaml"
    routine.write_text(ROUTINE.format(sound="rain"))
    spy = Spy(monkeypatch)
    build(routine, tmp_path / "first.mp3", cache)
    total = len(audio_probe.decode(tmp_path / "first.mp3"))
    assert sum(piece.length for piece in spy.pieces) < total / 3
    spy.encoded.clear()
    measured = len(metered)
    build(routine, tmp_path / "second.mp3", cache, "--hold", "shoulders=35s")
    assert len(metered) == measured + 1
    # Every piece after the changed hold now falls elsewhere in the rain, so it is encoded anew, and so is the
    # instruction just before it (see test_frames); those before that not.
    before_hold = [piece for piece in spy.pieces if piece.start < 60 * 44100]
    assert len(before_hold) == 2
    assert not {piece.key for piece in spy.encoded} & {piece.key for piece in before_hold}
    assert spy.encoded and audio_probe.decode_errors(tmp_path / "second.mp3") == ""
    # The same speech level, the bed at the same level under it: the holds before and after sound the same.
    first, second = audio_probe.decode(tmp_path / "first.mp3"), audio_probe.decode(tmp_path / "second.mp3")
    for at in (20, 60):
        assert audio_probe.loudness(first[at * 44100 : (at + 8) * 44100]) == pytest.approx(
            audio_probe.loudness(second[at * 44100 : (at + 8) * 44100]), abs=0.2)


@pytest.mark.slow
def test_a_long_hold_under_a_bed_stays_on_the_bitrate_schedule(tmp_path: Path, cache: Path) -> None:
    """Copies of the loop's frames keep every frame where the bitrate puts it (within a byte or two), so players
    seek by byte offset to the right time."""
    routine = tmp_path / "long.yaml"
    routine.write_text(ROUTINE.format(sound="rain").replace("hold: 70s", "hold: 10m"))
    built = build(routine, tmp_path / "long.mp3", cache)
    frames = audio_frames(built)
    position, worst = 0, 0
    for index, frame in enumerate(frames):
        position += len(frame)
        worst = max(worst, abs(position - bytes_after(64, index)))
    assert worst <= 3
    info, audio = frames[0], frames[1:]
    lame = info.index(b"Info") + 4 + 12 + 100 + 4
    assert int.from_bytes(info[lame + 32 : lame + 34], "big") == crc16(b"".join(audio))
    assert audio_probe.decode_errors(built) == ""


def test_the_loops_frames_are_padded_only_to_catch_up() -> None:
    """Writer.steady pads unpadded copies when the file falls behind, and never cuts a padded one short."""

    class File:
        def __init__(self) -> None:
            self.data = bytearray()

        def write(self, data: bytes) -> None:
            self.data += data

        def tell(self) -> int:
            return len(self.data)

        def flush(self) -> None:
            pass

    from voiceguide.mp3._silence import Silence

    plain = bytes([0xFF, 0xFB, 0x50, 0xC0]) + bytes(204)  # 64 kbps, unpadded: 208 bytes
    silence = Silence(plain, 64)
    rng = np.random.default_rng(7)
    loop = [plain[:4] + rng.bytes(204) for _ in range(30)]
    loop += [plain[:2] + bytes([plain[2] | 2]) + plain[3:4] + rng.bytes(205) for _ in range(7)]
    file = File()
    writer = Writer(file, silence, 1000, ground=loop)  # type: ignore[arg-type]
    writer.between(1000)
    assert writer.frames == 1000
    assert 0 <= bytes_after(64, 1000) - writer.size <= 1
    assert len(file.data) == writer.size
    info = int(frame_bytes(64))
    assert writer.crc == crc16(bytes(file.data[info:])), "the music CRC follows from the loop's, padding and all"
    frames = Frames().feed(bytes(file.data[info:]))
    assert len(frames) == 1000
    # Frames the encoder padded are never cut short: each keeps its own bytes.
    for index, frame in enumerate(frames):
        original = loop[index % len(loop)]
        assert frame[:len(original)][3:] == original[3:]
