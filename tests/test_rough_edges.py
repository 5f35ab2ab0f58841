"""Small things a person trips over: a profile shared between routines, the words people write for keys,
voices by language name, help examples, counts, time formats, what the cache clears, chapter order."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from test_bad_input import assert_bad_input, plan, run
from test_build import PIRIFORMIS, plan_json

ROOT = Path(__file__).resolve().parent.parent


# --- a profile is shared between routines ---------------------------------------------------------

def test_a_profile_s_holds_for_steps_a_routine_lacks_are_skipped_with_a_note(tmp_path: Path) -> None:
    profile = tmp_path / "me.yaml"
    profile.write_text("holds:\n  tennis-balls: 90s\n  side-rest: 8m\n  figure-four: 40s\n")
    result = plan(tmp_path, "--profile", str(profile), "--json", routine=PIRIFORMIS)
    assert result.exit_code == 0, result.output
    assert result.stderr == (f"{profile}:2:3: note: no step with id 'tennis-balls' or 'side-rest' has a hold in this "
                             "routine; skipped\n")
    held = {round(e["end"] - e["start"], 3) for e in json.loads(result.stdout)["events"]
            if e["kind"] == "hold" and e["step"] == "figure-four"}
    assert held == {40.0}


def test_the_note_suggests_the_id_meant(tmp_path: Path) -> None:
    profile = tmp_path / "me.yaml"
    profile.write_text("holds:\n  lefft: 30s\n  shrug: 10s\n  neck: 5s\n")
    result = plan(tmp_path, "--profile", str(profile))
    assert result.exit_code == 0, result.output
    assert result.stderr == (f"{profile}:2:3: note: no step with id 'lefft' (did you mean 'left'?), 'shrug' or 'neck' "
                             "has a hold in this routine; skipped\n")


def test_a_hold_on_the_command_line_stays_strict(tmp_path: Path) -> None:
    assert_bad_input(plan(tmp_path, "--hold", "tennis-balls=90s", routine=PIRIFORMIS),
                     "--hold tennis-balls: no step with id 'tennis-balls' has a hold "
                     "(valid ids: figure-four, knee-to-chest)\n")


# --- what people write for a key ------------------------------------------------------------------

@pytest.mark.parametrize("written, meant", [
    ("reps: 3", "repeat"), ("repeats: 3", "repeat"), ("sets: 3", "repeat"), ("duration: 30s", "hold"),
    ("time: 30s", "hold"), ("text: Breathe.", "say"), ("speak: Breathe.", "say"), ("name: Breathe", "title"),
    ("pause: 5s", "rest"),
])
def test_a_key_s_synonym_suggests_the_key(tmp_path: Path, written: str, meant: str) -> None:
    routine = tmp_path / "r.yaml"
    routine.write_text(f"title: T\nsteps:\n  - title: A\n    hold: 3s\n    {written}\n")
    key = written.split(":")[0]
    assert_bad_input(run("check", str(routine)), f"{routine}:5:5: unknown key '{key}' in a step; did you mean '{meant}'?\n")


def test_a_routine_s_name_suggests_its_title(tmp_path: Path) -> None:
    routine = tmp_path / "r.yaml"
    routine.write_text("name: T\nsteps:\n  - title: A\n    hold: 3s\n")
    result = run("check", str(routine))
    assert f"{routine}:1:1: unknown key 'name' in a routine; did you mean 'title'?\n" in result.stderr



# --- voices by a language's name ------------------------------------------------------------------

ESPEAK = [("gmw/en-029", "English (Caribbean)", ("en-029",)), ("gmw/en", "English (Great Britain)", ("en-gb",)),
          ("gmw/en-gb-scotland", "English (Scotland)", ("en-gb-scotland",)), ("gmw/en-us", "English (America)", ("en-us",)),
          ("roa/fr-be", "French (Belgium)", ("fr-be",)), ("roa/fr", "French (France)", ("fr-fr",)),
          ("roa/pt", "Portuguese (Portugal)", ("pt",)), ("roa/pt-br", "Portuguese (Brazil)", ("pt-br",)),
          ("gmw/de", "German", ("de",)), ("sit/cmn-latn-pinyin", "Chinese (Mandarin, latin as Pinyin)", ("cmn-latn-pinyin",)),
          ("sit/yue", "Chinese (Cantonese)", ("yue",)), ("sit/cmn", "Chinese (Mandarin, latin as English)", ("cmn",)),
          ("art/lfn", "Lingua Franca Nova", ("lfn",))]
# As macOS lists its voices: people's names, languages as en_US.
SYSTEM = [("com.apple.voice.Daniel", "Daniel", ("en_GB",)), ("com.apple.voice.Karen", "Karen", ("en_AU",)),
          ("com.apple.voice.Samantha", "Samantha", ("en_US",)), ("com.apple.voice.Amelie", "Amélie", ("fr_CA",)),
          ("com.apple.voice.Thomas", "Thomas", ("fr_FR",))]


def listing(voices: list[tuple[str, str, tuple[str, ...]]]):
    from voiceguide.speech.engines import Engine, VoiceInfo

    class Listed(Engine):
        name = "listed"

        def version(self) -> str:
            return "1"

        def voices(self) -> list[VoiceInfo]:
            return [VoiceInfo(*voice) for voice in voices]

        def default_voice(self) -> str:
            return voices[0][0]

        def synthesize(self, text, voice, rate, volume, path, timeout) -> None:
            raise AssertionError("not spoken here")

    return Listed(None)  # type: ignore[arg-type]


@pytest.mark.parametrize("voices, wanted, found", [
    (ESPEAK, "English", "gmw/en-us"), (ESPEAK, "english", "gmw/en-us"), (ESPEAK, "FRENCH", "roa/fr"),
    (ESPEAK, "portuguese", "roa/pt"), (ESPEAK, "German", "gmw/de"), (ESPEAK, "Chinese", "sit/cmn"),
    (ESPEAK, "Cantonese", "sit/yue"), (ESPEAK, "lingua franca nova", "art/lfn"),
    (ESPEAK, "en", "gmw/en"), (ESPEAK, "fr-be", "roa/fr-be"),  # codes and ids as before
    (ESPEAK[:2], "English", "gmw/en"),  # no American voice: the British one before the Caribbean
    (SYSTEM, "English", "com.apple.voice.Samantha"), (SYSTEM, "French", "com.apple.voice.Thomas"),
    (SYSTEM[:2] + SYSTEM[3:4], "french", "com.apple.voice.Amelie"),
])
def test_a_language_s_name_finds_its_main_country_s_voice(voices, wanted: str, found: str) -> None:
    assert listing(voices).resolve_voice(wanted) == found


def test_a_language_no_voice_speaks_is_refused() -> None:
    from voiceguide.errors import VoiceError

    with pytest.raises(VoiceError, match="unknown voice 'Klingon' for engine listed"):
        listing(SYSTEM).resolve_voice("Klingon")


@pytest.mark.parametrize("wanted, language", [("English", "en-us"), ("french", "fr-fr")])
def test_pyttsx3_finds_voices_by_language_name(environment, wanted: str, language: str) -> None:
    from voiceguide.speech.engines import create_engine

    engine = create_engine("pyttsx3", environment)
    voices = {voice.id: voice for voice in engine.voices()}
    if not any(language in v.languages for v in voices.values()):
        pytest.skip(f"this pyttsx3 has no {language} voice")
    assert language in voices[engine.resolve_voice(wanted)].languages


# --- examples in the help name files that exist ---------------------------------------------------

def test_every_example_names_a_routine_that_exists_with_the_ids_it_sets() -> None:
    from click.testing import CliRunner
    from test_cli import COMMANDS

    from voiceguide.cli import cli
    from voiceguide.routine import load_routine

    named = 0
    for path in COMMANDS:
        shown = CliRunner().invoke(cli, [*path, "--help"]).stdout
        for line in shown.splitlines():
            for routine in re.findall(r"scripts/[\w.*-]+", line):
                found = sorted(ROOT.glob(routine))
                assert found, f"`voiceguide {' '.join(path)} --help` names {routine}, which does not exist"
                named += 1
                for step_id in re.findall(r"--hold ([\w-]+)=", line):
                    assert all(step_id in load_routine(file, ["pyttsx3", "piper"]).hold_ids() for file in found), line
    assert named >= 6


# --- one count of steps, one format of times ------------------------------------------------------

@pytest.mark.parametrize("routine", sorted((ROOT / "scripts").glob("*.yaml")), ids=lambda p: p.stem)
def test_check_and_plan_count_the_same_steps_and_plan_writes_times_alike(routine: Path, speech_cache: Path) -> None:
    checked = run("check", str(routine))
    assert checked.exit_code == 0, checked.output
    said = re.fullmatch(rf"{re.escape(str(routine))}: ok \(.+: (\d+) steps?\)\n", checked.stdout)
    assert said, checked.stdout
    planned = run("plan", str(routine), "--quiet", "--cache-dir", str(speech_cache))
    assert planned.exit_code == 0, planned.output
    lines = planned.stdout.splitlines()
    total = re.fullmatch(r"total (\S+) \((\d+) steps?, \d+ holds?(, \d+ cues?)?\)", lines[-1])
    assert total, lines[-1]
    assert said[1] == total[2]
    steps = {step["id"] for step in plan_json(routine, speech_cache)["steps"]}
    assert int(said[1]) == len(steps)
    clock = r"(\d+:)?\d+:\d\d\.\d"
    starts = [line.split()[0] for line in lines[2:-1]]
    assert starts and all(re.fullmatch(clock, start) for start in starts), starts
    assert re.fullmatch(clock, total[1])
