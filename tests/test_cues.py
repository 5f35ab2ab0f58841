"""Coaching cues: each sits where the plan says, inside its hold or rest, and never moves a hold.

Rules are checked on plans made with stand-in clip lengths (no engine); the
rendered MP3 is decoded and each cue found where the plan puts it.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from audio_probe import decode, first_loud, max_level, measure_timeline, worst
from click.testing import CliRunner

from voiceguide.cli import cli
from voiceguide.plan.planner import expand, place
from voiceguide.plan.timeline import STRIKE_SPACING_MS, Timeline
from voiceguide.routine import Voice, load_routine
from voiceguide.units import SAMPLE_RATE, samples

ENGINES = ["pyttsx3", "piper"]  # the engine names a routine may use
DEFAULTS = Voice(engine="pyttsx3", rate=160, volume=1.0)
WORD = SAMPLE_RATE // 4  # stand-in speech: a quarter second per word
CHIME = SAMPLE_RATE  # stand-in chimes: one second


def plan_of(tmp_path: Path, text: str) -> Timeline:
    path = tmp_path / "routine.yaml"
    path.write_text(text)
    routine = load_routine(path, ENGINES)
    sections = expand(routine, Voice(), DEFAULTS)
    return place(routine, sections, lambda line: len(line.text.split()) * WORD, lambda chime: CHIME)


def cues(timeline: Timeline, kind: str | None = None) -> list:
    return [e for e in timeline.events if e.kind == "cue" and (kind is None or e.cue == kind)]


def the_hold(timeline: Timeline, step: str = "sit"):
    (hold,) = [e for e in timeline.events if e.kind == "hold" and e.step == step]
    return hold


WALL_SIT = """\
title: T
pause: 0
steps:
  - title: Sit
    say: Sit against the wall.
    hold: 40s
"""


def test_each_cue_is_where_its_setting_puts_it(tmp_path: Path) -> None:
    timeline = plan_of(tmp_path, WALL_SIT + """\
    halfway: true
    remaining: [30s, 10s]
    countdown: 3
    cues:
      - {at: 5s, say: Keep your back flat.}
      - {at: -15s, sound: wood}
""")
    hold = the_hold(timeline)
    at = {(e.cue, e.line.text if e.line else e.sound.name): e.start - hold.start for e in cues(timeline)}
    assert at == {
        ("halfway", "Halfway."): samples(20_000),
        ("remaining", "thirty seconds left."): samples(10_000),
        ("remaining", "ten seconds left."): samples(30_000),
        ("countdown", "three"): samples(37_000),
        ("countdown", "two"): samples(38_000),
        ("countdown", "one"): samples(39_000),
        ("cue", "Keep your back flat."): samples(5_000),
        ("cue", "wood"): samples(25_000),
    }
    assert timeline.warnings == ()


def test_cues_never_move_or_lengthen_a_hold(tmp_path: Path) -> None:
    plain = plan_of(tmp_path, WALL_SIT)
    coached = plan_of(tmp_path, WALL_SIT + "    halfway: true\n    remaining: {every: 10s}\n    countdown: 5\n"
                                "    bells: {every: 15s}\n    cues: [{at: -1s, say: Almost there now and keep going.}]\n")
    assert [e for e in coached.events if e.kind != "cue"] == list(plain.events)
    assert len(cues(coached)) > 8
    assert coached.warnings  # the last cue runs past the end of the hold: reported, not absorbed


def test_countdown_with_ticks_and_short_holds(tmp_path: Path) -> None:
    timeline = plan_of(tmp_path, WALL_SIT.replace("40s", "2.5s") + "    countdown: {count: 5, sound: wood}\n")
    hold = the_hold(timeline)
    # Only the counts that fit in the hold are played.
    assert [e.start - hold.start for e in cues(timeline, "countdown")] == [samples(500), samples(1500)]
    assert all(e.sound and e.sound.name == "wood" for e in cues(timeline, "countdown"))


def test_remaining_every_skips_the_start_of_the_hold(tmp_path: Path) -> None:
    timeline = plan_of(tmp_path, WALL_SIT.replace("40s", "5m") + "    remaining: {every: 1m}\n")
    texts = [e.line.text for e in cues(timeline, "remaining")]
    assert texts == ["four minutes left.", "three minutes left.", "two minutes left.", "one minute left."]


def test_bells_and_final_strikes(tmp_path: Path) -> None:
    timeline = plan_of(tmp_path, WALL_SIT.replace("40s", "10m") + "    bells: {every: 4m, sound: soft, strikes: 3}\n")
    hold = the_hold(timeline)
    assert [e.start - hold.start for e in cues(timeline, "bell")] == [samples(240_000), samples(480_000)]
    (chime,) = [e for e in timeline.events if e.kind == "chime"]
    assert chime.strikes == 3 and chime.start == hold.end
    assert chime.length == CHIME + 2 * samples(STRIKE_SPACING_MS)


def test_side_switch_has_its_gap_and_each_side_its_full_hold(tmp_path: Path) -> None:
    timeline = plan_of(tmp_path, """\
title: T
pause: 0
steps:
  - title: Calf
    sides: [left, right]
    say: Stretch your {side} calf.
    hold: 20s
    switch:
      say: Now the {side} leg.
      gap: 4s
""")
    (switch,) = cues(timeline, "switch")
    (rest,) = [e for e in timeline.events if e.kind == "rest"]
    assert switch.line.text == "Now the right leg."
    assert switch.start == rest.start
    assert rest.length == switch.length + samples(4000)
    holds = [e for e in timeline.events if e.kind == "hold"]
    assert [h.length for h in holds] == [samples(20_000)] * 2
    assert [h.side for h in holds] == ["left", "right"]


def test_next_up_ends_with_the_rest(tmp_path: Path) -> None:
    timeline = plan_of(tmp_path, """\
title: T
next: true
steps:
  - {title: Plank, say: Hold a plank., hold: 30s, rest: 10s}
  - {title: Side plank, say: Turn to a side plank., hold: 20s}
""")
    (announce,) = cues(timeline, "next")
    (rest,) = [e for e in timeline.events if e.kind == "rest"]
    assert announce.line.text == "Next up: Side plank."
    assert announce.end == rest.end


def test_lead_in_and_closing(tmp_path: Path) -> None:
    timeline = plan_of(tmp_path, WALL_SIT + "lead-in: 4s\nclosing: gong\n")
    assert [s.id for s in timeline.steps] == ["lead-in", "sit"]
    (ready,) = cues(timeline, "lead-in")
    assert ready.start == timeline.steps[0].start and ready.line.text == "Get ready."
    lead_rest = [e for e in timeline.events if e.kind == "rest" and e.step == "lead-in"][0]
    assert lead_rest.length == ready.length + samples(4000)
    last_chime = [e for e in timeline.events if e.kind == "chime"][-1]
    assert last_chime.sound.name == "gong" and last_chime.end == timeline.duration


def test_phrases_replace_every_cue_word(tmp_path: Path) -> None:
    timeline = plan_of(tmp_path, WALL_SIT.replace("Sit against the wall.", "Setz dich an die Wand.") + """\
    halfway: true
    remaining: [1m30s, 20s]
    countdown: 3
phrases:
  halfway: Halbzeit.
  remaining: Noch {time}.
  second: Sekunde
  seconds: Sekunden
  minute: Minute
  minutes: Minuten
  numbers: digits
""".replace("1m30s, ", ""))
    texts = [e.line.text for e in cues(timeline)]
    assert texts == ["Halbzeit.", "Noch 20 Sekunden.", "3", "2", "1"]


WARNINGS = """\
title: T
pause: 0
next: true
steps:
  - title: Sit
    say: Sit.
    hold: 20s
    halfway: true
    remaining: [10s]
    cues:
      - {at: 25s, say: Too late.}
      - {at: -1s, say: This line is much too long to fit in the last second.}
    rest: 1s
  - title: Stand
    say: Stand up.
"""


def test_overlaps_and_overruns_are_reported(tmp_path: Path) -> None:
    timeline = plan_of(tmp_path, WARNINGS)
    path = tmp_path / "routine.yaml"
    long_line = '"This line is much too long to fit in the last second."'
    assert [str(w) for w in timeline.warnings] == [
        f"{path}:11:9: step 'sit': cue \"Too late.\" at 25.0 s does not fit in its hold of 0:20; it is left out",
        f"{path}:12:9: step 'sit': cue {long_line} at 0:19.2 runs 2.0 s past the end of its hold of 0:20",
        f"{path}:5:5: step 'sit': remaining cue \"ten seconds left.\" at 0:10.2 overlaps halfway cue \"Halfway.\" by 0.2 s",
        f"{path}:5:5: step 'sit': next cue \"Next up: Stand.\" at 0:21.5 overlaps cue {long_line} by 0.8 s",
    ]


def test_a_cue_longer_than_its_rest_is_reported(tmp_path: Path) -> None:
    timeline = plan_of(tmp_path, "title: T\npause: 0\nnext: true\nsteps:\n"
                                 "  - {title: A, say: a, hold: 5s, rest: 0.5s, chime: none}\n  - {title: B, say: b}\n")
    path = tmp_path / "routine.yaml"
    assert [str(w) for w in timeline.warnings] == [
        f"{path}:5:5: step 'a': next cue \"Next up: B.\" (0.8 s) is longer than its rest of 0:00.5; "
        f"it runs 0.2 s past it at 0:05.8"]


def test_strict_turns_warnings_into_errors(tmp_path: Path, speech_cache: Path) -> None:
    path = tmp_path / "routine.yaml"
    path.write_text(WARNINGS)
    relaxed = CliRunner().invoke(cli, ["plan", str(path), "--cache-dir", str(speech_cache)])
    assert relaxed.exit_code == 0
    warnings = [line for line in relaxed.stderr.splitlines() if ": warning: " in line]
    assert len(warnings) == 4 and all(line.startswith(f"{path}:") for line in warnings)
    strict = CliRunner().invoke(cli, ["plan", str(path), "--cache-dir", str(speech_cache), "--strict"])
    assert strict.exit_code == 2
    assert strict.stdout == ""
    assert strict.stderr.splitlines() == [line.replace(": warning: ", ": ") for line in warnings]


AUDIBLE = """\
title: Cues to hear
pause: 0.5s
next: true
steps:
  - title: Sit
    say: Sit against the wall.
    hold: 16s
    halfway: true
    countdown: 3
    cues:
      - {at: 2s, say: Keep your back flat.}
      - {at: -7s, sound: wood}
    rest: 4s
  - title: Calf
    sides: [left, right]
    say: Stretch your {side} calf.
    hold: 6s
    switch: {gap: 2s}
"""


@pytest.mark.slow
def test_cues_are_heard_where_the_plan_puts_them(tmp_path: Path, speech_cache: Path) -> None:
    routine = tmp_path / "cues.yaml"
    routine.write_text(AUDIBLE)
    output = tmp_path / "cues.mp3"
    options = ["--cache-dir", str(speech_cache), "--strict"]
    planned = CliRunner().invoke(cli, ["plan", str(routine), "--json", *options])
    assert planned.exit_code == 0, planned.stderr
    plan = json.loads(planned.stdout)
    built = CliRunner().invoke(cli, ["build", str(routine), "-o", str(output), "-q", *options])
    assert built.exit_code == 0, built.stderr
    audio = decode(output)
    assert abs(len(audio) / SAMPLE_RATE - plan["duration"]) < 0.05

    cue_events = [e for e in plan["events"] if e["kind"] == "cue"]
    assert sorted({e["cue"] for e in cue_events}) == ["countdown", "cue", "halfway", "next", "switch"]
    onsets = []
    for cue in cue_events:
        heard = first_loud(audio, cue["start"] - 0.1, cue["end"] + 0.1)
        assert heard is not None, cue
        onsets.append(heard - cue["start"])
    assert worst(onsets) < 50, f"worst cue onset error {worst(onsets):.1f} ms"

    # Between its cues a hold stays silent, and its chime still starts where the hold ends.
    for hold in (e for e in plan["events"] if e["kind"] == "hold"):
        inside = sorted((c["start"], c["end"]) for c in cue_events if hold["start"] <= c["start"] < hold["end"])
        quiet_from = hold["start"]
        for start, end in inside + [(hold["end"], hold["end"])]:
            if start - quiet_from > 0.15:
                assert max_level(audio, quiet_from + 0.06, start - 0.06) < -50, (hold, quiet_from, start)
            quiet_from = max(quiet_from, end)
    chimes = [m for m in measure_timeline(audio, plan)["sounds"] if m.event["kind"] == "chime"]
    assert len(chimes) == 3
    assert worst([m.start_error for m in chimes]) < 50


def test_plan_table_shows_cues_under_their_hold(tmp_path: Path, speech_cache: Path) -> None:
    routine = tmp_path / "cues.yaml"
    routine.write_text(AUDIBLE)
    result = CliRunner().invoke(cli, ["plan", str(routine), "--cache-dir", str(speech_cache)])
    assert result.exit_code == 0
    rows = result.stdout.splitlines()
    hold = next(i for i, row in enumerate(rows) if " sit " in row and row.split()[2] == "hold")
    assert rows[hold + 1].split()[2:4] == ["cue:", '"Keep']
    assert '    halfway: "Halfway."' in rows[hold + 2]
    assert [row.split()[3] for row in rows if "countdown:" in row] == ['"three"', '"two"', '"one"']
    assert rows[-1].endswith(f"{sum(1 for row in rows if row.split()[2].endswith(':'))} cues)")


@pytest.mark.slow
@pytest.mark.parametrize("script", sorted(Path(__file__).parent.parent.glob("scripts/*.yaml")), ids=lambda p: p.stem)
def test_examples_have_no_cue_warnings(script: Path, speech_cache: Path) -> None:
    result = CliRunner().invoke(cli, ["plan", str(script), "--cache-dir", str(speech_cache), "--strict"])
    assert result.exit_code == 0, result.stderr
    assert result.stderr == ""
    assert result.stdout.splitlines()[-1].endswith(" cues)")  # every example uses cues
