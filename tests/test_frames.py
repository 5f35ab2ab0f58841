"""The MP3 made from frames: silence as repeated frames, sound as stored frames reused across builds.

Each test decodes or parses what was written and compares it with a second,
independent way of making the same session: encoding all of it in one go,
building it again with nothing stored, or reading the headers back.
"""

from __future__ import annotations

import json
import shutil
import struct
import subprocess
from pathlib import Path

import audio_probe
import numpy as np
import pytest
from click.testing import CliRunner
from mutagen.mp3 import MP3

from voiceguide import mp3
from voiceguide.cache import Cache
from voiceguide.cli import cli
from voiceguide.environment import Environment
from voiceguide.mp3 import Frames, _encoder, _meter, _silence, lame_command
from voiceguide.mp3._crc import CrcStep, Repeats, crc16, crc_after_zeros
from voiceguide.mp3._frames import frame_bytes
from voiceguide.units import DELAY, FRAME, MARGIN, Piece

ROOT = Path(__file__).resolve().parent.parent
BOX = ROOT / "scripts" / "box-breathing.yaml"
PIRIFORMIS = ROOT / "scripts" / "piriformis-stretch.yaml"
SHORT = ("--hold-scale", "0.25")
SAMPLE_RATE = audio_probe.SAMPLE_RATE


def build(routine: Path, target: Path, cache: Path, *options: str) -> Path:
    result = CliRunner().invoke(cli, ["build", str(routine), "-o", str(target), "-q", "--cache-dir", str(cache), *options])
    assert result.exit_code == 0, result.output
    return target


def plan(routine: Path, cache: Path, *options: str) -> dict:
    result = CliRunner().invoke(cli, ["plan", str(routine), "--json", "-q", "--cache-dir", str(cache), *options])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def audio_frames(path: Path) -> list[bytes]:
    """The MPEG frames of a file, the Info frame first, after its ID3 tag."""
    data = path.read_bytes()
    start = 10 + ((data[6] << 21) | (data[7] << 14) | (data[8] << 7) | data[9]) if data[:3] == b"ID3" else 0
    parser = Frames()
    frames = parser.feed(data[start:])
    assert parser.rest() == b"", "the file ends inside a frame"
    return frames


@pytest.fixture
def cache(speech_cache: Path, tmp_path: Path) -> Path:
    """The session's clips, with no stored levels or frames: everything after speech is made here."""
    own = tmp_path / "cache"
    shutil.copytree(speech_cache, own, ignore=shutil.ignore_patterns("frames-*", "levels"))
    return own


@pytest.mark.slow
def test_frames_decode_like_the_whole_session_encoded_at_once(cache: Path, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """Mix the whole session as PCM, encode it in one LAME run, and compare the two decodes sample by sample.

    The one run is made by the encoder the build used (the Environment's, imageio-ffmpeg's unless
    IMAGEIO_FFMPEG_EXE names another), and what is compared holds for any LAME: the session's exact length,
    as much coding noise as one run makes, and two decodes that differ far less than that noise. How alike the
    frames come out depends on the encoder: with imageio-ffmpeg's, the two decodes are 41 dB apart; with
    Debian's ffmpeg 5.1, which encodes a word's first frame after a silence by what it heard before, 36 dB.
    """
    pcm: list[bytes] = []
    ffmpeg: list[str] = []  # the encoder the build wrote with
    real_write = mp3.Encoder.write

    def also_keep_pcm(self, path, total, pieces, fill, *rest, **options):  # type: ignore[no-untyped-def]
        pcm.clear()  # a first build may write the session more than once while it finds the level: keep the last
        position = 0
        for piece in pieces:
            pcm.append(bytes(2 * (piece.start - position)))
            fill(piece, pcm.append)
            position = piece.start + piece.length
        pcm.append(bytes(2 * (total - position)))
        ffmpeg[:] = [self.ffmpeg]
        return real_write(self, path, total, pieces, fill, *rest, **options)

    monkeypatch.setattr(mp3.Encoder, "write", also_keep_pcm)
    built = build(BOX, tmp_path / "box.mp3", cache, *SHORT)
    session = np.frombuffer(b"".join(pcm), dtype="<i2")
    whole = subprocess.run(lame_command(ffmpeg[0], 64), input=session.tobytes(), capture_output=True, check=True).stdout
    reference = tmp_path / "whole.mp3"
    reference.write_bytes(whole)

    ours = audio_probe.decode(built)
    theirs = audio_probe.decode(reference)[DELAY:][: len(session)]  # no Info frame there: trim LAME's delay by hand
    assert len(ours) == len(session), "the Info frame's delay and padding give back exactly the session's samples"
    source = session.astype(np.float64)
    # Both are the session with the coding noise of 64 kbps, and as much of it: the frames lose nothing.
    ours_noise, their_noise = ours - source, theirs - source
    noise = np.sqrt(np.mean(their_noise**2))
    assert noise < np.sqrt(np.mean(source**2)) * 10 ** (-15 / 20)
    assert np.sqrt(np.mean(ours_noise**2)) < 1.12 * noise
    assert np.max(np.abs(ours_noise)) < 1.5 * np.max(np.abs(their_noise))
    # And mostly the same noise: the two decodes differ by a fraction of it (two unrelated encodes of the
    # session would differ by more than the noise itself), sample by sample, so every sound is where it was.
    assert np.sqrt(np.mean((ours - theirs) ** 2)) < noise * 10 ** (-10 / 20)


@pytest.mark.slow
def test_silence_between_sounds_stays_silent(cache: Path, tmp_path: Path) -> None:
    """No click where stored frames meet copies of the silent frame: every planned silence stays under -60 dBFS."""
    built = build(PIRIFORMIS, tmp_path / "p.mp3", cache, *SHORT)
    samples = audio_probe.decode(built)
    silences = audio_probe.planned_silences(plan(PIRIFORMIS, cache, *SHORT))
    assert len(silences) > 10
    for start, end in silences:
        if end - start > 0.1:
            assert audio_probe.max_level(samples, start + 0.03, end - 0.03) < -60, (start, end)


@pytest.mark.slow
def test_info_frame_counts_and_checksums_match_the_file(cache: Path, tmp_path: Path) -> None:
    built = build(BOX, tmp_path / "box.mp3", cache, *SHORT)
    frames = audio_frames(built)
    info, audio = frames[0], frames[1:]
    at = info.index(b"Info")
    flags, count, size = struct.unpack(">III", info[at + 4 : at + 16])
    assert flags == 0x0F and count == len(audio) and size == sum(len(f) for f in frames)
    lame = at + 4 + 12 + 100 + 4
    assert info[lame : lame + 4] == b"LAME"
    delay_padding = int.from_bytes(info[lame + 21 : lame + 24], "big")
    total = plan(BOX, cache, *SHORT)["duration"] * SAMPLE_RATE
    assert delay_padding >> 12 == 576
    assert count * FRAME - (delay_padding & 0xFFF) - 576 == pytest.approx(total, abs=SAMPLE_RATE / 2000)
    music_crc, tag_crc = struct.unpack(">HH", info[lame + 32 : lame + 36])
    assert music_crc == crc16(b"".join(audio))
    assert tag_crc == crc16(info[: lame + 34] + bytes(2) + info[lame + 36 : 190])
    # CBR that players can seek by byte offset: every frame within a byte or two of where the bitrate puts it.
    offset = 0
    for index, frame in enumerate(frames):
        assert abs(offset - index * frame_bytes(64)) < 3
        offset += len(frame)
    assert MP3(built).info.length == pytest.approx(total / SAMPLE_RATE, abs=0.03)
    assert audio_probe.decode_errors(built) == ""


STEPS = """\
title: Four holds
steps:
  - title: Calf
    say: Stand facing a wall and step your right foot back, heel down.
    hold: 6s
  - title: Hamstring
    say: Sit down, stretch one leg out and reach gently toward your toes.
    hold: 6s
  - title: Hip
    say: Lie on your back and hug your knees in toward your chest.
    hold: 6s
  - title: Back
    say: Roll onto your side and rest there, breathing slowly.
    hold: 6s
"""


@pytest.mark.slow
def test_a_changed_hold_reuses_the_other_frames_and_gives_the_same_file(cache: Path, tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    routine = tmp_path / "four.yaml"
    routine.write_text(STEPS)
    first = build(routine, tmp_path / "a.mp3", cache)
    encoded: list[int] = []  # pieces given to the encoders, by build

    class Counting(_encoder._Encoder):
        def __init__(self, pieces, *rest, **options):  # type: ignore[no-untyped-def]
            encoded[-1] += len(pieces)
            super().__init__(pieces, *rest, **options)

    monkeypatch.setattr(mp3, "_Encoder", Counting)
    encoded.append(0)
    again = build(routine, tmp_path / "b.mp3", cache)
    assert again.read_bytes() == first.read_bytes()
    assert encoded == [0]
    encoded.append(0)
    changed = build(routine, tmp_path / "c.mp3", cache, "--hold", "hamstring=9.5s")
    # Of the nine sounds (four instructions, four chimes, the closing pause's nothing), only the instruction
    # whose hold changed starts elsewhere within its frame; the chimes all end on the frame grid.
    assert encoded[-1] == 1
    # The same session made with nothing stored: the very same bytes.
    shutil.rmtree(next(cache.glob("frames-*")))
    fresh = build(routine, tmp_path / "d.mp3", cache, "--hold", "hamstring=9.5s")
    assert fresh.read_bytes() == changed.read_bytes()
    assert len(audio_probe.decode(changed)) - len(audio_probe.decode(first)) == pytest.approx(3.5 * SAMPLE_RATE, abs=FRAME)


def _encoded(pieces: list[Piece], sound: np.ndarray, ffmpeg: str) -> list[bytes]:
    """Each piece's frames, from the build's encoder (``ffmpeg``), every piece sounding ``sound``."""
    encoder = _encoder._Encoder(pieces, ffmpeg, 64, lambda piece, out: out(sound.tobytes()))
    try:
        return [encoded.data for encoded in encoder.encoded()]
    finally:
        encoder.close()


NOISE = (np.random.default_rng(3).standard_normal(2 * SAMPLE_RATE) * 6000).astype("<i2")  # the hardest to encode


@pytest.mark.slow
def test_a_piece_has_the_same_frames_alone_or_among_others(environment: Environment) -> None:
    """More pieces than one ffmpeg takes: each comes out as it does encoded on its own, whatever its place."""
    ffmpeg = environment.tools.ffmpeg
    pieces = [Piece(index * 5 * SAMPLE_RATE + 97 * index, len(NOISE), f"{index}") for index in range(_encoder._BATCH * _encoder._lanes() + 3)]
    together = _encoded(pieces, NOISE, ffmpeg)
    assert len(together) == len(pieces)
    for index, piece in enumerate(pieces):
        assert _encoded([piece], NOISE, ffmpeg) == [together[index]], index


def test_a_piece_ends_in_the_same_frames_whatever_silence_follows_it(monkeypatch: pytest.MonkeyPatch,
                                                                     environment: Environment) -> None:
    """TAIL is silence enough: the frames to MARGIN past a piece are made as if the silence went on."""
    ffmpeg = environment.tools.ffmpeg
    pieces = [Piece(SAMPLE_RATE, len(NOISE), "a"), Piece(9 * SAMPLE_RATE + 555, len(NOISE), "b")]
    short = _encoded(pieces, NOISE, ffmpeg)
    monkeypatch.setattr(_encoder, "TAIL", 20 * MARGIN)
    assert _encoded(pieces, NOISE, ffmpeg) == short


@pytest.mark.slow
def test_a_damaged_stored_piece_is_encoded_again(cache: Path, tmp_path: Path) -> None:
    first = build(BOX, tmp_path / "a.mp3", cache, *SHORT)
    stored = sorted(next(cache.glob("frames-*")).rglob("*.mp3f"))
    assert stored
    stored[0].write_bytes(stored[0].read_bytes()[:100])
    assert build(BOX, tmp_path / "b.mp3", cache, *SHORT).read_bytes() == first.read_bytes()


def test_crc_of_joined_pieces_follows_from_theirs() -> None:
    rng = np.random.default_rng(7)
    for _ in range(20):
        a = rng.integers(0, 256, int(rng.integers(0, 500))).astype(np.uint8).tobytes()
        b = rng.integers(0, 256, int(rng.integers(0, 5000))).astype(np.uint8).tobytes()
        assert crc_after_zeros(crc16(a), len(b)) ^ crc16(b) == crc16(a + b)


def reference_crc16(data: bytes, crc: int = 0) -> int:
    """CRC-16/ARC bit by bit, as its definition reads: reflected polynomial 0xA001."""
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return crc


def test_crc16_agrees_with_its_definition_long_and_short() -> None:
    assert crc16(b"123456789") == reference_crc16(b"123456789") == 0xBB3D  # the catalogued check value
    rng = np.random.default_rng(11)
    # Short data is read byte by byte; long data (the frames of a piece) in stretches side by side.
    for length in (0, 1, 100, 8191, 8192, 8193, 20_000, 100_003):
        data = rng.integers(0, 256, length).astype(np.uint8).tobytes()
        for start in (0, 1, 0x1234, 0xFFFF):
            assert crc16(data, start) == reference_crc16(data, start), (length, start)


def test_steps_compose_like_reading_the_bytes() -> None:
    rng = np.random.default_rng(5)
    first, second = (rng.integers(0, 256, n).astype(np.uint8).tobytes() for n in (300, 77))
    for after in (CrcStep.over(second), CrcStep.over(second).kept()):
        joined = CrcStep.over(first).then(after)
        for start in (1, 0x55, 0x1234, 0x8000, 0xFFFF):  # odd and even numbers of bits set
            assert joined.apply(start) == reference_crc16(first + second, start)
    step = CrcStep.over(second)
    assert step.times(5).apply(0x77) == reference_crc16(second * 5, 0x77)
    assert Repeats(step).times(37).apply(0x1) == reference_crc16(second * 37, 0x1)


@pytest.mark.slow
def test_silence_is_cut_on_the_frame_grid(cache: Path, tmp_path: Path) -> None:
    """Sounds after a hold start at the same place within an MP3 frame, whatever the hold's length."""
    starts = []
    for hold in ("4s", "7.3s"):
        events = plan(PIRIFORMIS, cache, *SHORT, "--hold", f"figure-four={hold}")["events"]
        holds = [e for e in events if e["kind"] == "hold" and e["step"] == "figure-four"]
        assert holds and all(round(e["end"] - e["start"], 3) == float(hold[:-1]) for e in holds)
        # Where each hold ends within its frame; the JSON's milliseconds leave it within half of one.
        starts.append([(round(e["end"] * SAMPLE_RATE) + FRAME // 2) % FRAME - FRAME // 2 for e in holds])
    assert all(abs(at) <= SAMPLE_RATE // 2000 + 1 for at in starts[0] + starts[1])


def test_the_silent_frame_is_asked_of_ffmpeg_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                  environment: Environment) -> None:
    """The encoder's silent frame is kept with the other answers about installed tools, so that a build
    does not start an ffmpeg for it; a kept answer that is not a frame is asked again."""
    cache = Cache(tmp_path)
    ffmpeg = environment.tools.ffmpeg
    monkeypatch.setattr(_silence, "_silences", {})
    asked: list[int] = []
    ask = _silence._silent_frame
    monkeypatch.setattr(_silence, "_silent_frame", lambda ffmpeg, bitrate: asked.append(bitrate) or ask(ffmpeg, bitrate))
    first = _silence.silence_at(ffmpeg, 64, cache)
    _silence._silences.clear()  # as in the next build
    assert _silence.silence_at(ffmpeg, 64, cache).frames == first.frames
    assert asked == [64]
    kept = next((tmp_path / "answers").glob("silence-*.txt"))
    kept.write_text(kept.read_text()[:100])
    _silence._silences.clear()
    assert _silence.silence_at(ffmpeg, 64, cache).frames == first.frames
    assert asked == [64, 64]
    _silence.silence_at(ffmpeg, 96, cache)
    assert asked == [64, 64, 96]



@pytest.mark.slow
def test_what_frames_measured_is_kept_and_measures_the_same(cache: Path, tmp_path: Path, metered: list,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """The meter keeps what each run of frames measured under a digest of its bytes: a build that writes the
    same frames again decodes none of them, and measures, levels and writes exactly as the first."""
    first = build(BOX, tmp_path / "a.mp3", cache, *SHORT)
    measured = list(metered)
    assert measured and list(cache.glob("arrays-*/measured/*/*"))
    decoded: list[int] = []
    real = _meter._decoder()
    monkeypatch.setattr(_meter, "_decoder", lambda: lambda data: decoded.append(len(data)) or real(data))
    # Nothing stored but the clips and what the meter kept: the level is searched again, the frames encoded again.
    shutil.rmtree(cache / "levels")
    shutil.rmtree(next(cache.glob("frames-*")))
    metered.clear()
    again = build(BOX, tmp_path / "b.mp3", cache, *SHORT)
    assert metered == measured
    assert decoded == []
    assert again.read_bytes() == first.read_bytes()
    # What was kept and is damaged is measured again, to the same figures.
    for kept in cache.glob("arrays-*/measured/*/*"):
        data = bytearray(kept.read_bytes())
        data[-1] ^= 0xFF
        kept.write_bytes(bytes(data))
    shutil.rmtree(cache / "levels")
    metered.clear()
    build(BOX, tmp_path / "c.mp3", cache, *SHORT)
    assert metered == measured and decoded
