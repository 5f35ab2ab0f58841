"""--fit and a profile's `fit:`: the session lasts the length asked, to within an MP3 frame, and only holds change.

Durations are read from the built MP3 (decoded) and from `plan --json`.
"""

from __future__ import annotations

import re
from pathlib import Path

import audio_probe
import pytest
from test_bad_input import HOLDS
from test_build import BOX, PIRIFORMIS, build, invoke, one_line_error, plan_json

from voiceguide.durations import parse_duration, spoken_duration

SAMPLE_RATE = audio_probe.SAMPLE_RATE
FRAME = 1152 / SAMPLE_RATE  # seconds


def holds(plan: dict) -> dict[str, list[float]]:
    """Each step's hold lengths in seconds, in order."""
    found: dict[str, list[float]] = {}
    for event in plan["events"]:
        if event["kind"] == "hold":
            found.setdefault(event["step"], []).append(round(event["end"] - event["start"], 3))
    return found


def lengths(plan: dict, kinds: tuple[str, ...]) -> list[float]:
    """The lengths of the events of these kinds, in ms, shortest first."""
    return sorted((e["end"] - e["start"]) * 1000 for e in plan["events"] if e["kind"] in kinds)


def test_a_built_session_lasts_the_length_asked(speech_cache: Path, tmp_path: Path) -> None:
    mp3 = build(BOX, tmp_path / "box.mp3", speech_cache, "--fit", "1m30s")
    decoded = audio_probe.decode(mp3)
    assert abs(audio_probe.duration(decoded) - 90) <= FRAME
    plan = plan_json(BOX, speech_cache, "--fit", "1m30s")
    assert abs(plan["duration"] - 90) <= FRAME / 2  # the nearest whole number of frames
    assert abs(plan["duration"] - audio_probe.duration(decoded)) <= 0.0005  # the plan's times are in whole ms


@pytest.mark.parametrize("length", ["1m10s", "2m", "7m13s", "25m"])
def test_only_the_holds_change_all_by_one_factor(speech_cache: Path, length: str) -> None:
    before = plan_json(BOX, speech_cache)
    after = plan_json(BOX, speech_cache, "--fit", length)
    assert abs(after["duration"] - parse_duration(length) / 1000) <= FRAME / 2
    # Speech, chimes and rests are as they were; pauses at most a frame longer (they put holds on the frame grid).
    # Cues sound inside the holds, and as many as fit.
    sounds = ("speech", "chime", "rest")
    assert lengths(after, sounds) == pytest.approx(lengths(before, sounds), abs=1.01)  # times rounded to the ms
    kinds = ("speech", "chime", "rest", "hold", "pause")
    assert [e["kind"] for e in after["events"] if e["kind"] in kinds] == [e["kind"] for e in before["events"] if e["kind"] in kinds]
    # Every hold was 4 s: they are scaled alike, one of them tuned by a few milliseconds.
    fitted = [length for each in holds(after).values() for length in each]
    assert max(fitted) - min(fitted) <= 0.02


def test_lines_that_say_the_hold_say_the_fitted_one(speech_cache: Path) -> None:
    plan = plan_json(PIRIFORMIS, speech_cache, "--fit", "6m")
    assert abs(plan["duration"] - 360) <= FRAME / 2
    fitted = holds(plan)
    assert fitted["figure-four"][0] != 30 and fitted["knee-to-chest"][0] != 30
    for step, each in fitted.items():
        said = [e["text"] for e in plan["events"] if e["kind"] == "speech" and e["step"] == step and "Hold for" in e["text"]]
        assert said and all(f"Hold for {spoken_duration(round(each[0] * 1000))}" in text for text in said)


def test_holds_set_explicitly_keep_their_length(speech_cache: Path, tmp_path: Path) -> None:
    plan = plan_json(PIRIFORMIS, speech_cache, "--fit", "8m", "--hold", "knee-to-chest=45s")
    assert abs(plan["duration"] - 480) <= FRAME / 2
    assert holds(plan)["knee-to-chest"] == [45.0, 45.0]
    # A profile's holds are set explicitly too.
    profile = tmp_path / "me.yaml"
    profile.write_text("holds:\n  knee-to-chest: 45s\nfit: 8m\n")
    plan = plan_json(PIRIFORMIS, speech_cache, "--profile", profile)
    assert abs(plan["duration"] - 480) <= FRAME / 2
    assert holds(plan)["knee-to-chest"] == [45.0, 45.0]


def test_a_session_that_cannot_be_that_short_says_how_long_the_rest_takes(speech_cache: Path) -> None:
    plan = plan_json(BOX, speech_cache)
    rest = plan["duration"] - sum(sum(each) for each in holds(plan).values())
    line = one_line_error(invoke("plan", BOX, "--fit", "30s", "--cache-dir", speech_cache), 2)
    found = re.fullmatch(r"--fit 30s: the session cannot last 0:30: its speech, rests and pauses alone take (\d+):(\d+\.?\d*)", line)
    assert found, line
    assert abs(int(found[1]) * 60 + float(found[2]) - rest) <= 0.1
    line = one_line_error(invoke("plan", PIRIFORMIS, "--fit", "3m", "--hold", "figure-four=1m", "--cache-dir", speech_cache), 2)
    assert line.startswith("--fit 3m: the session cannot last 3:00: its speech, rests, pauses and the holds you set alone take ")


@pytest.mark.parametrize("options, message", [
    (("--fit", "10m", "--hold-scale", "2"), "--fit and --hold-scale both say how long the holds are; give one of them"),
    (("--fit", "5m", "--hold", "left=10s", "--hold", "right=10s"),
     "--fit 5m: every hold of this routine is set with --hold or in the profile, and those keep their length; "
     "fitting changes only the others"),
])
def test_fit_that_cannot_apply_is_one_line(tmp_path: Path, options: tuple[str, ...], message: str) -> None:
    assert one_line_error(invoke("plan", HOLDS, "--cache-dir", tmp_path, *options), 2) == message


def test_a_routine_without_holds(tmp_path: Path) -> None:
    routine = tmp_path / "talk.yaml"
    routine.write_text("title: Talk\nsteps:\n  - title: Hello\n    say: Hello.\n")
    assert (one_line_error(invoke("plan", routine, "--fit", "5m", "--cache-dir", tmp_path), 2)
            == "--fit 5m: this routine has no holds, and fitting changes only the holds")


@pytest.mark.parametrize("value, message", [
    ("0", "a session must last longer than zero"),
    ("13h", "a session may last at most 12 hours, got 13:00:00"),
    ("soon", "expected a duration such as 45, 45s, 1m30s, 1:30, 2 min, 1.5m, 90 seconds or 1h, got 'soon'"),
])
def test_fit_malformed(tmp_path: Path, value: str, message: str) -> None:
    result = invoke("plan", HOLDS, "--cache-dir", tmp_path, "--fit", value)
    assert result.exit_code == 2
    assert result.stderr.endswith(f"Error: Invalid value for '--fit': {message}\n")


def test_the_command_line_replaces_the_profile_s_fit_or_hold_scale(speech_cache: Path, tmp_path: Path) -> None:
    fitting = tmp_path / "fit.yaml"
    fitting.write_text("fit: 2m\n")
    scaling = tmp_path / "scale.yaml"
    scaling.write_text("hold-scale: 3\n")
    assert abs(plan_json(BOX, speech_cache, "--profile", fitting)["duration"] - 120) <= FRAME / 2
    scaled = plan_json(BOX, speech_cache, "--hold-scale", "0.5")
    assert plan_json(BOX, speech_cache, "--profile", fitting, "--hold-scale", "0.5") == scaled
    assert abs(plan_json(BOX, speech_cache, "--profile", scaling, "--fit", "1m40s")["duration"] - 100) <= FRAME / 2


def test_the_python_api_fits(environment) -> None:
    import voiceguide

    routine = voiceguide.adjust(voiceguide.load(PIRIFORMIS, environment), holds={"knee-to-chest": "20s"})
    session = voiceguide.plan_session(routine, environment=environment, for_build=False, fit="5m",
                                      keep=("knee-to-chest",))
    assert abs(session.timeline.duration / SAMPLE_RATE - 300) <= FRAME / 2
    fitted = {step.id: step.hold for step in session.routine.all_steps() if step.hold}
    assert fitted["knee-to-chest"] == 20_000 and fitted["figure-four"] != 30_000
    assert session.timeline == voiceguide.plan_session(session.routine, environment=environment, for_build=False).timeline

