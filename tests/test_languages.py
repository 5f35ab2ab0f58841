"""Other languages: `language: de` (fr, es, it, pt, nl) speaks voiceguide's own words in that language, with a
voice that speaks it; `phrases:` still replaces each; `voices --language` lists the voices of a language."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from audio_probe import decode, measure_timeline, worst
from click.testing import CliRunner
from mutagen.id3 import ID3
from test_plan import plan_json

from voiceguide.cli import cli
from voiceguide.durations import ENGLISH_UNITS, number_words, spoken_duration
from voiceguide.environment import Environment
from voiceguide.plan.planner import expand
from voiceguide.routine import CUE_KEYS, DEFAULT_PHRASES, Voice, load_routine
from voiceguide.routine.phrases import LANGUAGES, phrases, say_duration, say_number, title, units
from voiceguide.speech.clips import DEFAULT_VOICE, Speech
from voiceguide.units import SAMPLE_RATE

ENGINES = ["pyttsx3", "piper"]
SCRIPTS = sorted((Path(__file__).resolve().parent.parent / "scripts").glob("*.yaml"))
OTHERS = [code for code in LANGUAGES if code != "en"]


def _words(text: str) -> set[str]:
    return {word.casefold() for word in re.findall(r"[^\W\d_]+", text)}


# Every English word voiceguide could say on its own: its phrases (without their {names}), its units, and its
# numbers as they are said in durations and counts.
ENGLISH_WORDS = (set().union(*(_words(re.sub(r"{\w+}", " ", text)) for text in DEFAULT_PHRASES.values()))
                 | set(ENGLISH_UNITS.values()) | set().union(*(_words(number_words(n)) for n in range(100))))
# Words a language shares with English, said in it as its own: une minute, eine Minute.
SHARED = {"fr": {"minute", "minutes"}, "de": {"minute"}}
# The routine's own words are replaced by this, which no language has, so that only voiceguide's are left.
OWN = "Zyx"
SAID_BY_VOICEGUIDE = ("countdown", "halfway", "remaining", "switch", "next", "lead-in", "last-round")


def test_english_words_are_the_defaults() -> None:
    assert {"halfway", "left", "switch", "side", "next", "up", "get", "ready", "last", "round", "seconds", "minute",
            "one", "three", "twenty", "thirty"} <= ENGLISH_WORDS


@pytest.mark.parametrize(("code", "ms", "said"), [
    ("de", 90_000, "eine Minute und dreißig Sekunden"), ("de", 1000, "eine Sekunde"),
    ("de", 3_681_000, "eine Stunde eine Minute und einundzwanzig Sekunden"),
    ("fr", 61_000, "une minute et une seconde"), ("fr", 21_000, "vingt et une secondes"),
    ("fr", 7_200_000, "deux heures"), ("fr", 71_000, "une minute et onze secondes"),
    ("es", 3_600_000, "una hora"), ("es", 21_000, "veintiún segundos"), ("es", 45_000, "cuarenta y cinco segundos"),
    ("it", 3_600_000, "un'ora"), ("it", 60_000, "un minuto"), ("it", 28_000, "ventotto secondi"),
    ("it", 23_000, "ventitré secondi"),
    ("pt", 7_200_000, "duas horas"), ("pt", 3_600_000, "uma hora"), ("pt", 62_000, "um minuto e dois segundos"),
    ("pt-br", 16_000, "dezesseis segundos"), ("pt", 16_000, "dezasseis segundos"),
    ("nl", 7_200_000, "twee uur"), ("nl", 22_000, "tweeëntwintig seconden"), ("nl", 90_000, "één minuut en dertig seconden"),
])
def test_durations_are_said_as_the_language_says_them(code: str, ms: int, said: str) -> None:
    assert say_duration(ms, code, units(code)) == said


def test_english_durations_and_counts_are_said_as_before() -> None:
    for ms in [0, 1, 499, 500, 1000, 59_400, 60_000, 61_000, 90_000, 3_600_000, 3_661_000, 7_322_000, 43_200_000]:
        assert say_duration(ms, "en", units("en")) == spoken_duration(ms)
        assert say_duration(ms, "en", units("en"), digits=True) == spoken_duration(ms, number=str)
    assert [say_number(n, "en") for n in range(100)] == [number_words(n) for n in range(100)]


def test_counts_are_said_alone() -> None:
    counts = {code: [say_number(n, code) for n in (3, 2, 1)] for code in OTHERS}
    assert counts == {"de": ["drei", "zwei", "eins"], "fr": ["trois", "deux", "un"], "es": ["tres", "dos", "uno"],
                      "it": ["tre", "due", "uno"], "pt": ["três", "dois", "um"], "nl": ["drie", "twee", "één"]}


def _in_language(source: Path, code: str) -> dict[str, Any]:
    """A sample routine in ``code`` with every cue voiceguide says turned on: sides, bells, remaining, next up,
    last round, halfway, a lead-in and a count into each strict hold; its own words replaced by OWN."""
    routine = yaml.safe_load(source.read_text())
    for key in ("phrases", *CUE_KEYS):
        routine.pop(key, None)
    voice = routine.pop("voice", None)
    if isinstance(voice, dict) and "rate" in voice:
        routine["voice"] = {"rate": voice["rate"]}  # a voice the file names would win over the language's
    routine.update({
        "language": code, "countdown": 3, "halfway": True, "remaining": [60, 30, 10], "bells": {"every": 20},
        "next": True, "last-round": True, "switch": True, "lead-in": 3,
        "intro": f"{OWN}.", "outro": f"{OWN}.",
    })
    count = iter(range(1000))
    sided = any("sides" in step for step in _all(routine["steps"]))

    def replace(steps: list[dict[str, Any]]) -> None:
        nonlocal sided
        for step in steps:
            for key in CUE_KEYS:
                step.pop(key, None)
            step["title"] = f"{OWN} {next(count)}"
            if "steps" in step:
                step["rounds"] = max(2, step.get("rounds", 1))
                step["say"] = f"{OWN}."
                replace(step["steps"])
                continue
            step["say"] = f"{OWN} {{hold}}." if "hold" in step else f"{OWN}."
            if "between" in step:
                step["between"] = f"{OWN}."
            if "hold" in step and not sided:
                step["sides"], sided = ["a", "b"], True
            if "sides" in step:
                step["sides"] = [f"{OWN}{side}" for side in range(len(step["sides"]))]

    replace(routine["steps"])
    return routine


def _all(steps: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [found for step in steps for found in [step, *_all(step.get("steps", []))]]


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("clips")


@pytest.mark.parametrize("code", OTHERS)
def test_sample_routines_say_no_english_word(code: str, cache_dir: Path, tmp_path: Path) -> None:
    english = ENGLISH_WORDS - SHARED.get(code, set())
    own = phrases(code)
    said: dict[str, set[str]] = {}
    for script in SCRIPTS:
        routine = tmp_path / script.name
        routine.write_text(yaml.safe_dump(_in_language(script, code), allow_unicode=True))
        plan = plan_json(cache_dir, routine)
        for event in plan["events"]:
            if "text" not in event:
                continue
            assert not _words(event["text"]) & english, (script.name, event)
            assert event["voice"]["language"] == code
            if event.get("cue") in SAID_BY_VOICEGUIDE:
                said.setdefault(event["cue"], set()).add(event["text"])
        titles = {step["id"]: step["title"] for step in plan["steps"]}
        assert (titles["intro"], titles["lead-in"], titles["outro"]) == tuple(
            title(code, section) for section in ("intro", "lead-in", "outro"))
        # Chapters are read, not spoken, and in the language too: a round's says "Runde 1 von 8".
        assert not any(_words(step["title"]) & english for step in plan["steps"]), plan["steps"]
    # Every cue was heard in some routine, in the language's own words.
    assert sorted(said) == sorted(SAID_BY_VOICEGUIDE)
    for key in ("halfway", "lead-in", "last-round"):
        assert said[key] == {own[key]}
    prefix = own["switch"].split("{")[0]
    assert all(text.startswith(prefix) for text in said["switch"])
    assert said["countdown"] == {say_number(n, code) for n in (1, 2, 3)}
    assert own["remaining"].format(time=say_duration(30_000, code, units(code))) in said["remaining"]


@pytest.mark.parametrize("code", OTHERS)
def test_the_voice_chosen_speaks_the_language(code: str, tmp_path: Path, environment: Environment) -> None:
    path = tmp_path / "r.yaml"
    path.write_text(f"title: T\nlanguage: {code}\nvoice: {{rate: 150}}\nsteps:\n  - title: A\n    say: {OWN}.\n")
    sections = expand(load_routine(path, ENGINES), Voice(), DEFAULT_VOICE)
    line = next(part.line for part in sections[0].parts if part.line)
    speech = Speech(environment)
    chosen = speech.voice_id(line.voice)
    voices = {voice.id: voice for voice in speech.engine("pyttsx3").voices()}
    assert any(language.startswith(code) for language in voices[chosen].languages), voices[chosen]
    # A voice the routine names wins over its language.
    assert speech.voice_id(Voice(engine="pyttsx3", voice="en-us", language=code)) != chosen


def test_a_country_chooses_its_voice(environment: Environment) -> None:
    speech = Speech(environment)
    voices = {voice.id: voice for voice in speech.engine("pyttsx3").voices()}
    assert voices[speech.voice_id(Voice(engine="pyttsx3", language="pt-br"))].languages == ("pt-br",)
    assert voices[speech.voice_id(Voice(engine="pyttsx3", language="pt"))].languages == ("pt",)


def test_phrases_win_over_the_language(tmp_path: Path, cache_dir: Path) -> None:
    path = tmp_path / "r.yaml"
    path.write_text("title: T\nlanguage: de\nhalfway: true\nremaining: [30s]\ncountdown: 2\n"
                    "phrases:\n  halfway: Hälfte geschafft.\n  seconds: Sek\n  numbers: digits\n"
                    "steps:\n  - title: A\n    say: Halte {hold}.\n    hold: 45s\n")
    plan = plan_json(cache_dir, path)
    said = {event.get("cue", event["kind"]): event["text"] for event in plan["events"] if "text" in event}
    assert said == {"speech": "Halte 45 Sek.", "halfway": "Hälfte geschafft.", "remaining": "Noch 30 Sek.",
                    "countdown": "1"}


def test_a_profile_language_wins_over_the_routines(tmp_path: Path, cache_dir: Path) -> None:
    path = tmp_path / "r.yaml"
    path.write_text("title: T\nlanguage: de\nhalfway: true\nremaining: [1m]\nphrases:\n  halfway: Hälfte.\n"
                    "steps:\n  - title: A\n    say: x\n    hold: 2m\n")
    profile = tmp_path / "me.yaml"
    profile.write_text("language: fr\n")
    plan = plan_json(cache_dir, path, "--profile", str(profile))
    said = {event["cue"]: event["text"] for event in plan["events"] if event.get("cue")}
    assert said["remaining"] == "Encore une minute."
    assert said["halfway"] == "Hälfte."  # the routine's own phrase stays
    assert {event["voice"]["language"] for event in plan["events"] if "voice" in event} == {"fr"}


@pytest.mark.parametrize(("given", "message"), [
    ("xx", "unknown language 'xx' (supported: en (English), de (German), fr (French), es (Spanish), it (Italian), "
           "pt (Portuguese), nl (Dutch))"),
    ("German", "unknown language 'German'; did you mean 'de'? (supported: en (English), de (German), fr (French), "
               "es (Spanish), it (Italian), pt (Portuguese), nl (Dutch))"),
    ("nld", "unknown language 'nld'; did you mean 'nl'? (supported: en (English), de (German), fr (French), "
            "es (Spanish), it (Italian), pt (Portuguese), nl (Dutch))"),
    ("de-", "unknown language 'de-' (supported: en (English), de (German), fr (French), es (Spanish), it (Italian), "
            "pt (Portuguese), nl (Dutch))"),
])
def test_an_unknown_language_is_one_line(tmp_path: Path, given: str, message: str) -> None:
    path = tmp_path / "r.yaml"
    path.write_text(f"title: T\nlanguage: {given}\nsteps:\n  - title: A\n    say: x\n")
    result = CliRunner().invoke(cli, ["check", str(path)])
    assert result.exit_code == 2
    assert result.stderr == f"{path}:2:11: {message}\n"


def test_a_profile_with_an_unknown_language_is_one_line(tmp_path: Path) -> None:
    routine, profile = tmp_path / "r.yaml", tmp_path / "me.yaml"
    routine.write_text("title: T\nsteps:\n  - title: A\n    say: x\n")
    profile.write_text("voice: {rate: 150}\nlanguage: klingon\n")
    result = CliRunner().invoke(cli, ["plan", str(routine), "--profile", str(profile)])
    assert result.exit_code == 2
    assert result.stderr.startswith(f"{profile}:2:11: unknown language 'klingon' (supported: en (English), ")
    assert len(result.stderr.splitlines()) == 1


def test_an_engine_without_the_language_says_so(tmp_path: Path, cache_dir: Path) -> None:
    pytest.importorskip("piper")
    path = tmp_path / "r.yaml"
    path.write_text("title: T\nlanguage: nl\nsteps:\n  - title: A\n    say: Goedemorgen.\n")
    result = CliRunner().invoke(cli, ["plan", str(path), "--engine", "piper", "--cache-dir", str(cache_dir)])
    assert result.exit_code == 2
    assert result.stderr == (f"{path}:2:11: engine piper has no voice that speaks Dutch (nl); give a Piper model of "
                             "that language with --voice-model, or as `voice: model.onnx` (see `voiceguide voices "
                             "--engine piper`)\n")


def test_voices_of_a_language(cache_dir: Path) -> None:
    every = json.loads(CliRunner().invoke(cli, ["voices", "--json", "--cache-dir", str(cache_dir)]).stdout)
    for asked in ("de", "German"):
        result = CliRunner().invoke(cli, ["voices", "--language", asked, "--json", "--cache-dir", str(cache_dir)])
        assert result.exit_code == 0, result.output
        german = json.loads(result.stdout)
        assert german and len(german) < len(every)
        assert all(any(re.match(r"de($|[-_])", language) for language in voice["languages"]) for voice in german)
        assert german == [voice for voice in every if voice in german]  # as `voices` lists them
    portuguese = json.loads(CliRunner().invoke(cli, ["voices", "--language", "pt-br", "--json"]).stdout)
    assert [voice["languages"] for voice in portuguese][:1] == [["pt-br"]]  # that country's first
    result = CliRunner().invoke(cli, ["voices", "--language", "xx"])
    assert result.exit_code == 2
    assert result.stderr == "unknown language 'xx': give a code such as de, fr or pt-br, or a name such as German\n"


GERMAN = """\
title: Kurz
language: de
pause: 0.5s
countdown: 2
halfway: true
remaining: [8s]
lead-in: 1s
steps:
  - title: Wade
    sides: [links, rechts]
    say: Halte {hold}.
    hold: 12s
    switch: {gap: 1s}
"""


def test_a_german_build_speaks_where_the_plan_says(tmp_path: Path, speech_cache: Path) -> None:
    routine = tmp_path / "kurz.yaml"
    routine.write_text(GERMAN)
    output = tmp_path / "kurz.mp3"
    options = ["--cache-dir", str(speech_cache)]
    plan = plan_json(speech_cache, routine)
    built = CliRunner().invoke(cli, ["build", str(routine), "-o", str(output), "-q", *options])
    assert built.exit_code == 0, built.stderr
    said = [event["text"] for event in plan["events"] if "text" in event]
    assert said[:3] == ["Mach dich bereit.", "Halte zwölf Sekunden.", "Noch acht Sekunden."]
    assert "Halbzeit." in said and "Seitenwechsel: rechts." in said and "zwei" in said and "eins" in said
    tags = ID3(output)
    assert [frame.lang for kind in ("USLT", "SYLT") for frame in tags.getall(kind)] == ["deu", "deu"]
    assert [frame.sub_frames["TIT2"].text[0] for frame in tags.getall("CHAP")] == ["Vorbereitung", "Wade"]
    audio = decode(output)
    assert abs(len(audio) / SAMPLE_RATE - plan["duration"]) < 0.05
    spoken = [m for m in measure_timeline(audio, plan)["sounds"] if "text" in m.event]
    assert len(spoken) == len(said)
    assert worst([m.start_error for m in spoken]) < 50, [(m.event["text"], m.start_error) for m in spoken]
    assert worst([m.end_error for m in spoken]) < 60, [(m.event["text"], m.end_error) for m in spoken]


def test_the_readme_example_says_what_the_readme_shows(tmp_path: Path, cache_dir: Path) -> None:
    section = (Path(__file__).resolve().parent.parent / "README.md").read_text().split("## Other languages", 1)[1]
    section = section.split("\n## ", 1)[0]
    routine = tmp_path / "waden.yaml"
    routine.write_text(re.findall(r"```yaml\n(.*?)```", section, re.S)[0])
    shown = re.findall(r'"(.+?)"', re.findall(r"```\n( start.*?)```", section, re.S)[0])
    said = [event["text"] for event in plan_json(cache_dir, routine)["events"] if "text" in event]
    assert len(shown) == 7
    for text in shown:
        assert any(line == text or (text.endswith("…") and line.startswith(text[:-1])) for line in said), text
