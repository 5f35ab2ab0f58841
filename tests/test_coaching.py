"""Interval training and coaching: rests between repetitions, strict intervals, counters across a circuit,
"last round", a chapter per round, and the rough edges of "next up", `remaining` and the closing strikes.

Rules are checked on plans made with stand-in clip lengths (no engine), to
the sample; the promises a listener hears (a strict block of 8 x 20 s / 10 s
lasts 4:00, chime to chime 30 s) are checked on `voiceguide plan --json`
with the real voice, to the millisecond.
"""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner
from mutagen.id3 import ID3

from voiceguide.cli import cli
from voiceguide.errors import RoutineError
from voiceguide.export import tags
from voiceguide.plan.planner import expand, place
from voiceguide.plan.timeline import Event, Timeline
from voiceguide.routine import Voice, load_routine
from voiceguide.units import FRAME, SAMPLE_RATE, samples

ENGINES = ["pyttsx3", "piper"]
DEFAULTS = Voice(engine="pyttsx3", rate=160, volume=1.0)
WORD = SAMPLE_RATE // 4  # stand-in speech: a quarter second per word
CHIME = SAMPLE_RATE  # stand-in chimes: one second
PAUSE = samples(500)
ROOT = Path(__file__).resolve().parent.parent


def plan_of(tmp_path: Path, text: str) -> Timeline:
    path = tmp_path / "routine.yaml"
    path.write_text(text)
    routine = load_routine(path, ENGINES)
    sections = expand(routine, Voice(), DEFAULTS)
    return place(routine, sections, lambda line: len(line.text.split()) * WORD, lambda chime: CHIME)


def problems(tmp_path: Path, text: str) -> list[str]:
    path = tmp_path / "routine.yaml"
    path.write_text(text)
    with pytest.raises(RoutineError) as raised:
        load_routine(path, ENGINES)
    return [str(problem).replace(f"{path}:", "") for problem in raised.value.problems]


def of(timeline: Timeline, kind: str, step: str | None = None, cue: str | None = None) -> list[Event]:
    return [e for e in timeline.events
            if e.kind == kind and (step is None or e.step == step) and (cue is None or e.cue == cue)]


def texts(events: list[Event]) -> list[str]:
    return [e.line.text for e in events if e.line]


def plan_json(cache: Path, path: Path, *options: str) -> tuple[int, dict | None, str]:
    result = CliRunner().invoke(cli, ["plan", str(path), "--json", "--cache-dir", str(cache), *options])
    return result.exit_code, json.loads(result.stdout) if result.exit_code == 0 else None, result.stderr


def ms(seconds: float) -> int:
    return round(seconds * 1000)


# 1. Rest between repetitions.

STRETCH = """\
title: T
pause: 0.5s
steps:
  - title: Hamstring
    say: Reach for your toes.
    hold: 30s
    repeat: 3
    rest-between: 10s
    between: Again, reach for them.
    rest: 5s
"""


def test_rest_between_repetitions_ends_with_the_between_line(tmp_path: Path) -> None:
    timeline = plan_of(tmp_path, STRETCH)
    holds, chimes = of(timeline, "hold"), of(timeline, "chime")
    rests = of(timeline, "rest")
    assert [h.length for h in holds] == [samples(30_000)] * 3
    assert [r.length for r in rests] == [samples(10_000)] * 2 + [samples(5000)]
    for index, rest in enumerate(rests[:2]):
        # Hold, chime, rest; the between line ends exactly as the next hold starts.
        assert chimes[index].start == holds[index].end and rest.start == chimes[index].end
        assert rest.end == holds[index + 1].start
    said = of(timeline, "cue", cue="say")
    assert texts(said) == ["Again, reach for them."] * 2
    assert [line.end for line in said] == [holds[1].start, holds[2].start]
    assert [line.repeat for line in said] == [2, 3]
    # The first repetition's instruction is spoken as before, as speech before its hold.
    assert texts(of(timeline, "speech")) == ["Reach for your toes."]
    assert timeline.warnings == ()


def test_rest_between_without_between_repeats_the_instruction_at_the_end_of_the_rest(tmp_path: Path) -> None:
    timeline = plan_of(tmp_path, STRETCH.replace("    between: Again, reach for them.\n", ""))
    said = of(timeline, "cue", cue="say")
    assert texts(said) == ["Reach for your toes."] * 2
    assert [line.end for line in said] == [h.start for h in of(timeline, "hold")[1:]]


def test_without_rest_between_repetitions_run_as_before(tmp_path: Path) -> None:
    timeline = plan_of(tmp_path, STRETCH.replace("    rest-between: 10s\n", ""))
    assert [e.kind for e in timeline.events if e.kind not in ("pause", "cue")] == [
        "speech", "hold", "chime", "speech", "hold", "chime", "speech", "hold", "chime", "rest"]


def test_a_between_line_longer_than_its_rest_is_reported_and_moves_nothing(tmp_path: Path) -> None:
    timeline = plan_of(tmp_path, STRETCH.replace("10s", "0.5s"))
    holds, rests, said = of(timeline, "hold"), of(timeline, "rest"), of(timeline, "cue", cue="say")
    assert [r.length for r in rests[:2]] == [samples(500)] * 2 and rests[0].end == holds[1].start
    # It starts with the rest and runs on into the hold.
    assert said[0].start == rests[0].start and said[0].end == holds[1].start + samples(500)
    path = tmp_path / "routine.yaml"
    assert [str(w) for w in timeline.warnings] == [
        f"{path}:9:14: step 'hamstring': say cue \"Again, reach for them.\" (1.0 s) is longer than its rest of "
        f"0:00.5; it runs 0.5 s past it at {clock}" for clock in ("0:33", "1:04.5")]


def test_rest_between_errors(tmp_path: Path) -> None:
    assert problems(tmp_path, "title: T\nsteps:\n  - title: A\n    hold: 5s\n    rest-between: 10s\n") == [
        "5:5: 'rest-between' is a rest between repetitions; add 'repeat' of 2 or more"]
    assert problems(tmp_path, "title: T\nsteps:\n  - title: A\n    hold: 5s\n    repeat: 2\n    rest-between: soon\n") == [
        "6:19: 'rest-between': expected a duration such as 45, 45s, 1m30s, 1:30, 2 min, 1.5m, 90 seconds or 1h, "
        "got 'soon'"]
    assert problems(tmp_path, "title: T\nsteps:\n  - title: G\n    rest-between: 5s\n    steps:\n"
                              "      - {title: A, hold: 5s}\n") == [
        "4:5: 'rest-between' belongs on a step; a group has 'rounds' and 'steps'"]


def test_rest_between_counts_toward_the_session_limit(tmp_path: Path) -> None:
    assert problems(tmp_path, "title: T\nsteps:\n  - title: A\n    hold: 1s\n    repeat: 800\n"
                              "    rest-between: 1m\n") == [
        "3:5: the session would last more than 12 hours (holds and rests reach 13:32:20 by step 'a')"]


# 2. Strict intervals.

TABATA = """\
title: Tabata
pause: 0.5s
countdown: 3
steps:
  - title: Intervals
    strict: true
    rounds: 8
    say: Round {round} of {rounds}.
    steps:
      - title: Sprint
        say: Sprint.
        hold: 20s
        rest: 10s
  - title: Walk
    say: Walk it off.
    hold: 30s
"""


def test_strict_block_keeps_every_cycle_exact(tmp_path: Path) -> None:
    timeline = plan_of(tmp_path, TABATA)
    holds = of(timeline, "hold", "sprint")
    chimes = of(timeline, "chime", "sprint")
    rests = of(timeline, "rest", "sprint")
    assert len(holds) == 8 and len(rests) == 8
    assert [b.start - a.start for a, b in zip(holds, holds[1:])] == [samples(30_000)] * 7
    assert [b.start - a.start for a, b in zip(chimes, chimes[1:])] == [samples(30_000)] * 7
    assert rests[-1].end - holds[0].start == samples(240_000)
    # The chime rings inside the rest: the rest and its chime together last the 10 s.
    for hold, chime, rest in zip(holds, chimes, rests):
        assert chime.start == hold.end and rest.start == chime.end and rest.end - hold.end == samples(10_000)
    assert timeline.warnings == ()


def test_strict_lines_and_counts_are_said_inside_the_rest_ending_as_the_hold_starts(tmp_path: Path) -> None:
    timeline = plan_of(tmp_path, TABATA)
    holds = of(timeline, "hold", "sprint")
    # The first hold's lines are spoken before it, as usual.
    assert texts(of(timeline, "speech"))[:2] == ["Round 1 of 8.", "Sprint."]
    for number, hold in enumerate(holds[1:], 2):
        before = [e for e in timeline.events if e.kind == "cue" and hold.start - samples(10_000) <= e.start < hold.start]
        assert texts(before) == [f"Round {number} of 8.", "Sprint.", "three", "two", "one"]
        (round_line, sprint, three, two, one) = before
        assert [c.start for c in (three, two, one)] == [hold.start - samples(ms) for ms in (3000, 2000, 1000)]
        assert sprint.end == three.start - PAUSE and round_line.end == sprint.start - PAUSE
        assert (round_line.step, sprint.step, sprint.cue, three.cue) == ("intervals", "sprint", "say", "countdown")


def test_strict_counts_shrink_to_what_the_lines_leave(tmp_path: Path) -> None:
    timeline = plan_of(tmp_path, TABATA.replace("rest: 10s", "rest: 5s"))
    hold = of(timeline, "hold", "sprint")[1]
    # A 5 s rest: 1 s chime, "Round 2 of 8." (1 s), pause, "Sprint." (0.25 s), pause: room to count "one" only.
    before = [e for e in timeline.events if e.kind == "cue" and hold.start - samples(5000) <= e.start < hold.start]
    assert texts(before) == ["Round 2 of 8.", "Sprint.", "one"]
    assert timeline.warnings == ()


LONG_LINE = TABATA.replace("say: Sprint.", "say: Sprint as hard as you can, all the way, and keep your form.")


def test_strict_line_that_does_not_fit_is_reported_and_the_cycle_stays(tmp_path: Path) -> None:
    timeline = plan_of(tmp_path, LONG_LINE.replace("rest: 10s", "rest: 3s"))
    holds = of(timeline, "hold", "sprint")
    assert [b.start - a.start for a, b in zip(holds, holds[1:])] == [samples(23_000)] * 7
    rest = of(timeline, "rest", "sprint")[0]
    first, line = of(timeline, "cue", cue="say")[:2]
    # Overlong lines overlap: they start with the rest (after the chime) and run on into the hold.
    assert first.start == rest.start and line.start == first.end + PAUSE and line.end > holds[1].start
    path = tmp_path / "routine.yaml"
    assert str(timeline.warnings[0]) == (
        f"{path}:11:14: step 'sprint': say cue \"Sprint as hard as you can, all the way, and keep your form.\" "
        "(3.2 s) does not fit in its rest of 0:02 after the line before it; it runs 2.8 s past it at 0:28.2")
    assert len(timeline.warnings) == 7  # once for each rest it does not fit


def test_strict_with_sides_rest_between_and_no_chime(tmp_path: Path) -> None:
    timeline = plan_of(tmp_path, """\
title: T
pause: 0.5s
chime: none
steps:
  - title: Circuit
    strict: true
    rounds: 2
    steps:
      - title: Lunge
        sides: [left, right]
        say: Lunge, {side} leg.
        hold: 20s
        switch: {gap: 10s}
        rest: 5s
      - title: Squat
        say: Squat.
        hold: 20s
        repeat: 2
        rest-between: 5s
        rest: 15s
""")
    starts = [h.start for h in of(timeline, "hold")]
    gaps = [b - a for a, b in zip(starts, starts[1:])]
    # lunge left (+10 s switch), lunge right (+5 s), squat (+5 s), squat (+15 s), and again.
    assert gaps == [samples(ms) for ms in (30_000, 25_000, 25_000, 35_000, 30_000, 25_000, 25_000)]
    switch = of(timeline, "cue", cue="switch")
    assert texts(switch) == ["Switch to the right side."] * 2
    assert timeline.warnings == ()


def test_strict_errors(tmp_path: Path) -> None:
    assert problems(tmp_path, "title: T\nsteps:\n  - title: G\n    strict: yes please\n    steps:\n"
                              "      - {title: A, hold: 5s}\n") == ["4:13: 'strict' must be true or false, got 'yes please'"]
    assert problems(tmp_path, "title: T\nsteps:\n  - title: A\n    hold: 5s\n    strict: true\n") == [
        "5:5: 'strict' belongs on a group (a step with 'steps')"]


@pytest.fixture(scope="module")
def tabata_plan(tmp_path_factory: pytest.TempPathFactory, speech_cache: Path) -> dict:
    path = tmp_path_factory.mktemp("tabata") / "tabata.yaml"
    path.write_text(TABATA)
    code, plan, stderr = plan_json(speech_cache, path, "--strict")
    assert code == 0, stderr
    assert plan is not None
    return plan


def test_strict_block_of_eight_lasts_four_minutes_to_the_millisecond(tabata_plan: dict) -> None:
    events = tabata_plan["events"]
    holds = [e for e in events if e["kind"] == "hold" and e["step"] == "sprint"]
    chimes = [e for e in events if e["kind"] == "chime" and e["step"] == "sprint"]
    rests = [e for e in events if e["kind"] == "rest" and e["step"] == "sprint"]
    assert ms(rests[-1]["end"]) - ms(holds[0]["start"]) == 240_000
    assert [ms(b["start"]) - ms(a["start"]) for a, b in zip(chimes, chimes[1:])] == [30_000] * 7
    assert [ms(h["end"]) - ms(h["start"]) for h in holds] == [20_000] * 8
    # The instruction of each later round ends before its count, which ends as the hold starts.
    for hold in holds[1:]:
        said = [e for e in events if e["kind"] == "cue" and e["end"] <= hold["start"] and e["start"] >= hold["start"] - 10]
        assert said and said[-1]["text"] == "one" and ms(said[-1]["start"]) == ms(hold["start"]) - 1000


def test_strict_line_that_does_not_fit_fails_under_strict(tmp_path: Path, speech_cache: Path) -> None:
    path = tmp_path / "tabata.yaml"
    path.write_text(LONG_LINE.replace("rest: 10s", "rest: 3s"))
    code, plan, stderr = plan_json(speech_cache, path)
    assert code == 0 and plan is not None
    assert "does not fit in its rest" in stderr or "is longer than its rest" in stderr
    holds = [e for e in plan["events"] if e["kind"] == "hold" and e["step"] == "sprint"]
    assert [ms(b["start"]) - ms(a["start"]) for a, b in zip(holds, holds[1:])] == [23_000] * 7
    code, _, stderr = plan_json(speech_cache, path, "--strict")
    assert code == 2
    assert stderr.startswith(f"{path}:") and ": warning: " not in stderr


# 3. Counters across a circuit, and "last round".

CIRCUIT = """\
title: T
pause: 0
steps:
  - title: Warm-up
    say: Warm up {interval} of {intervals}.
    hold: 10s
    sides: [left, right]
    repeat: 2
  - title: Circuit
    rounds: 3
    say: Round {round}, starting interval {interval} of {intervals}.
    steps:
      - {title: Push, say: "Push {interval} of {intervals}.", hold: 10s}
      - title: Pair
        steps:
          - {title: Pull, say: "Pull {interval} of {intervals}.", hold: 10s, cues: [{at: 1s, say: "{interval}"}]}
"""


def test_interval_counts_across_rounds_and_steps_of_the_outermost_group(tmp_path: Path) -> None:
    timeline = plan_of(tmp_path, CIRCUIT)
    said = texts(of(timeline, "speech"))
    assert said[:4] == [f"Warm up {n} of 4." for n in range(1, 5)]
    assert said[4:] == ["Round 1, starting interval 1 of 6.", "Push 1 of 6.", "Pull 2 of 6.",
                        "Round 2, starting interval 3 of 6.", "Push 3 of 6.", "Pull 4 of 6.",
                        "Round 3, starting interval 5 of 6.", "Push 5 of 6.", "Pull 6 of 6."]
    # A cue inside a hold counts that hold.
    assert texts(of(timeline, "cue", cue="cue")) == ["2", "4", "6"]


def test_interval_names_are_checked_like_other_template_names(tmp_path: Path) -> None:
    assert problems(tmp_path, "title: T\nsteps:\n  - title: A\n    say: Interval {interval}.\n") == [
        "4:10: 'say': {interval} has no value here (only in a step with a 'hold' or inside a group)"]
    assert problems(tmp_path, "title: T\nvars: {intervals: 3}\nsteps:\n  - {title: A, hold: 1s}\n") == [
        "2:8: variable name 'intervals' is filled in by voiceguide; choose another name"]
    assert problems(tmp_path, "title: T\nsteps:\n  - title: A\n    hold: 1s\n    say: '{intervall}'\n") == [
        "5:10: 'say': unknown variable {intervall}; did you mean {interval}?"]


LAST_ROUND = """\
title: T
pause: 0.5s
steps:
  - title: Circuit
    rounds: 3
    rest: 5s
    say: Round {round}.
    steps:
      - {title: Push, say: Push., hold: 10s}
"""


def test_last_round_is_off_by_default_and_said_at_the_start_of_the_last_round(tmp_path: Path) -> None:
    assert of(plan_of(tmp_path, LAST_ROUND), "cue", cue="last-round") == []
    timeline = plan_of(tmp_path, LAST_ROUND + "last-round: true\n")
    (last,) = of(timeline, "cue", cue="last-round")
    assert last.line is not None and last.line.text == "Last round." and last.round == 3
    third = next(e for e in of(timeline, "speech") if e.line and e.line.text == "Round 3.")
    rests = of(timeline, "rest", "circuit")
    assert rests[1].end <= last.start and PAUSE <= third.start - last.end < PAUSE + FRAME


def test_last_round_takes_a_text_a_sound_or_a_phrase(tmp_path: Path) -> None:
    own = plan_of(tmp_path, LAST_ROUND.replace("    rest: 5s\n", "    rest: 5s\n    last-round: Final {round}!\n"))
    assert texts(of(own, "cue", cue="last-round")) == ["Final 3!"]
    sound = plan_of(tmp_path, LAST_ROUND + "last-round: {sound: gong}\n")
    assert [e.sound.name for e in of(sound, "cue", cue="last-round") if e.sound] == ["gong"]
    phrase = plan_of(tmp_path, LAST_ROUND + "last-round: true\nphrases: {last-round: Letzte Runde.}\n")
    assert texts(of(phrase, "cue", cue="last-round")) == ["Letzte Runde."]
    single = plan_of(tmp_path, LAST_ROUND.replace("rounds: 3", "rounds: 1") + "last-round: true\n")
    assert of(single, "cue", cue="last-round") == []


def test_last_round_errors(tmp_path: Path) -> None:
    assert problems(tmp_path, "title: T\nsteps:\n  - {title: A, hold: 1s, last-round: true}\n") == [
        "3:26: 'last-round' belongs on a group (a step with 'steps')"]
    assert problems(tmp_path, "title: T\nlast-round: Last {hold}.\nsteps:\n  - {title: A, hold: 1s}\n") == [
        "2:13: 'last-round': {hold} has no value here (only in a step with a 'hold')"]
    assert problems(tmp_path, "title: T\nlast-round: Last {set}.\nsteps:\n  - {title: A, hold: 1s}\n") == [
        "2:13: 'last-round': unknown variable {set}; known here: {interval}, {intervals}, {round}, {rounds}"]


def test_last_round_in_a_strict_block_is_said_in_the_rest(tmp_path: Path) -> None:
    timeline = plan_of(tmp_path, TABATA + "last-round: true\n")
    holds = of(timeline, "hold", "sprint")
    before = [e for e in timeline.events if e.kind == "cue" and holds[6].end < e.start < holds[7].start]
    assert texts(before) == ["Last round.", "Round 8 of 8.", "Sprint.", "three", "two", "one"]
    assert holds[7].start - holds[6].start == samples(30_000)


# 4. A chapter for each round.


def test_chapters_per_round(tmp_path: Path) -> None:
    timeline = plan_of(tmp_path, LAST_ROUND.replace("    rest: 5s\n", "    rest: 5s\n    chapters: rounds\n")
                       + "intro: Hello.\n")
    assert [(s.id, s.title, s.round) for s in timeline.steps] == [
        ("intro", "Introduction", None), ("circuit", "Circuit – round 1 of 3", 1),
        ("circuit", "Circuit – round 2 of 3", 2), ("circuit", "Circuit – round 3 of 3", 3)]
    for before, after in zip(timeline.steps, timeline.steps[1:]):
        assert before.end == after.start
    assert timeline.steps[-1].end == timeline.duration
    # A round's chapter begins with its first words (the pause before them), after the rest between rounds.
    rests = of(timeline, "rest", "circuit")
    assert [s.start for s in timeline.steps[2:]] == [r.end for r in rests]
    assert timeline.to_json()["steps"][2] == {"id": "circuit", "title": "Circuit – round 2 of 3", "round": 2,
                                              "start": round(rests[0].end / SAMPLE_RATE, 3),
                                              "end": round(rests[1].end / SAMPLE_RATE, 3)}
    # The MP3's chapters are these.
    chapters = ID3(io.BytesIO(tags(timeline, b"\xff\xd8\xff"))).getall("CHAP")
    assert [str(c.sub_frames["TIT2"]) for c in sorted(chapters, key=lambda c: c.start_time)] == [
        s.title for s in timeline.steps]


def test_chapters_per_round_in_a_strict_block_begin_with_the_rounds_first_line(tmp_path: Path) -> None:
    timeline = plan_of(tmp_path, TABATA.replace("    strict: true\n", "    strict: true\n    chapters: rounds\n")
                       .replace("Round {round} of {rounds}.", "Round {round}.") + "phrases: {chapter: '{title} {round}/{rounds}'}\n")
    firsts = [e for e in of(timeline, "cue", "intervals", "say")]
    assert [s.title for s in timeline.steps] == [f"Intervals {n}/8" for n in range(1, 9)] + ["Walk"]
    assert [s.start for s in timeline.steps[1:8]] == [e.start for e in firsts]


def test_chapters_errors(tmp_path: Path) -> None:
    group = "title: T\nsteps:\n  - title: G\n    rounds: {rounds}\n    chapters: {value}\n    steps:\n      - {{title: A, hold: 1s}}\n"
    assert problems(tmp_path, group.format(rounds=2, value="round")) == [
        "5:15: 'chapters' must be rounds (a chapter for each round), got 'round'"]
    assert problems(tmp_path, group.format(rounds=1, value="rounds")) == [
        "5:15: 'chapters: rounds' needs 'rounds' of 2 or more"]
    nested = ("title: T\nsteps:\n  - title: G\n    steps:\n      - title: H\n        rounds: 2\n"
              "        chapters: rounds\n        steps:\n          - {title: A, hold: 1s}\n")
    assert problems(tmp_path, nested) == ["7:19: 'chapters: rounds' works on a group at the top of the routine's 'steps'"]
    assert problems(tmp_path, "title: T\nsteps:\n  - {title: A, hold: 1s, chapters: rounds}\n") == [
        "3:26: 'chapters' belongs on a group (a step with 'steps')"]


# 5. Rough edges.

NEXT = """\
title: T
pause: 0.5s
next: true
steps:
  - {title: Plank, say: Hold a plank., hold: 30s, rest: 10s}
  - title: Intervals
    rounds: 2
    say: Round {round}.
    rest: 5s
    steps:
      - {title: Jumps, say: Jump., hold: 20s}
"""


def test_next_up_is_kept_apart_from_the_next_instruction_by_the_pause(tmp_path: Path) -> None:
    timeline = plan_of(tmp_path, NEXT)
    announce = of(timeline, "cue", cue="next")[0]
    following = next(e for e in of(timeline, "speech") if e.start >= announce.end)
    assert following.start - announce.end >= PAUSE


def test_next_up_names_the_step_done_next_not_its_group(tmp_path: Path) -> None:
    timeline = plan_of(tmp_path, NEXT)
    assert texts(of(timeline, "cue", cue="next")) == ["Next up: Jumps.", "Next up: Jumps."]


def test_next_up_is_said_once_for_rests_in_a_row_and_not_before_the_same_step(tmp_path: Path) -> None:
    timeline = plan_of(tmp_path, NEXT.replace("{title: Jumps, say: Jump., hold: 20s}",
                                              "{title: Jumps, say: Jump., hold: 20s, rest: 3s}"))
    rests = of(timeline, "rest")
    nexts = of(timeline, "cue", cue="next")
    # The step's own rest is followed by the rest between rounds: only the last says what comes.
    assert texts(nexts) == ["Next up: Jumps.", "Next up: Jumps."]
    assert [n.end for n in nexts] == [rests[0].end, rests[2].end]
    one_step = plan_of(tmp_path, NEXT.replace("    rest: 5s\n", ""))
    assert texts(of(one_step, "cue", cue="next")) == ["Next up: Jumps."]


@pytest.mark.slow
def test_next_up_in_the_sample_routine_leaves_a_pause(speech_cache: Path) -> None:
    code, plan, stderr = plan_json(speech_cache, ROOT / "scripts" / "sciatica-self-massage.yaml")
    assert code == 0 and plan is not None, stderr
    events = [e for e in plan["events"] if e["kind"] != "pause"]
    (announce,) = [e for e in events if e.get("cue") == "next"]
    following = next(e for e in events if e["kind"] == "speech" and e["start"] >= announce["end"])
    assert following["text"].startswith("Lie back slowly")
    assert ms(following["start"]) - ms(announce["end"]) >= 800


def test_remaining_that_does_not_fit_its_hold_is_reported(tmp_path: Path) -> None:
    routine = "title: T\nsteps:\n  - title: Plank\n    say: Plank.\n    hold: 6s\n    remaining: [5s]\n    repeat: 3\n"
    timeline = plan_of(tmp_path, routine)
    assert of(timeline, "cue", cue="remaining") == []
    assert [str(w).replace(f"{tmp_path / 'routine.yaml'}:", "") for w in timeline.warnings] == [
        "3:5: step 'plank': remaining cue \"five seconds left.\" does not fit in its hold of 0:06 (it must start "
        "at least 2 s after the hold does); it is left out"]
    # A default from the top of the routine applies to the holds it fits, silently, as a countdown does.
    defaults = plan_of(tmp_path, "title: T\nremaining: [5s]\nsteps:\n  - {title: A, hold: 6s}\n  - {title: B, hold: 8s}\n")
    assert defaults.warnings == () and [e.step for e in of(defaults, "cue", cue="remaining")] == ["b"]


def test_closing_strikes_strike_only_the_last_chime(tmp_path: Path) -> None:
    timeline = plan_of(tmp_path, "title: T\nsteps:\n  - {title: A, hold: 5s}\n  - {title: B, hold: 5s}\n"
                                 "closing: {sound: bell, strikes: 3}\n")
    assert [(e.step, e.sound.name if e.sound else "", e.strikes) for e in of(timeline, "chime")] == [
        ("a", "bell", 1), ("b", "bell", 1), ("b", "bell", 3)]
    # `bells: {strikes: 3}` at the top is a default for every step's end chime, as documented.
    every = plan_of(tmp_path, "title: T\nbells: {strikes: 3}\nsteps:\n  - {title: A, hold: 5s}\n  - {title: B, hold: 5s}\n")
    assert [e.strikes for e in of(every, "chime")] == [3, 3]


def test_closing_errors(tmp_path: Path) -> None:
    steps = "steps:\n  - {title: A, hold: 5s}\n"
    assert problems(tmp_path, f"title: T\nclosing: {{sound: gong, strikes: 0}}\n{steps}") == [
        "2:33: 'strikes' must be a whole number from 1 to 10, got 0"]
    assert problems(tmp_path, f"title: T\nclosing: {{strikes: 2}}\n{steps}") == [
        "2:10: 'closing' needs a 'sound': bell, soft, gong, wood, none, or a sound file"]
    (unknown,) = problems(tmp_path, f"title: T\nclosing: {{sound: gong, loud: 2}}\n{steps}")
    assert unknown.startswith("2:24: unknown key 'loud' in 'closing'")


@pytest.mark.slow
def test_a_strict_block_is_heard_where_the_plan_puts_it(tmp_path: Path, speech_cache: Path) -> None:
    from audio_probe import decode, first_loud, worst

    routine = tmp_path / "strict.yaml"
    # A 2 s rest is shorter than the bell: it rings on into the next hold, which still starts on time.
    routine.write_text(TABATA.replace("rounds: 8", "rounds: 3").replace("20s", "5s").replace("rest: 10s", "rest: 2s"))
    output = tmp_path / "strict.mp3"
    code, plan, stderr = plan_json(speech_cache, routine)
    assert code == 0 and plan is not None, stderr
    built = CliRunner().invoke(cli, ["build", str(routine), "-o", str(output), "-q", "--cache-dir", str(speech_cache)])
    assert built.exit_code == 0, built.stderr
    audio = decode(output)
    assert abs(len(audio) / SAMPLE_RATE - plan["duration"]) < 0.05
    chimes = [e for e in plan["events"] if e["kind"] == "chime" and e["step"] == "sprint"]
    assert [ms(b["start"]) - ms(a["start"]) for a, b in zip(chimes, chimes[1:])] == [7000, 7000]
    onsets = []
    for chime in chimes:
        heard = first_loud(audio, chime["start"] - 0.1, chime["start"] + 0.5)
        assert heard is not None, chime
        onsets.append(heard - chime["start"])
    assert worst(onsets) < 50, f"worst chime onset error {worst(onsets):.1f} ms"


def test_the_readme_examples_of_these_keys_plan(tmp_path: Path) -> None:
    readme = (ROOT / "README.md").read_text()
    blocks = [block for block in re.findall(r"```yaml\n(.*?)```", readme, re.S) if block.startswith("- title:")]
    assert len(blocks) == 2
    strict, stretch = sorted(blocks, key=lambda block: "strict" not in block)
    timeline = plan_of(tmp_path, "title: T\nsteps:\n" + "".join(f"  {line}\n" for line in strict.splitlines()))
    holds = of(timeline, "hold")
    assert len(timeline.steps) == 8 and of(timeline, "rest")[-1].end - holds[0].start == samples(240_000)
    timeline = plan_of(tmp_path, "title: T\nsteps:\n" + "".join(f"  {line}\n" for line in stretch.splitlines()))
    assert len(of(timeline, "cue", cue="say")) == 2


@pytest.mark.parametrize("key, value, message", [
    ("rest-between", "-5s", "'rest-between': a duration cannot be negative, got '-5s'"),
    ("strict", "1", "'strict' must be true or false, got 1"),
    ("chapters", "true", "'chapters' must be rounds (a chapter for each round), got true/false"),
    ("last-round", "{say: Last., sound: gong}", "'last-round' has both 'say' and 'sound'; give one"),
])
def test_bad_values_of_the_new_keys_are_one_line_each_and_exit_2(tmp_path: Path, key: str, value: str,
                                                                 message: str) -> None:
    path = tmp_path / "routine.yaml"
    if key == "rest-between":
        path.write_text(f"title: T\nsteps:\n  - title: A\n    hold: 5s\n    repeat: 2\n    {key}: {value}\n")
    else:
        path.write_text(f"title: T\nsteps:\n  - title: G\n    rounds: 2\n    {key}: {value}\n    steps:\n"
                        "      - {title: A, hold: 5s}\n")
    result = CliRunner().invoke(cli, ["check", str(path)])
    assert result.exit_code == 2
    (line,) = result.stderr.splitlines()
    assert line.startswith(f"{path}:") and line.endswith(message), line
