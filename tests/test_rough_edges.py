"""Small things a person trips over: a profile shared between routines, the words people write for keys,
voices by language name, help examples, counts, time formats, what the cache clears, chapter order."""

from __future__ import annotations

import json
import re
import subprocess
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


# --- what the cache holds, and what clearing it removed -------------------------------------------

def test_cache_info_and_clear_say_what_kind_by_kind_and_leave_foreign_files(tmp_path: Path) -> None:
    import numpy as np

    from voiceguide.cache import Cache, Encoded

    root = tmp_path / "cache"
    cache = Cache(root)
    for key in ("aa01", "ab02", "ac03"):
        cache.put_clip("clips-4", key, np.ones(44100, dtype="<i2"))
    cache.put_clip("sounds-3", "bell", np.ones(100, dtype="<i2"))
    cache.put_frames("ff01", Encoded(b"\xff" * 2000, 10, 0))
    for kind in ("measured", "analyses", "beds", "covers-1", "piper-parts-1", "someday"):
        cache.put_arrays(kind, "aa01", {"x": np.zeros(10)})
    cache.put_json("levels", "recent", {"level": 1})
    cache.answer("ffmpeg", "x", lambda: "/usr/bin/ffmpeg", bool)
    (root / "mine").mkdir()
    (root / "mine" / "notes.txt").write_text("my own file")
    (root / "readme.txt").write_text("mine too")

    info = run("cache", "info", "--cache-dir", str(root))
    assert info.exit_code == 0, info.output
    lines = info.stdout.splitlines()
    assert lines[0] == str(root)
    rows = [re.fullmatch(r" *(\d+)  (.+?) +(\d+(\.\d)?) (kB|MB)", line) for line in lines[1:]]
    assert all(rows), lines
    found = {row[2]: int(row[1]) for row in rows if row}
    assert found == {"spoken clips": 3, "sounds": 1, "encoded pieces": 1, "measurements of encoded pieces": 1,
                     "analyses of sounds": 1, "levels": 1, "background loops": 1, "covers": 1,
                     "parts of Piper models": 1, "answers about installed software": 1, "other numbers": 1,
                     "files in all": 13}
    assert lines[1].endswith("265 kB") and lines[-1].endswith("kB")  # three seconds of clips, and the whole

    cleared = run("cache", "clear", "--cache-dir", str(root))
    assert cleared.exit_code == 0, cleared.output
    assert cleared.stdout == f"removed from {root}:\n" + "\n".join(lines[1:]) + "\n"
    assert sorted(path.relative_to(root).as_posix() for path in root.rglob("*")) == ["mine", "mine/notes.txt", "readme.txt"]
    assert run("cache", "info", "--cache-dir", str(root)).stdout == f"{root}\nnothing stored\n"
    assert run("cache", "clear", "--cache-dir", str(root)).stdout == f"nothing to remove in {root}\n"


# --- chapters stored in time order ----------------------------------------------------------------

def frames_of(tag: bytes) -> list[tuple[str, bytes]]:
    """The frames of an ID3v2.3 tag in the order they are stored: (frame id, data)."""
    assert tag[:4] == b"ID3\x03" and tag[5] == 0
    size = sum(byte << (7 * (3 - i)) for i, byte in enumerate(tag[6:10]))
    found, position = [], 10
    while position < 10 + size and tag[position] != 0:
        length = int.from_bytes(tag[position + 4 : position + 8], "big")
        found.append((tag[position : position + 4].decode(), tag[position + 10 : position + 10 + length]))
        position += 10 + length
    return found


def stored_chapters(tag: bytes) -> list[tuple[str, int]]:
    """(element id, start ms) of each CHAP frame, in stored order; they follow the table of contents at once."""
    kinds = [kind for kind, _ in frames_of(tag)]
    first = kinds.index("CTOC") + 1
    assert set(kinds[first : first + kinds.count("CHAP")]) == {"CHAP"}
    chapters = []
    for kind, data in frames_of(tag):
        if kind == "CHAP":
            element, _, rest = data.partition(b"\x00")
            chapters.append((element.decode(), int.from_bytes(rest[:4], "big")))
    return chapters


def test_chapter_frames_are_stored_in_time_order_with_ids_that_sort_so() -> None:
    from voiceguide.export import tags
    from voiceguide.plan.timeline import StepSpan, Timeline

    # Titles of every length: stored by size, as mutagen stores frames, they would come out scrambled.
    titles = ["A much longer title than the rest", "B", "Three words here", "Closing", "x" * 50] * 3
    spans = tuple(StepSpan(f"s{n}", title, n * 44100, (n + 1) * 44100) for n, title in enumerate(titles))
    chapters = stored_chapters(tags(Timeline("T", "", (), spans), b"\xff\xd8\xff"))
    assert [start for _, start in chapters] == [n * 1000 for n in range(len(titles))]
    assert [element for element, _ in chapters] == sorted(element for element, _ in chapters)
    assert chapters[0][0] == "chp00" and chapters[-1][0] == "chp14"


def test_a_built_mp3_lists_its_chapters_in_time_order(speech_cache: Path, tmp_path: Path) -> None:
    import imageio_ffmpeg
    from mutagen.id3 import ID3
    from test_build import SCIATICA, build

    mp3 = build(SCIATICA, tmp_path / "sciatica.mp3", speech_cache, "--hold-scale", "0.05")
    data = mp3.read_bytes()
    chapters = stored_chapters(data[: 10 + sum(byte << (7 * (3 - i)) for i, byte in enumerate(data[6:10]))])
    assert len(chapters) == 8
    assert chapters == sorted(chapters, key=lambda chapter: chapter[1]) == sorted(chapters)
    (toc,) = ID3(mp3).getall("CTOC")
    assert list(toc.child_element_ids) == [element for element, _ in chapters]
    # As a player reading CHAP frames alone sees them: ffmpeg lists chapters in the order they are stored.
    listed = subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-i", str(mp3), "-f", "ffmetadata", "-"],
                            capture_output=True, text=True, check=True).stdout
    starts = [int(start) for start in re.findall(r"\[CHAPTER\]\nTIMEBASE=1/1000\nSTART=(\d+)", listed)]
    assert len(starts) == 8 and starts == sorted(starts)  # (less the encoder's delay, which ffmpeg takes off)
    titles = re.findall(r"\[CHAPTER\]\n(?:.*\n){3}title=(.*)", listed)
    assert titles == [str(chapter.sub_frames["TIT2"]) for chapter in sorted(ID3(mp3).getall("CHAP"), key=lambda c: c.start_time)]
    assert titles[0] == "Introduction" and titles[-1] == "Closing"
