"""Your own music under a session: a playlist of sound files played one after another, each whole, each
crossfaded into the next and the last into the first; levelled, faded and dipped as any bed; a bad file
reported as FILE:LINE:COL before any speech is made. The period is measured as made, and in the built MP3."""

from __future__ import annotations

import json
import math
import wave
from pathlib import Path

import numpy as np
import pytest
from audio_probe import decode, loudness
from click.testing import CliRunner

from voiceguide.audio import write_wav
from voiceguide.cli import cli
from voiceguide.environment import Environment
from voiceguide.loudness import loudness_of
from voiceguide.plan.timeline import Timeline
from voiceguide.render import music
from voiceguide.render.bed import BED_LUFS, loop_of, looped
from voiceguide.routine import Background, load_routine
from voiceguide.speech.clips import Speech
from voiceguide.units import FRAME, SAMPLE_RATE

ENGINES = ["pyttsx3", "piper"]
SECOND = SAMPLE_RATE
# One tone per file, each at its own amplitude: levelling must bring them to one loudness.
# The most a loop's end is trimmed, to a whole number of frames where it best matches its start.
TRIM = (music._SEARCH_FRAMES + 1) * FRAME
TONES = {"one.wav": (300.0, 4.0, 8000), "two.wav": (500.0, 6.0, 1000), "three.wav": (700.0, 3.0, 3000)}


def write_tone(path: Path, hz: float | list[tuple[float, float]], seconds: float, amplitude: float = 8000,
               rate: int = SAMPLE_RATE) -> None:
    """A WAV of a tone (or of tones, each from a time in seconds on), written a second at a time."""
    changes = [(0.0, hz)] if isinstance(hz, float) else hz
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        count = round(seconds * rate)
        for start in range(0, count, rate):
            t = np.arange(start, min(start + rate, count)) / rate
            tone = np.zeros(len(t))
            for at, pitch in changes:
                tone = np.where(t >= at, np.sin(2 * np.pi * pitch * t), tone)
            out.writeframes(np.round(amplitude * tone).astype("<i2").tobytes())


def write_tones(folder: Path, tones: dict[str, tuple[float, float, int]] = TONES) -> None:
    for name, (hz, seconds, amplitude) in tones.items():
        write_tone(folder / name, hz, seconds, amplitude)


def routine_file(folder: Path, background: str, holds: str = "3s") -> Path:
    path = folder / "music.yaml"
    path.write_text(f"title: Music\nchime: none\nbackground:\n{background}\nsteps:\n"
                    f"  - title: A\n    say: Hi.\n    hold: {holds}\n")
    return path


def playlist(folder: Path, names: str, crossfade: str = "1s") -> Background:
    background = load_routine(routine_file(folder, f"  sound: [{names}]\n  crossfade: {crossfade}"), ENGINES).background
    assert background is not None
    return background


def tone_db(samples: np.ndarray, hz: float, start: float, length: float = 0.5) -> float:
    """Level of the ``hz`` component over ``length`` seconds from ``start``, in dB of full scale."""
    part = samples[round(start * SECOND): round((start + length) * SECOND)].astype(np.float64)
    window = np.hanning(len(part))
    spectrum = np.abs(np.fft.rfft(part * window)) * 2 / window.sum()
    frequencies = np.fft.rfftfreq(len(part), 1 / SECOND)
    near = (frequencies > hz - 3) & (frequencies < hz + 3)
    return 20 * math.log10(max(float(spectrum[near].max()), 1e-9) / 32768)


def playing(samples: np.ndarray, tones: list[float], start: float, length: float = 0.5) -> float:
    """The loudest of ``tones`` over ``length`` seconds from ``start``."""
    return max(tones, key=lambda hz: tone_db(samples, hz, start, length))


# --- the routine format ---------------------------------------------------------------------------------


def test_a_playlist_is_a_list_of_sound_files_each_found_where_the_routine_is(tmp_path: Path) -> None:
    write_tones(tmp_path / "music")
    short = tmp_path / "short.yaml"
    short.write_text("title: T\nchime: none\nbackground: [music/one.wav, music/two.wav]\nsteps:\n  - title: A\n    hold: 3s\n")
    bed = load_routine(short, ENGINES).background
    assert bed is not None and bed.path is None
    assert [(file.name, file.path) for file in bed.playlist] == [
        ("music/one.wav", tmp_path / "music/one.wav"), ("music/two.wav", tmp_path / "music/two.wav")]
    assert [(file.where.line, file.where.column) for file in bed.playlist] == [(3, 14), (3, 29)]
    assert bed.files == bed.playlist and (bed.crossfade, bed.level) == (3000, -20.0)

    full = routine_file(tmp_path, "  sound: [music/three.wav]\n  level: -25dB\n  crossfade: 1.5s")
    bed = load_routine(full, ENGINES).background
    assert bed is not None and [file.name for file in bed.playlist] == ["music/three.wav"]
    assert (bed.level, bed.crossfade) == (-25.0, 1500)
    # One sound file is a playlist of none: it loops, as before; its file is still one of the bed's files.
    single = load_routine(routine_file(tmp_path, "  sound: music/one.wav"), ENGINES).background
    assert single is not None and single.playlist == () and [f.path for f in single.files] == [single.path]


def test_the_plan_names_the_playlist(tmp_path: Path) -> None:
    write_tones(tmp_path)
    bed = playlist(tmp_path, "one.wav, two.wav", crossfade="2s")
    timeline = Timeline("Music", "", (), (), background=bed)
    assert timeline.table().splitlines()[-1] == (
        "background: playlist (one.wav, two.wav), 20 dB under the speech, another 10 dB lower while anything else sounds")
    assert timeline.to_json()["background"] == {"sound": ["one.wav", "two.wav"], "level": -20.0, "fade": 5.0,
                                                "duck": {"depth": 10.0, "attack": 0.3, "release": 1.0},
                                                "crossfade": 2.0}


# --- the period, as made --------------------------------------------------------------------------------


def test_each_file_plays_whole_in_order_levelled_crossfaded_and_the_first_follows_the_last(
        tmp_path: Path, environment: Environment) -> None:
    write_tones(tmp_path)
    loop = loop_of(playlist(tmp_path, "one.wav, two.wav, three.wav"), environment.tools)
    # Compact, and a whole number of MP3 frames: the bed starts each turn on a frame boundary.
    assert loop.dtype == np.int16 and len(loop) % FRAME == 0
    # Every file whole: 13 s, less the crossfades (1 s; 0.75 s, a quarter of the 3 s file; 0.75 s back to the
    # first), less what makes the period whole frames.
    assert 0 <= round((13 - 2.5) * SECOND) - len(loop) < TRIM
    low, middle, high = (hz for hz, _, _ in TONES.values())
    tones = [low, middle, high]
    # In order: each alone between its crossfades...
    heard = [playing(loop, tones, start) for start in np.arange(0.0, len(loop) / SECOND - 0.5, 0.25)]
    runs = [hz for i, hz in enumerate(heard) if i == 0 or hz != heard[i - 1]]
    assert runs in ([low, middle, high], [high, low, middle, high])
    # ... at one loudness, whatever its own level, ...
    for hz, (start, end) in zip(tones, [(1.0, 2.8), (4.2, 8.0), (9.1, 10.2)]):
        alone = loop[round(start * SECOND): round(end * SECOND)]
        assert loudness_of(alone) == pytest.approx(BED_LUFS, abs=0.5), hz
    # ... crossfaded into the next: both are heard at once, and the power stays even through the join ...
    for start, going, coming in ((3.3, low, middle), (8.4, middle, high), (0.2, high, low)):
        assert abs(tone_db(loop, going, start, 0.3) - tone_db(loop, coming, start, 0.3)) < 6
    twice = np.concatenate([loop, loop]).astype(np.float64)
    width = SECOND // 20
    windows = twice[: len(twice) // width * width].reshape(-1, width)
    levels = 10 * np.log10(np.mean(windows**2, axis=1))
    assert np.max(levels) - np.min(levels) < 2.0
    # ... and the last into the first, without a step where the period starts again.
    assert abs(int(loop[0]) - int(loop[-1])) <= np.percentile(np.abs(np.diff(loop.astype(np.int32))), 99.9)


def test_a_long_file_is_played_through_not_cut_at_three_minutes(tmp_path: Path, environment: Environment) -> None:
    """200 s at 8 kHz (cheap to write; read through ffmpeg, which resamples it): its last 10 s, past the 180 s
    where a single sound is cut, are in the period, and the next file follows them."""
    write_tone(tmp_path / "long.wav", [(0.0, 200.0), (190.0, 1000.0)], 200.0, rate=8000)
    write_tone(tmp_path / "short.wav", 300.0, 2.0)
    loop = loop_of(playlist(tmp_path, "long.wav, short.wav"), environment.tools)
    assert loop.dtype == np.int16 and len(loop) % FRAME == 0
    assert 0 <= round((202 - 0.5 - 0.5) * SECOND) - len(loop) < TRIM
    assert playing(loop, [200.0, 1000.0, 300.0], 170.0) == 200.0
    assert playing(loop, [200.0, 1000.0, 300.0], 195.0) == 1000.0
    assert playing(loop, [200.0, 1000.0, 300.0], 200.0) == 300.0


@pytest.mark.parametrize("seconds", [0.1, 1.0, 2.5, 7.3])
def test_every_loop_is_a_whole_number_of_frames(seconds: float, tmp_path: Path, environment: Environment) -> None:
    """A sound file's loop is trimmed, by under a frame, before its end is crossfaded into its start; a
    playlist's period the same, before its last file is crossfaded into its first."""
    count = round(seconds * SECOND)
    assert len(looped(np.random.default_rng(1).standard_normal(count))) % FRAME == 0
    write_tone(tmp_path / "a.wav", 220.0, seconds)
    write_tone(tmp_path / "b.wav", 330.0, seconds + 0.37)
    single = load_routine(routine_file(tmp_path, "  sound: a.wav"), ENGINES).background
    assert single is not None
    made = loop_of(single, environment.tools)
    assert len(made) % FRAME == 0 and 0 <= count - min(3 * SECOND, count // 4) - len(made) < TRIM
    assert len(loop_of(playlist(tmp_path, "a.wav, b.wav"), environment.tools)) % FRAME == 0


@pytest.mark.parametrize("hz", [56.0, 100.0, 261.6, 440.0])
def test_a_tone_trimmed_to_whole_frames_still_joins_in_phase(hz: float) -> None:
    """Trimmed by a fraction of its cycle, a tone's end could meet its start out of phase and dip in the
    crossfade; the trim is chosen where the two match, and the level holds across the join."""
    for seconds in (2.0, 3.0):
        loop = looped(1000 * np.sin(2 * np.pi * hz * np.arange(round(seconds * SECOND)) / SECOND))
        assert len(loop) % FRAME == 0
        twice = np.concatenate([loop, loop])
        width = SECOND // 20
        levels = 20 * np.log10(np.sqrt(np.mean(twice[: len(twice) // width * width].reshape(-1, width) ** 2, axis=1)))
        assert np.max(levels) - np.min(levels) < 1.0, (hz, seconds)


# --- bad files ------------------------------------------------------------------------------------------


def no_speech(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any speech the build would make fails the test: a bad file must stop the build before it."""
    def spoken(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise AssertionError("speech was made before the playlist was checked")

    monkeypatch.setattr(Speech, "start", lambda self, lines: None)
    monkeypatch.setattr(Speech, "prepare", spoken)


@pytest.mark.parametrize("kind", ["missing", "not audio", "silent", "too short", "too long"])
def test_a_bad_file_anywhere_in_the_playlist_is_one_line_before_any_speech(
        kind: str, tmp_path: Path, speech_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_tones(tmp_path)
    bad = tmp_path / "bad.wav"
    if kind == "not audio":
        bad = tmp_path / "bad.mp3"
        bad.write_text("not audio at all")
    elif kind == "silent":
        with open(bad, "wb") as file:
            write_wav(file, np.zeros(2 * SECOND, dtype=np.int16))
    elif kind == "too short":
        write_tone(bad, 300.0, 0.05)
    elif kind == "too long":
        monkeypatch.setattr(music, "MAX_PLAYLIST_SECONDS", 9)
        bad = tmp_path / "two.wav"  # 4 s, then 6 s: the playlist passes 9 s with the second file
    routine = routine_file(tmp_path, f"  sound: [one.wav, {bad.name}, three.wav]")
    no_speech(monkeypatch)
    output = tmp_path / "out.mp3"
    result = CliRunner().invoke(cli, ["build", str(routine), "-o", str(output), "-q", "--cache-dir", str(speech_cache)])
    assert result.exit_code == 2, result.output
    expected = {
        "missing": f"sound file not found: bad.wav (looked for {bad})",
        "not audio": f"background {bad}: not an audio file (",
        "silent": f"background {bad}: the sound file is silent",
        "too short": f"background {bad}: too short to play (under 0.1 s)",
        "too long": "background: the playlist lasts 0:10 by the end of two.wav, longer than a playlist may last "
                    "(0:09); leave some files out",
    }[kind]
    assert result.stderr.startswith(f"{routine}:4:20: {expected}"), result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not output.exists()


# --- in the MP3 -----------------------------------------------------------------------------------------

# Under the voice's lowest harmonic, so that the bed can be measured while words are spoken.
LOW_TONES = {"low.wav": (40.0, 7.0, 9000), "middle.wav": (48.0, 5.0, 3000), "high.wav": (56.0, 6.0, 6000)}
SESSION = """\
title: Playlist
chime: none
background:
  sound: [low.wav, middle.wav, high.wav]
  level: -20dB
  fade: 1s
  crossfade: 1s
  duck: {depth: 12dB, attack: 200ms, release: 500ms}
steps:
  - title: One
    say: Lie on your back with your knees bent, and let your arms rest by your sides.
    hold: 9s
  - title: Two
    say: Now breathe in slowly through your nose, and let your shoulders soften.
    hold: 9s
  - title: Three
    say: Let your breath go out through your mouth, slowly, all the way.
    hold: 9s
"""


def test_the_playlist_in_the_mp3_in_order_at_its_level_ducked_and_faded(
        tmp_path: Path, speech_cache: Path, environment: Environment) -> None:
    write_tones(tmp_path, LOW_TONES)
    routine = tmp_path / "session.yaml"
    routine.write_text(SESSION)
    output = tmp_path / "session.mp3"
    result = CliRunner().invoke(cli, ["build", str(routine), "-o", str(output), "-q", "--cache-dir", str(speech_cache),
                                      "--with", "json"])
    assert result.exit_code == 0, result.stderr
    samples = decode(output)
    plan = json.loads(output.with_suffix(".json").read_text())
    assert plan["background"]["sound"] == ["low.wav", "middle.wav", "high.wav"]
    background = load_routine(routine, ENGINES).background
    assert background is not None
    loop = loop_of(background, environment.tools)
    period = len(loop) / SECOND
    tones = [hz for hz, _, _ in LOW_TONES.values()]
    speech = [(e["start"], e["end"]) for e in plan["events"] if e["kind"] == "speech"]
    holds = [(e["start"], e["end"]) for e in plan["events"] if e["kind"] == "hold"]
    assert plan["duration"] > 2 * period, "the session hears the playlist begin again"

    def in_loop(start: float, length: float) -> np.ndarray:
        at = round(start * SECOND) % len(loop)
        return np.take(loop, np.arange(at, at + round(length * SECOND)), mode="wrap")

    # In the holds the MP3 plays the period, in order, turn after turn: what is heard is what the period
    # holds at that point, and the first file comes again after the last.
    heard = []
    for start, end in holds:
        for at in np.arange(start + 1.0, end - 1.0, 0.5):
            expected = playing(in_loop(at, 0.5), tones, 0.0)
            if tone_db(in_loop(at, 0.5), expected, 0.0) - max(
                    tone_db(in_loop(at, 0.5), hz, 0.0) for hz in tones if hz != expected) > 12:  # not in a crossfade
                assert playing(samples, tones, at) == expected, at
                heard.append((at // period, expected))
    assert {hz for _, hz in heard} == set(tones)
    assert any(turn >= 1 and hz == tones[0] for turn, hz in heard), heard

    # The bed dips under the words by its depth: relative to the period at the same point, it is 12 dB
    # lower in the middle of each line than in the middle of the hold after it.
    for (said_start, said_end), (hold_start, hold_end) in zip(speech, holds):
        def relative(start: float) -> float:
            hz = playing(in_loop(start, 0.5), tones, 0.0)
            return tone_db(samples, hz, start) - tone_db(in_loop(start, 0.5), hz, 0.0)

        under = relative((said_start + said_end) / 2 - 0.25)
        held = relative((hold_start + hold_end) / 2 - 0.25)
        assert held - under == pytest.approx(12.0, abs=1.5)

    # At its level under the speech, measured as test_bed_level measures it.
    def stretch(spans: list[tuple[float, float]]) -> np.ndarray:
        return np.concatenate([samples[round(start * SECOND): round(end * SECOND)] for start, end in spans])

    said = loudness(stretch(speech))
    bed = loudness(stretch([(start + 1.0, end - 0.5) for start, end in holds]))
    assert said == pytest.approx(-16.0, abs=1.0)
    assert bed - said == pytest.approx(-20.0, abs=2.0)

    # Faded in at the start and out at the end (1 s), from and to nothing.
    def rms_db(start: float, end: float) -> float:
        part = samples[round(start * SECOND): round(end * SECOND)].astype(np.float64)
        return 10 * math.log10(max(float(np.mean(part**2)), 1e-12) / 32768**2)

    last = plan["duration"]
    # (up to 0.6 s: the dip under the first words begins there, 200 ms before them)
    assert rms_db(0.0, 0.05) < rms_db(0.45, 0.55) - 20
    assert rms_db(0.2, 0.3) < rms_db(0.45, 0.55) - 3
    assert rms_db(last - 0.05, last) < rms_db(last - 1.6, last - 1.5) - 20
