"""Hostile input: whatever a file holds, `voiceguide check` answers within a second with one line per problem
(FILE:LINE:COL, or the file's name for the file as a whole) and exit code 2, never a traceback, a hang or all the
memory; `plan` refuses the same things before it speaks a line.

Cases that can be a checked-in file are in tests/bad/ (test_bad_input.py); these are made here because they are
not files (a pipe, a device), hold bytes an editor would not keep, or check timing and the speech layer.
"""

from __future__ import annotations

import os
import re
import time
import wave
from pathlib import Path

import numpy as np
import pytest
from click.testing import Result
from test_bad_input import assert_bad_input, run
from test_fuzz import ToneEngine

from voiceguide import api
from voiceguide.environment import Environment
from voiceguide.errors import EngineError, Location, RoutineError
from voiceguide.plan.timeline import Line
from voiceguide.routine import Voice
from voiceguide.speech import clips
from voiceguide.speech.engines import Engine, VoiceInfo
from voiceguide.units import SAMPLE_RATE

STEP = "steps:\n  - title: Sit\n    hold: 5s\n"


# What counts as no answer: check answers these within a second (benchmarks/hostile.py measures it); the tests only
# make sure nothing hangs or runs away, with room for a machine busy with other work.
HANG_SECONDS = 10.0


def check_quickly(path: Path | str) -> Result:
    """`voiceguide check PATH`, which must answer, and not after reading or expanding without end."""
    began = time.monotonic()
    result = run("check", str(path))
    assert time.monotonic() - began < HANG_SECONDS, f"check took {time.monotonic() - began:.1f} s"
    return result


def write(tmp_path: Path, data: bytes | str, name: str = "routine.yaml") -> Path:
    path = tmp_path / name
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return path


# --- what is not a regular file -------------------------------------------------------------


def test_a_device_is_refused_without_reading_it() -> None:
    # /dev/zero never ends: reading it would take all the memory there is.
    assert_bad_input(check_quickly("/dev/zero"), "/dev/zero: is a device, not a routine file\n")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no named pipes here")
def test_a_pipe_is_refused_without_waiting_for_a_writer(tmp_path: Path) -> None:
    pipe = tmp_path / "routine.yaml"
    os.mkfifo(pipe)
    assert_bad_input(check_quickly(pipe), f"{pipe}: is a pipe, not a routine file\n")


def test_a_profile_that_is_a_device_is_refused(tmp_path: Path) -> None:
    with pytest.raises(RoutineError) as caught:
        api.load_profile("/dev/zero")
    assert caught.value.lines() == ["/dev/zero: is a device, not a profile file"]


# --- files that would take long to read ----------------------------------------------------


@pytest.mark.parametrize("steps, where", [
    ("[" + ", ".join(["x"] * 50_000) + "]", "2:29994"),  # far more values than any routine has
    ("[" + ", ".join(["[" * 30 + "]" * 30] * 6_000) + "]", "2:20660"),  # each deep, which PyYAML reads slowly
    ("\n" + "".join(f"  - title: Step {i}\n    hold: 1s\n" for i in range(6_000)), "4001:5"),
])
def test_a_file_of_too_many_values_is_refused_as_it_is_read(tmp_path: Path, steps: str, where: str) -> None:
    path = write(tmp_path, f"title: T\nsteps: {steps}\n")
    assert_bad_input(check_quickly(path), f"{path}:{where}: the file holds more than 10000 values; refusing to read "
                                          "it\n")


@pytest.mark.parametrize("value, where", [
    ("[" * 2000 + "]" * 2000, "2:48"),
    ("{a: " * 2000 + "1" + "}" * 2000, "2:161"),
    ("".join("\n" + " " * (i + 1) + "- " for i in range(60)) + "x", "42:41"),
])
def test_values_nested_too_deep_are_refused_at_once(tmp_path: Path, value: str, where: str) -> None:
    path = write(tmp_path, f"title: T\nsteps: {value}\n")
    assert_bad_input(check_quickly(path), f"{path}:{where}: invalid YAML: values nested more than 40 deep\n")


# --- characters and numbers a value cannot hold ---------------------------------------------


@pytest.mark.parametrize("char", ["\x07", "\x1b", "\x7f", "\x9b", "\ufffe"])
def test_a_control_character_in_the_file(tmp_path: Path, char: str) -> None:
    path = write(tmp_path, f"title: T{char}\n{STEP}")
    code = f"U+{ord(char):04X}"
    assert_bad_input(check_quickly(path), f"{path}:1:9: a control character ({code}) in the file; a routine file "
                                          "holds only printable text, tabs and line breaks\n")


def test_a_control_character_is_placed_as_yaml_counts_lines(tmp_path: Path) -> None:
    # A carriage return alone ends a line for YAML, as it does for its own marks.
    path = write(tmp_path, f"title: T\r{STEP}    say: a\x01b\n")
    assert_bad_input(check_quickly(path), f"{path}:5:11: a control character (U+0001) in the file; a routine file "
                                          "holds only printable text, tabs and line breaks\n")


@pytest.mark.parametrize("escape, code, what", [
    ("\\0", "U+0000", "a control character"),
    ("\\e", "U+001B", "a control character"),
    ("\\x9b", "U+009B", "a control character"),
    ("\\ud800", "U+D800", "half of a surrogate pair, not a character"),
    ("\\udfff", "U+DFFF", "half of a surrogate pair, not a character"),
])
def test_an_escaped_character_a_value_cannot_hold(tmp_path: Path, escape: str, code: str, what: str) -> None:
    path = write(tmp_path, f'title: "T{escape}"\nchime: "bell{escape}.wav"\n{STEP}')
    message = f"this value holds {code}, {what}; remove it"
    assert_bad_input(check_quickly(path), f"{path}:1:8: {message}\n{path}:2:8: {message}\n")


def test_an_escaped_character_in_a_key(tmp_path: Path) -> None:
    path = write(tmp_path, f'title: T\n"\\0": 1\n{STEP}')
    assert_bad_input(check_quickly(path), f"{path}:2:1: this value holds U+0000, a control character; remove it\n")


def test_tabs_and_line_breaks_may_stand_in_text(tmp_path: Path) -> None:
    path = write(tmp_path, 'title: T\nsteps:\n  - title: Sit\n    say: "Sit.\\tBreathe.\\nRelax."\n    hold: 5s\n')
    result = check_quickly(path)
    assert result.exit_code == 0, result.stderr


@pytest.mark.parametrize("number", ["9" * 5000, "-" + "9" * 4301, "1" + "0" * 20, "0x" + "f" * 5000, "0b" + "1" * 70,
                                    "1:" * 30 + "1"])
def test_a_number_too_long_for_any_setting(tmp_path: Path, number: str) -> None:
    path = write(tmp_path, f"title: T\n{STEP}    repeat: {number}\n")
    assert_bad_input(check_quickly(path), f"{path}:5:13: a number of more than 20 digits; no setting takes one (put "
                                          "text in quotes)\n")


@pytest.mark.parametrize("value, message", [
    ("2001-02-30", "cannot read '2001-02-30' as a date"),
    ("2001-12-14t21:59:43.10-99:00", "cannot read '2001-12-14t21:59:43.10-99:00' as a date"),
    ("!!bool maybe", "cannot read 'maybe' as true or false"),
    ("!!float abc", "cannot read 'abc' as a number"),
    ("!!int 0x", "cannot read '0x' as a whole number"),
])
def test_a_value_yaml_cannot_read_as_its_type(tmp_path: Path, value: str, message: str) -> None:
    path = write(tmp_path, f"title: T\n{STEP}    say: {value}\n")
    assert_bad_input(check_quickly(path), f"{path}:5:10: {message}; put text in quotes\n")


def test_numbers_of_twenty_digits_are_read(tmp_path: Path) -> None:
    path = write(tmp_path, f"title: T\n{STEP}    repeat: {'9' * 20}\n")
    result = check_quickly(path)
    assert result.stderr == f"{path}:3:5: the session would last more than 12 hours (holds and rests reach thousands " \
                            "of hours by step 'sit')\n"


def test_a_file_name_with_a_line_break_stays_on_one_line(tmp_path: Path) -> None:
    folder = tmp_path / "a\nb"
    folder.mkdir()
    path = write(folder, "title: T\nsteps: 5\n")
    shown = str(path).replace("\n", "\\n")
    assert_bad_input(check_quickly(path), f"{shown}:2:8: 'steps' must be a list of at least one step, got 5\n")


def test_values_with_line_breaks_stay_on_one_line(tmp_path: Path) -> None:
    path = write(tmp_path, 'title: T\nsteps:\n  - title: Sit\n    hold: "5\\nmints"\n    sides: ["a\\nb", "a\\nb"]\n'
                           '    "odd\\nkey": 1\n')
    result = check_quickly(path)
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        f"{path}:4:11: 'hold': unknown unit 'mints' in '5\\nmints'; use h, m, s or ms",
        f"{path}:5:21: side 'a\\nb' is listed twice",
        f"{path}:6:5: unknown key 'odd\\nkey' in a step (valid keys: title, id, say, hold, repeat, between, "
        "rest-between, sides, rest, chime, voice, countdown, halfway, remaining, cues, bells, switch, next, last-round, "
        "steps, rounds, strict, chapters)",
    ]


# --- sessions too big to plan ---------------------------------------------------------------


def test_bells_count_against_the_event_limit(tmp_path: Path) -> None:
    path = write(tmp_path, "title: T\nsteps:\n  - title: Sit\n    hold: 12h\n    bells: {every: 1ms}\n")
    assert_bad_input(check_quickly(path), f"{path}:3:5: the session would have more than 50000 events (lines, holds, "
                                          "chimes, rests and cues) by step 'sit'; use fewer repeats, rounds, sides or "
                                          "cues\n")


@pytest.mark.parametrize("cues", ["remaining: {every: 500ms}", "bells: {every: 500ms}", "countdown: 10\n    repeat: 6000",
                                  "cues: [{at: 1s, say: Hi.}, {at: 2s, say: Ho.}]\n    repeat: 10000"])
def test_cues_set_for_the_routine_count_too(tmp_path: Path, cues: str) -> None:
    # Set at the top of the routine, for every hold: a default counts where it applies.
    top, _, step_extra = cues.partition("\n")
    path = write(tmp_path, f"title: T\n{top}\nsteps:\n  - title: Sit\n    hold: 12h\n{step_extra}\n")
    result = check_quickly(path)
    assert result.exit_code == 2
    assert "more than 50000 events" in result.stderr or "more than 12 hours" in result.stderr, result.stderr


def test_a_hold_made_longer_cannot_expand_past_the_limit(tmp_path: Path) -> None:
    # The file is fine (a thousand bells); a hold set on the command line would make 43 million.
    path = write(tmp_path, "title: T\nsteps:\n  - title: Sit\n    hold: 1s\n    bells: {every: 1ms}\n")
    assert check_quickly(path).exit_code == 0
    began = time.monotonic()
    result = run("plan", str(path), "--hold", "sit=12h", "--cache-dir", str(tmp_path / "cache"))
    assert time.monotonic() - began < HANG_SECONDS
    assert_bad_input(result, f"{path}:3:5: the session would have more than 50000 events (lines, holds, chimes, rests "
                             "and cues) by step 'sit'; use fewer repeats, rounds, sides or cues\n")


def test_a_session_of_thousands_of_different_lines_is_refused_before_any_is_spoken(tmp_path: Path) -> None:
    # Under the event limit, yet every second's "N seconds left" is a line of its own: 10,798 clips to make.
    path = write(tmp_path, "title: T\nsteps:\n  - title: Sit\n    hold: 3h\n    remaining: {every: 1s}\n")
    expected = (f"{path}:3:5: the session would speak 10,798 different lines, cues included; at most 2,000 are "
                "spoken (use fewer timed cues or repeats)\n")
    assert_bad_input(check_quickly(path), expected)
    began = time.monotonic()
    result = run("plan", str(path), "--cache-dir", str(tmp_path / "cache"))
    assert time.monotonic() - began < HANG_SECONDS
    assert_bad_input(result, expected)
    assert not any((tmp_path / "cache").rglob("*.wav"))


# The step's instruction, then "N seconds left" every second but in the hold's first moments: 2,000 lines in all
# with a hold of 2,001 s, 2,001 with a second more.
@pytest.mark.parametrize("hold, refused", [(2001, False), (2002, True)])
def test_the_limit_on_different_lines_is_exact(tmp_path: Path, hold: int, refused: bool) -> None:
    from voiceguide.plan.planner import MAX_LINES, expand, lines_of

    path = write(tmp_path, f"title: T\nsteps:\n  - title: Sit\n    say: Sit.\n    hold: {hold}s\n"
                           "    remaining: {every: 1s}\n")
    routine = api.load(path, Environment.from_os(tmp_path / "cache"))
    if refused:
        with pytest.raises(RoutineError, match="2,001 different lines"):
            expand(routine, Voice(), Voice())
    else:
        assert len(lines_of(expand(routine, Voice(), Voice()))) == MAX_LINES


def test_thousands_of_sides_are_refused_at_once(tmp_path: Path) -> None:
    sides = ", ".join(f"side {i}" for i in range(5000))
    path = write(tmp_path, f"title: T\nsteps:\n  - title: Sit\n    hold: 1s\n    sides: [{sides}]\n")
    assert_bad_input(check_quickly(path), f"{path}:5:12: 'sides' lists 5000 sides; a step or group may have at most "
                                          "50\n")


def test_side_switches_count_in_the_session_length(tmp_path: Path) -> None:
    # 50 sides of 15 minutes: 12:30 of holds; with the 3 s switches between them, over 12 hours.
    sides = ", ".join(f"s{i}" for i in range(50))
    path = write(tmp_path, f"title: T\nsteps:\n  - title: Sit\n    hold: 14m24s\n    sides: [{sides}]\n")
    result = check_quickly(path)
    assert result.stderr == f"{path}:3:5: the session would last more than 12 hours (holds and rests reach 12:02:27 " \
                            "by step 'sit')\n"


def test_nested_rounds_report_a_length_that_means_something(tmp_path: Path) -> None:
    groups = "".join(f"[{{title: g{i}, rounds: 99999, steps: " for i in range(10))
    path = write(tmp_path, f"title: T\nsteps: {groups}[{{title: a, hold: 1h}}]" + "}]" * 10 + "\n")
    assert_bad_input(check_quickly(path), f"{path}:2:9: the session would last more than 12 hours (holds and rests "
                                          "reach thousands of hours by step 'g0')\n")


# --- lines a voice cannot say ---------------------------------------------------------------


def test_a_line_filled_in_with_nothing_to_say_is_refused_where_it_is_written(tmp_path: Path) -> None:
    # The loader cannot know a side's name makes the line; the planner can, before any line is spoken.
    path = write(tmp_path, "title: T\nsteps:\n  - title: Sit\n    say: '{side}'\n    hold: 5s\n    sides: ['?', '!']\n")
    assert_bad_input(run("check", str(path)),
                     f"{path}:4:10: nothing to say in '?' once filled in; a line needs a letter or a digit\n")


def test_a_line_filled_in_too_long_is_refused_where_it_is_written(tmp_path: Path) -> None:
    side = "very " * 250 + "left"
    path = write(tmp_path, f"title: T\nsteps:\n  - title: Sit\n    say: Now {{side}}.\n    hold: 5s\n"
                           f"    sides: [{side}, right]\n")
    result = run("check", str(path))
    assert result.exit_code == 2
    assert result.stderr.startswith(f"{path}:4:10: a line of 1259 characters once filled in; a spoken line may have "
                                    "at most 1000: 'Now very very ")
    assert result.stderr.count("\n") == 1


def test_a_line_of_a_thousand_characters_is_taken(tmp_path: Path) -> None:
    path = write(tmp_path, f"title: T\nsteps:\n  - title: Sit\n    say: {'a' * 999}.\n")
    assert check_quickly(path).exit_code == 0


# --- the speech layer -----------------------------------------------------------------------


class FailingEngine(Engine):
    name = "failing"

    def version(self) -> str:
        return "1"

    def voices(self) -> list[VoiceInfo]:
        return [VoiceInfo("only", "Only", ("en",))]

    def default_voice(self) -> str:
        return "only"

    def synthesize(self, text: str, voice: str, rate: int, volume: float, path: Path, timeout: float) -> None:
        raise EngineError("Segmentation fault (status 11)")


def test_an_engine_failure_names_the_line_in_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(clips, "create_engine", lambda name, environment: FailingEngine(environment))
    path = write(tmp_path, "title: T\nintro: Welcome.\nsteps:\n  - title: Sit\n    say:\n      - Sit down.\n"
                           "      - \"Breathe\\nslowly.\"\n    hold: 5s\n")
    environment = Environment(cache_dir=tmp_path / "cache", bundled=Environment.from_os().bundled)
    routine = api.load(path, environment)
    with pytest.raises(EngineError) as caught:
        api.plan_session(routine, environment=environment, jobs=1, for_build=False)
    said = {'"Welcome."': "2:8", '"Sit down."': "6:9", '"Breathe\\nslowly."': "7:9"}
    line = caught.value.lines()[0]
    match = re.fullmatch(rf"{re.escape(str(path))}:(\d+:\d+): could not speak (\".*\"): Segmentation fault "
                         r"\(status 11\)", line)
    assert match, line
    assert said[match.group(2)] == match.group(1)


def test_a_warning_about_a_line_with_a_line_break_stays_on_one_line(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(clips, "create_engine", lambda name, environment: ToneEngine(environment))
    path = write(tmp_path, 'title: T\nsteps:\n  - title: Sit\n    hold: 3s\n    halfway: "Half\\nway"\n'
                           '    cues: [{at: 1s, say: "Breathe\\nin and out and in and out."}]\n')
    result = run("plan", str(path), "--quiet", "--cache-dir", str(tmp_path / "cache"))
    assert result.exit_code == 0, result.stderr
    assert result.stderr.splitlines() == [
        f'{path}:6:12: warning: step \'sit\': cue "Breathe\\nin and out and in and out." at 0:01 runs 1.3 s past '
        "the end of its hold of 0:03",
        f'{path}:3:5: warning: step \'sit\': halfway cue "Half\\nway" at 0:01.5 overlaps cue "Breathe\\nin and out '
        'and in and out." by 2.8 s',
    ]


def wav(path: Path, seconds: float, loud: bool = True) -> None:
    t = np.arange(int(16000 * seconds)) / 16000
    samples = (np.sin(2 * np.pi * 220 * t) * (12000 if loud else 0)).astype("<i2")
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(16000)
        out.writeframes(samples.tobytes())


# What espeak-ng said for each, at 160 words a minute (seconds, trimmed): text in scripts without spaces.
SPOKEN = [
    ("ゆっくりと息を吸って、吐いてください。床に仰向けに寝て、両膝を胸に引き寄せ、ゆっくりと深く息を吸ってから、静かに吐き出してください。", 26.0),
    ("请躺在地板上，把双膝拉向胸前，慢慢地深吸一口气，然后轻轻地呼出来。", 13.06),
    ("นอนหงายบนพื้นแล้วดึงเข่าทั้งสองข้างเข้าหาหน้าอกหายใจเข้าลึกๆช้าๆแล้วหายใจออก", 9.08),
    ("استلق على ظهرك واسحب ركبتيك نحو صدرك", 3.5),
    ("الرَّحْمَٰنِ", 6.0),  # one word an English voice spells, mark by mark
    ("Hold it for thirty seconds.", 1.6),
]


@pytest.mark.parametrize("text, seconds", SPOKEN, ids=["ja", "zh", "th", "ar", "ar-spelled", "en"])
def test_real_speech_in_any_script_passes_the_clip_check(tmp_path: Path, environment: Environment, text: str,
                                                         seconds: float) -> None:
    path = tmp_path / "clip.wav"
    wav(path, seconds)
    samples = clips._checked(Line(text, Voice(rate=160)), path, environment)
    assert len(samples) / SAMPLE_RATE == pytest.approx(seconds, abs=0.05)


@pytest.mark.parametrize("text, seconds", SPOKEN, ids=["ja", "zh", "th", "ar", "ar-spelled", "en"])
def test_a_broken_clip_is_still_caught_in_any_script(tmp_path: Path, environment: Environment, text: str,
                                                     seconds: float) -> None:
    path = tmp_path / "clip.wav"
    for length, loud in ((seconds, False), (0.05, True), (seconds * 20 + 10, True)):  # silence, a click, far too long
        wav(path, length, loud)
        with pytest.raises(EngineError, match="the engine wrote"):
            clips._checked(Line(text, Voice(rate=160)), path, environment)


def test_words_are_counted_in_scripts_without_spaces() -> None:
    assert clips.spoken_words("Breathe in.") == 2.75  # a word for every four letters, one at least
    assert clips.spoken_words("Internationalization.") == 5
    assert clips.spoken_words("深呼吸してください") == 9  # a syllable or a mora a character
    assert clips.spoken_words("หายใจเข้า") == 4  # three syllables: half a word a letter; tone marks go with them
    assert clips.spoken_words("...") == 1


@pytest.mark.slow
@pytest.mark.parametrize("voice, text", [
    ("ja", SPOKEN[0][0]),
    ("cmn", SPOKEN[1][0]),
    ("th", SPOKEN[2][0]),
    ("ar", SPOKEN[3][0]),
])
def test_the_real_voice_speaks_other_scripts(tmp_path: Path, speech_cache: Path, voice: str, text: str) -> None:
    path = write(tmp_path, f"title: T\nvoice: {voice}\nsteps:\n  - title: Sit\n    say: {text}\n    hold: 5s\n")
    result = run("plan", str(path), "--cache-dir", str(speech_cache), "--quiet")
    assert result.exit_code == 0, result.stderr


def test_location_of_a_line_is_not_part_of_its_identity() -> None:
    voice = Voice(rate=160)
    assert Line("Hi.", voice, Location("a.yaml", 1, 1)) == Line("Hi.", voice, Location("b.yaml", 9, 9))
    assert len({Line("Hi.", voice, Location("a.yaml", 1, 1)), Line("Hi.", voice)}) == 1
