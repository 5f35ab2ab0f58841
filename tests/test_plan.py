"""`plan` agrees with the routine file: totals add up, holds last exactly their duration,
and --hold, --hold-scale and --profile change exactly the holds they name."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from voiceguide.cli import cli
from voiceguide.durations import format_clock, spoken_duration
from voiceguide.plan.planner import expand, place
from voiceguide.plan.timeline import Line
from voiceguide.routine import Voice, load_routine
from voiceguide.units import SAMPLE_RATE

ENGINES = ["pyttsx3", "piper"]  # the engine names a routine may use
ROOT = Path(__file__).resolve().parent.parent
SCRIPTS = sorted((ROOT / "scripts").glob("*.yaml"))
SCIATICA = ROOT / "scripts" / "sciatica-self-massage.yaml"


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("clips")


def plan_json(cache_dir: Path, routine: Path, *options: str) -> dict:
    result = CliRunner().invoke(cli, ["plan", str(routine), "--json", "--cache-dir", str(cache_dir), *options])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def holds_by_step(timeline: dict) -> dict[str, list[float]]:
    holds: dict[str, list[float]] = {}
    for event in timeline["events"]:
        if event["kind"] == "hold":
            holds.setdefault(event["step"], []).append(round(event["end"] - event["start"], 3))
    return holds


@pytest.mark.slow
@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.stem)
def test_timeline_adds_up(cache_dir: Path, script: Path) -> None:
    timeline = plan_json(cache_dir, script)
    cues = [e for e in timeline["events"] if e["kind"] == "cue"]
    events = [e for e in timeline["events"] if e["kind"] != "cue"]
    assert timeline["format"] == 1
    assert events[0]["start"] == 0
    # Every cue lies inside a hold or a rest: of its own step, but for what leads into the next hold, which a
    # strict group says inside the rest of the step before (its instruction, "next up", "last round", the count).
    leading = ("say", "next", "last-round", "countdown")
    for cue in cues:
        assert any(e["kind"] in ("hold", "rest") and (e["step"] == cue["step"] or cue["cue"] in leading)
                   and e["start"] <= cue["start"] < e["end"] for e in events), cue
    # Events follow one another without gaps or overlaps and end at the total.
    for before, after in zip(events, events[1:]):
        assert before["end"] == after["start"], (before, after)
    assert events[-1]["end"] == timeline["duration"]
    steps = timeline["steps"]
    assert steps[0]["start"] == 0 and steps[-1]["end"] == timeline["duration"]
    for before, after in zip(steps, steps[1:]):
        assert before["end"] == after["start"]
    assert sum(e["end"] - e["start"] for e in events) == pytest.approx(timeline["duration"], abs=0.002)


@pytest.mark.slow
@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.stem)
def test_every_hold_lasts_its_duration(cache_dir: Path, script: Path) -> None:
    routine = load_routine(script, ENGINES)
    planned = {step.id: step.hold / 1000 for step in routine.all_steps() if step.hold is not None}
    timeline = plan_json(cache_dir, script)
    events = [e for e in timeline["events"] if e["kind"] != "cue"]
    for index, event in enumerate(events):
        if event["kind"] != "hold":
            continue
        assert event["end"] - event["start"] == pytest.approx(planned[event["step"]], abs=0.0011)
        # The hold starts where the instruction before it ends; the chime starts where it ends.
        if events[index - 1]["step"] == event["step"] and events[index - 1]["kind"] == "speech":
            assert events[index - 1]["end"] == event["start"]
        following = events[index + 1] if index + 1 < len(events) else None
        if following and following["kind"] == "chime":
            assert following["start"] == event["end"]
    # Every repetition, side and round is there: count the holds each step should have.
    expected_count = {"sciatica-self-massage": {"palms": 1, "thumbs": 1, "tennis-balls": 3, "knuckles": 1, "side-rest": 1},
                      "piriformis-stretch": {"figure-four": 4, "knee-to-chest": 2},
                      "box-breathing": {"in": 4, "hold-in": 4, "out": 4, "hold-out": 4},
                      "meditation": {"sit": 1}, "tabata": {"work": 8}, "emom": {"push-ups": 5, "lunges": 5},
                      "hamstring-stretch": {"hamstring": 6}}[script.stem]
    assert {k: len(v) for k, v in holds_by_step(timeline).items()} == expected_count


@pytest.mark.slow
def test_sides_and_templates_are_filled(cache_dir: Path) -> None:
    timeline = plan_json(cache_dir, ROOT / "scripts" / "piriformis-stretch.yaml")
    texts = [e["text"] for e in timeline["events"] if e["kind"] == "speech"]
    assert "Cross your left ankle over the opposite knee." in texts
    assert "Cross your right ankle over the opposite knee." in texts
    assert not any("{" in text for text in texts)
    sides = [e.get("side") for e in timeline["events"] if e["kind"] == "hold" and e["step"] == "figure-four"]
    assert sides == ["left", "left", "right", "right"]
    repeats = [e.get("repeat") for e in timeline["events"] if e["kind"] == "hold" and e["step"] == "figure-four"]
    assert repeats == [1, 2, 1, 2]


@pytest.mark.slow
def test_rounds_rest_between_rounds_only(cache_dir: Path) -> None:
    timeline = plan_json(cache_dir, ROOT / "scripts" / "box-breathing.yaml")
    rests = [e for e in timeline["events"] if e["kind"] == "rest" and e["step"] == "box"]
    assert [r["round"] for r in rests] == [1, 2, 3]
    assert all(r["end"] - r["start"] == pytest.approx(6.0, abs=0.001) for r in rests)
    announcements = [e["text"] for e in timeline["events"] if e["kind"] == "speech" and e["step"] == "box"]
    assert announcements == [f"Round {n} of 4." for n in range(1, 5)]


@pytest.mark.slow
def test_hold_option_changes_only_that_step(cache_dir: Path) -> None:
    base = plan_json(cache_dir, SCIATICA)
    changed = plan_json(cache_dir, SCIATICA, "--hold", "tennis-balls=90s")
    before, after = holds_by_step(base), holds_by_step(changed)
    assert after["tennis-balls"] == [90.0, 90.0, 90.0]
    for step_id in before:
        if step_id != "tennis-balls":
            assert after[step_id] == before[step_id]
    # Only the holds and the spoken {hold} change; the total moves by the held time plus
    # the difference in length of the clips that say the new hold, and the pauses before the
    # three changed holds, each of which may grow by up to a frame more or less to end its hold on the grid.
    assert "stay there for one minute thirty seconds" in json.dumps(changed)
    assert "stay there for one minute." not in json.dumps(changed)
    held = 3 * 30.0
    assert changed["duration"] - base["duration"] == pytest.approx(held + _spoken_difference(base, changed),
                                                                   abs=3 * 1152 / 44100 + 0.002)


def _spoken_difference(base: dict, changed: dict) -> float:
    def speech_total(timeline: dict) -> float:
        return sum(e["end"] - e["start"] for e in timeline["events"] if e["kind"] == "speech")

    return speech_total(changed) - speech_total(base)


@pytest.mark.slow
def test_hold_scale_scales_holds_not_set_explicitly(cache_dir: Path) -> None:
    base = holds_by_step(plan_json(cache_dir, SCIATICA))
    scaled = holds_by_step(plan_json(cache_dir, SCIATICA, "--hold-scale", "1.5", "--hold", "palms=20s"))
    assert scaled["palms"] == [20.0]
    for step_id, lengths in base.items():
        if step_id != "palms":
            assert scaled[step_id] == [round(length * 1.5, 3) for length in lengths]


@pytest.mark.slow
def test_profile_sets_holds_and_command_line_wins(cache_dir: Path, tmp_path: Path) -> None:
    profile = tmp_path / "me.yaml"
    profile.write_text("holds:\n  tennis-balls: 75s\n  side-rest: 8m\nhold-scale: 2\nvoice:\n  rate: 140\n")
    from_profile = plan_json(cache_dir, SCIATICA, "--profile", str(profile))
    holds = holds_by_step(from_profile)
    assert holds["tennis-balls"] == [75.0] * 3
    assert holds["side-rest"] == [480.0]
    assert holds["palms"] == [90.0] and holds["knuckles"] == [120.0]
    assert {e["voice"]["rate"] for e in from_profile["events"] if e["kind"] == "speech"} == {140}

    overridden = plan_json(cache_dir, SCIATICA, "--profile", str(profile), "--hold", "tennis-balls=30s",
                           "--hold-scale", "1", "--rate", "170")
    holds = holds_by_step(overridden)
    assert holds["tennis-balls"] == [30.0] * 3
    assert holds["side-rest"] == [480.0]  # still from the profile
    assert holds["palms"] == [45.0]  # the command line's scale won
    assert {e["voice"]["rate"] for e in overridden["events"] if e["kind"] == "speech"} == {170}


@pytest.mark.slow
def test_plan_table_shows_every_hold_and_the_total(cache_dir: Path) -> None:
    result = CliRunner().invoke(cli, ["plan", str(SCIATICA), "--cache-dir", str(cache_dir), "--hold", "knuckles=75s"])
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert lines[0] == "Self-massage for sciatica"
    assert lines[1].split() == ["start", "step", "what", "happens", "length"]
    hold_rows = [line for line in lines if " hold" in line and "knuckles" in line]
    assert len(hold_rows) == 1 and hold_rows[0].endswith("1m15s")
    timeline = plan_json(cache_dir, SCIATICA, "--hold", "knuckles=75s")
    cues = sum(1 for e in timeline["events"] if e["kind"] == "cue")
    assert cues > 10
    total = format_clock(round(timeline["duration"] * 1000))
    total += "" if "." in total else ".0"  # every time in the table to the tenth, the total too
    assert lines[-1] == f"total {total} (8 steps, 7 holds, {cues} cues)"


# Planning without an engine: lengths come from a stand-in so the rules themselves are checked.


def _plan_text(tmp_path: Path, text: str):
    routine_file = tmp_path / "r.yaml"
    routine_file.write_text(text)
    routine = load_routine(routine_file, ENGINES)
    sections = expand(routine, Voice(), Voice(engine="pyttsx3", rate=160, volume=1.0))
    word_length = lambda line: len(line.text.split()) * SAMPLE_RATE // 2  # noqa: E731
    return place(routine, sections, word_length, lambda chime: SAMPLE_RATE)


def test_hold_starts_when_speech_ends_and_chime_when_hold_ends(tmp_path: Path) -> None:
    timeline = _plan_text(tmp_path, "title: T\npause: 0\nsteps:\n  - title: A\n    say: one two three four\n    hold: 10s\n")
    kinds = [(e.kind, e.start, e.end) for e in timeline.events]
    assert kinds == [("speech", 0, 2 * SAMPLE_RATE), ("hold", 2 * SAMPLE_RATE, 12 * SAMPLE_RATE),
                     ("chime", 12 * SAMPLE_RATE, 13 * SAMPLE_RATE)]


def test_pause_separates_sounds_but_not_speech_from_hold(tmp_path: Path) -> None:
    timeline = _plan_text(tmp_path, "title: T\npause: 1s\nsteps:\n  - title: A\n    say: [one two, three four]\n"
                                    "    hold: 5s\n  - title: B\n    say: five six\n")
    kinds = [e.kind for e in timeline.events]
    assert kinds == ["pause", "speech", "pause", "speech", "hold", "chime", "pause", "speech", "pause"]
    # A pause lasts what the routine says, and less than one MP3 frame more: enough to end the next hold
    # (or, with none before the next pause, to start the next sound) on the frame grid.
    assert all(SAMPLE_RATE <= e.length < SAMPLE_RATE + 1152 for e in timeline.events if e.kind == "pause")
    hold = next(e for e in timeline.events if e.kind == "hold")
    assert hold.length == 5 * SAMPLE_RATE and hold.end % 1152 == 0
    assert timeline.events[-2].start % 1152 == 0 and timeline.duration % 1152 == 0


def test_hold_template_speaks_the_overridden_hold(tmp_path: Path) -> None:
    from voiceguide.overrides import HoldSetting, Overrides, apply_overrides

    routine_file = tmp_path / "r.yaml"
    routine_file.write_text("title: T\nsteps:\n  - title: A\n    say: Hold for {hold}.\n    hold: 1m\n")
    routine = apply_overrides(load_routine(routine_file, ENGINES), Overrides(holds={"a": HoldSetting(90_000, "--hold a")}))
    sections = expand(routine, Voice(), Voice(engine="pyttsx3", rate=160, volume=1.0))
    lines = [part.line for part in sections[0].parts if part.line]
    assert lines == [Line(f"Hold for {spoken_duration(90_000)}.", Voice(engine="pyttsx3", rate=160, volume=1.0))]
    assert lines[0].text == "Hold for one minute thirty seconds."


def test_step_voice_refines_routine_voice_but_not_the_listeners(tmp_path: Path) -> None:
    routine_file = tmp_path / "r.yaml"
    routine_file.write_text("title: T\nvoice: {rate: 150}\nsteps:\n  - title: A\n    say: x\n"
                            "  - title: B\n    say: y\n    voice: {rate: 100, volume: 0.5}\n")
    routine = load_routine(routine_file, ENGINES)
    defaults = Voice(engine="pyttsx3", rate=160, volume=1.0)
    rates = [(p.line.voice.rate, p.line.voice.volume) for s in expand(routine, Voice(), defaults) for p in s.parts]
    assert rates == [(150, 1.0), (100, 0.5)]
    listener = Voice(rate=200)
    rates = [(p.line.voice.rate, p.line.voice.volume) for s in expand(routine, listener, defaults) for p in s.parts]
    assert rates == [(200, 1.0), (200, 0.5)]
