"""`voiceguide import`: w2a workouts and audio_program_generator phrase files become routines that pass
`check`, whose timeline keeps every duration of the source, with each thing not carried over named."""

from __future__ import annotations

import json
import re
from decimal import Decimal
from pathlib import Path

import audio_probe
import pytest
import yaml
from click.testing import CliRunner, Result

from voiceguide import api
from voiceguide.cli import cli

IMPORTS = Path(__file__).resolve().parent / "imports"
W2A = IMPORTS / "morning-workout.yaml"
W2A_GERMAN = IMPORTS / "abendtraining.yaml"
APG = IMPORTS / "affirmations.txt"


def invoke(*args: object) -> Result:
    return CliRunner().invoke(cli, [str(a) for a in args])


def imported(source: Path, tmp_path: Path, *options: str) -> Path:
    target = tmp_path / f"{source.stem}.yaml"
    result = invoke("import", source, "-o", target, *options)
    assert result.exit_code == 0, result.output
    return target


def checked(routine: Path) -> None:
    result = invoke("check", routine)
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(f"{routine}: ok (")


def plan_json(routine: Path, cache: Path) -> dict:
    result = invoke("plan", routine, "--json", "--quiet", "--cache-dir", cache)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def timed(plan: dict) -> list[tuple[str, str, Decimal]]:
    """The holds and rests of a timeline in order: kind, step, length in seconds to the millisecond."""
    return [(e["kind"], e["step"], Decimal(str(e["end"])) - Decimal(str(e["start"])))
            for e in plan["events"] if e["kind"] in ("hold", "rest")]


def go_seconds(text: str) -> Decimal:
    """A Go duration of the fixtures (1m30s, 45.5s) in seconds: the test's own reading of the source."""
    units = {"h": 3600, "m": 60, "s": 1}
    return sum((Decimal(number) * units[unit] for number, unit in re.findall(r"([\d.]+)([hms])", text)), Decimal(0))


def w2a_expected(source: Path) -> list[tuple[str, Decimal]]:
    """What the w2a workout says must happen, in order: each exercise's pause (a rest), then the exercise held
    for its duration, or with half_time its halves around the time to change sides."""
    workout = yaml.safe_load(source.read_text())
    expected = []
    for exercise in workout["exercises"]:
        expected.append(("rest", go_seconds(exercise.get("pause_duration", workout["pause"]["duration"]))))
        duration = go_seconds(exercise["duration"])
        if exercise.get("half_time"):
            expected += [("hold", duration / 2), ("rest", go_seconds(workout["half_time"]["duration"])),
                         ("hold", duration / 2)]
        else:
            expected.append(("hold", duration))
    return expected


# --- w2a ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("source", [W2A, W2A_GERMAN], ids=["english", "german"])
def test_a_w2a_workout_keeps_every_duration(source: Path, tmp_path: Path, speech_cache: Path) -> None:
    routine = imported(source, tmp_path)
    checked(routine)
    plan = plan_json(routine, speech_cache)
    assert [(kind, length) for kind, _, length in timed(plan)] == w2a_expected(source)
    # The holds sum to every exercise's duration: a half_time exercise is held in two halves.
    workout = yaml.safe_load(source.read_text())
    held = sum(length for kind, _, length in timed(plan) if kind == "hold")
    assert held == sum(go_seconds(exercise["duration"]) for exercise in workout["exercises"])


def test_a_w2a_workout_says_what_w2a_says(tmp_path: Path, speech_cache: Path) -> None:
    routine = imported(W2A, tmp_path)
    plan = plan_json(routine, speech_cache)
    spoken = [(e["step"], e["text"]) for e in plan["events"] if e["kind"] == "speech"]
    assert spoken[0] == ("intro", "5 exercises will take a total of 4 minutes and 35 seconds. "
                                  "The pure training time is 3 minutes and 45 seconds.")
    assert ("pause", "Prepare for Warm Up for 1 minute") in spoken
    assert ("warm-up", "Warm Up for one minute") in spoken  # {hold}: the hold in words
    assert ("warm-up", "Neck Roll from Side to Side") in spoken
    # The merge key (<<: *squats) gives the first Squats its duration, the second its own.
    assert ("pause-5", "Prepare for Squats for 1 minute and 30 seconds") in spoken
    assert spoken[-1] == ("outro", "You trained for 4 minutes and 35 seconds! You have done well.")
    switch = [e for e in plan["events"] if e["kind"] == "cue" and e.get("text") == "Change side"]
    assert len(switch) == 1 and switch[0]["step"] == "side-plank"
    counts = [e["text"] for e in plan["events"] if e["kind"] == "cue" and e["cue"] == "countdown"]
    assert counts[:5] == ["five", "four", "three", "two", "one"]
    written = yaml.safe_load(routine.read_text())
    assert written["voice"] == "en-gb"  # espeak_ng_voice
    assert [step["title"] for step in written["steps"]][:2] == ["Pause", "Warm Up"]


def test_w2a_warnings_name_what_is_not_carried_over(tmp_path: Path, speech_cache: Path) -> None:
    result = invoke("import", W2A_GERMAN)
    assert result.exit_code == 0, result.output
    assert result.stderr.splitlines() == [
        f"{W2A_GERMAN}:3:3: warning: tts.custom_command: not carried over; voiceguide speaks with its own "
        "engines (pyttsx3, piper): choose one with voice:",
        f"{W2A_GERMAN}:14:1: warning: unknown key 'music' in a w2a workout: not carried over",
        f"{W2A_GERMAN}:18:3: warning: unknown key 'sound' in 'pause': not carried over",
        f"{W2A_GERMAN}:31:5: warning: unknown key 'sets' in an exercise: not carried over",
    ]
    # The routine remembers them too, and the anchor's key (base: &base) is no loss.
    assert "#   line 14: unknown key 'music' in a w2a workout: not carried over\n" in result.stdout
    assert "'base'" not in result.stderr
    routine = yaml.safe_load(result.stdout)
    assert routine["phrases"] == {"second": "Sekunde", "seconds": "Sekunden", "minute": "Minute",
                                  "minutes": "Minuten", "numbers": "digits"}
    assert routine["steps"][1]["say"] == "Seitstütz, {hold} lang"
    assert routine["steps"][1]["id"] == "seitstutz"
    target = tmp_path / "abend.yaml"
    target.write_text(result.stdout)
    plan = plan_json(target, speech_cache)
    assert "Seitstütz, 20 Sekunden lang" in [e.get("text") for e in plan["events"]]


def test_the_python_api_imports_too() -> None:
    workout = api.import_routine(W2A_GERMAN)
    assert workout.source == "w2a" and workout.steps == 6
    assert [(lost.where.line, lost.where.column) for lost in workout.lost] == [(3, 3), (14, 1), (18, 3), (31, 5)]
    phrases = api.import_routine(APG)
    assert phrases.source == "apg" and phrases.lost == ()


# --- audio_program_generator ------------------------------------------------------------------------

def test_an_apg_phrase_file_keeps_every_pause(tmp_path: Path, speech_cache: Path) -> None:
    routine = imported(APG, tmp_path)
    checked(routine)
    plan = plan_json(routine, speech_cache)
    lines = [line.rpartition(";") for line in APG.read_text().splitlines() if line.strip()]
    # Each line's phrase is said, then its seconds of silence rest (none for 0); `*` is a silence alone.
    assert timed(plan) == [("rest", step, Decimal(seconds.strip()))
                           for step, (_, _, seconds) in zip(_steps_of(routine), lines) if Decimal(seconds) > 0]
    spoken = [e["text"] for e in plan["events"] if e["kind"] == "speech"]
    assert spoken == [phrase.strip() for phrase, _, _ in lines if phrase.strip() != "*"]


def _steps_of(routine: Path) -> list[str]:
    """Each step's id as voiceguide makes it: its own, else from its title."""
    steps = yaml.safe_load(routine.read_text())["steps"]
    return [step.get("id") or re.sub(r"[^a-z0-9]+", "-", step["title"].lower()).strip("-") for step in steps]


def test_apg_text_is_carried_as_written(tmp_path: Path, speech_cache: Path) -> None:
    """Quotes, colons, braces and a hash are text, never YAML or a template; a `;` in a phrase stays in it."""
    phrase = 'Say "no": {breathe} & rest # here; then yes'
    source = tmp_path / "tricky.txt"
    source.write_text(f"{phrase}; 1.25\nno; 0.5\n")
    routine = imported(source, tmp_path)
    checked(routine)
    plan = plan_json(routine, speech_cache)
    assert [e["text"] for e in plan["events"] if e["kind"] == "speech"] == [phrase, "no"]
    assert [length for _, _, length in timed(plan)] == [Decimal("1.25"), Decimal("0.5")]


def test_one_imported_routine_builds(tmp_path: Path, speech_cache: Path) -> None:
    routine = imported(APG, tmp_path)
    plan = plan_json(routine, speech_cache)
    target = tmp_path / "affirmations.mp3"
    result = invoke("build", routine, "-o", target, "--quiet", "--cache-dir", speech_cache)
    assert result.exit_code == 0, result.output
    samples = audio_probe.decode(target)
    assert audio_probe.duration(samples) == pytest.approx(plan["duration"], abs=0.05)
    # Every rest is heard as silence, and the words around it where the plan puts them.
    for event in plan["events"]:
        if event["kind"] == "rest":
            assert audio_probe.max_level(samples, event["start"] + 0.05, event["end"] - 0.05) < audio_probe.TAIL_DBFS
    for event in plan["events"]:
        if event["kind"] == "speech":
            assert audio_probe.first_loud(samples, event["start"] - 0.1, event["end"]) is not None


# --- telling formats apart, writing, and bad input --------------------------------------------------

@pytest.mark.parametrize(("source", "name", "kind"), [(W2A, "workout.txt", "w2a"), (APG, "phrases.yaml", "apg"),
                                                      (APG, "phrases", "apg")])
def test_the_format_is_told_from_the_content(source: Path, name: str, kind: str, tmp_path: Path) -> None:
    copy = tmp_path / name
    copy.write_bytes(source.read_bytes())
    assert api.import_routine(copy).source == kind
    assert "Imported from the " + ("w2a" if kind == "w2a" else "audio_program_generator") in api.import_routine(copy).text


def test_output_is_not_replaced_without_force(tmp_path: Path) -> None:
    target = tmp_path / "mine.yaml"
    target.write_text("title: Mine\n")
    result = invoke("import", APG, "-o", target)
    assert result.exit_code == 2
    assert result.stderr == f"{target}: exists; give --force to replace it\n"
    assert target.read_text() == "title: Mine\n"
    result = invoke("import", APG, "-o", target, "--force")
    assert result.exit_code == 0, result.output
    assert result.stdout == f"{target}: routine of 9 steps written; try it with: voiceguide plan {target}\n"
    assert yaml.safe_load(target.read_text())["title"] == "Affirmations"
    assert [p.name for p in tmp_path.iterdir()] == ["mine.yaml"]  # no temporary file left


@pytest.mark.parametrize(("name", "message"), [
    ("bad-yaml.yaml", "7:12: invalid YAML: this line is indented differently from the lines above it"),
    ("no-duration.yaml", "7:5: this exercise has no 'duration'; w2a needs one, such as duration: 30s"),
    ("bad-line.txt", "2:13: expected the seconds of silence after the phrase, a number such as 5 or 2.5, got 'four'"),
])
def test_bad_input_is_one_line_at_its_place(name: str, message: str) -> None:
    result = invoke("import", IMPORTS / name)
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr == f"{IMPORTS / name}:{message}\n"


@pytest.mark.parametrize(("text", "message"), [
    ("exercises:\n  - name: Plank\n    duration: 30\n",
     "3:15: 'duration' must be a Go duration such as 30s, 1m30s or 2.5s (w2a reads no bare numbers), got '30'"),
    ("exercises:\n  - name: Plank\n    duration: 30s\n    half_time: true\n",
     "4:16: this exercise switches at half time, and the workout has no 'half_time' with its text and duration"),
    ("exercise_beginning: '{{ .Name }} now'\nexercises:\n  - {name: Plank, duration: 30s}\n",
     "1:21: 'exercise_beginning': the template '{{ .Name }}' cannot be carried over; w2a's values are "
     "{{ .WorkoutExercisesCount }}, {{ .WorkoutDuration }}, {{ .WorkoutDurationWithoutPauses }}, "
     "{{ .ExerciseDuration }}, {{ .ExerciseName }}"),
    ("title: Mine\nsteps:\n  - title: Plank\n",
     "1:1: this is a voiceguide routine already (it has 'steps'); check it with `voiceguide check`"),
])
def test_bad_w2a_values(text: str, message: str, tmp_path: Path) -> None:
    source = tmp_path / "workout.yaml"
    source.write_text(text)
    result = invoke("import", source)
    assert (result.exit_code, result.stderr) == (2, f"{source}:{message}\n")


@pytest.mark.parametrize(("text", "message"), [
    ("Relax; 5\nBreathe deeply\n", "2:1: expected 'phrase; seconds': a phrase, a semicolon and the seconds of "
                                   "silence after it"),
    ("Relax; 5\n; 3\n", "2:1: no phrase before ';' (write * for a silence alone)"),
    ("Relax; 5\n...; 3\n", "2:1: phrase: nothing to say in '...'; a line needs a letter or a digit"),
    ("Relax;\n", "1:7: expected the seconds of silence after the phrase, a number such as 5 or 2.5, got nothing"),
    ("One long text\nwithout any pauses at all.\n", "1:1: no 'phrase; seconds' line in the file: not an "
                                                    "audio_program_generator phrase file (its --book-mode text is "
                                                    "not read)"),
])
def test_bad_apg_lines(text: str, message: str, tmp_path: Path) -> None:
    source = tmp_path / "phrases.txt"
    source.write_text(text)
    result = invoke("import", source)
    assert (result.exit_code, result.stderr) == (2, f"{source}:{message}\n")


def test_an_unknown_format_is_one_line(tmp_path: Path) -> None:
    source = tmp_path / "notes.md"
    source.write_text("# My stretches\n\nHamstrings, then calves.\n")
    result = invoke("import", source)
    assert result.exit_code == 2
    assert result.stderr == (f"{source}:1:1: cannot tell what this file is: voiceguide imports w2a workouts "
                             "(YAML with 'exercises') and audio_program_generator phrase files ('phrase; seconds' "
                             "lines); name one with --from\n")
    assert invoke("import", source, "--from", "apg").exit_code == 2


def test_import_has_help() -> None:
    result = invoke("import", "-h")
    assert result.exit_code == 0
    assert "voiceguide import workout.yaml" in result.stdout


@pytest.mark.parametrize(("tts", "voice", "warning"), [
    ("  espeak_ng_voice: 'en-gb'\n", "en-gb", None),
    ("  say_voice: 'Daniel'\n", "Daniel",
     "2:3: warning: tts.say_voice 'Daniel' kept as voice:, a macOS voice other systems lack; `voiceguide voices` "
     "lists this one's"),
    ("  say_voice: 'Daniel'\n  espeak_ng_voice: 'en-gb'\n", "en-gb",
     "2:3: warning: tts.say_voice 'Daniel' (a macOS voice) not carried over: the espeak-ng voice is kept"),
])
def test_w2a_voices_prefer_espeak_ng_and_say_a_macos_voice_is_one(tts: str, voice: str, warning: str | None,
                                                                  tmp_path: Path) -> None:
    source = tmp_path / "workout.yaml"
    source.write_text(f"tts:\n{tts}exercises:\n  - name: 'Plank'\n    duration: '30s'\n")
    result = invoke("import", source)
    assert result.exit_code == 0, result.output
    assert yaml.safe_load(result.stdout)["voice"] == voice
    assert result.stderr == (f"{source}:{warning}\n" if warning else "")
