"""`build` with several routines and profiles: every pair built, its lines spoken once for all, each MP3 the
bytes the same pair gives built alone; failures counted, named and kept to their own pairs."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import audio_probe
import pytest
from click.testing import CliRunner, Result

from voiceguide.cli import cli
from voiceguide.speech import clips

ROOT = Path(__file__).resolve().parent.parent
SCIATICA = ROOT / "scripts" / "sciatica-self-massage.yaml"
# Two short routines whose first lines say {hold}: each profile makes them say something else.
STRETCH = """\
title: Short stretch
chime: bell
steps:
  - title: Reach
    id: reach
    say: Reach up and stay there for {hold}.
    hold: 2s
  - title: Fold
    id: fold
    say: Fold forward slowly.
    hold: 2s
"""
BREATH = """\
title: Short breath
steps:
  - title: Breathe in
    id: in
    say: Breathe in for {hold}.
    hold: 2s
"""
PROFILES = {"three": "holds:\n  reach: 3s\n  in: 3s\n", "half": "hold-scale: 1.5\n", "four": "holds:\n  reach: 4s\n"}
SUMMARY = re.compile(r"(\d+) built, (\d+) failed in \d+\.\d s")


def invoke(*args: object) -> Result:
    return CliRunner().invoke(cli, [str(a) for a in args])


def write(folder: Path, files: dict[str, str]) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (folder / name).write_text(text)
    return [folder / name for name in files]


@pytest.fixture
def routines(tmp_path: Path) -> list[Path]:
    return write(tmp_path / "routines", {"stretch.yaml": STRETCH, "breath.yaml": BREATH})


@pytest.fixture
def profiles(tmp_path: Path) -> list[Path]:
    return write(tmp_path / "profiles", {f"{name}.yaml": text for name, text in PROFILES.items()})


def spoken(routine: Path, profile: Path, cache: Path) -> set[tuple[str, str]]:
    """The lines the pair says, as `plan --json` has them: text and voice."""
    result = invoke("plan", routine, "--profile", profile, "--json", "--quiet", "--cache-dir", cache)
    assert result.exit_code == 0, result.output
    return {(event["text"], json.dumps(event["voice"], sort_keys=True))
            for event in json.loads(result.stdout)["events"] if "text" in event}


def test_every_routine_with_every_profile_is_the_pair_built_alone(
        routines: list[Path], profiles: list[Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cache, out = tmp_path / "cache", tmp_path / "out"
    said: list[str] = []
    synthesize = clips.Speech._synthesize

    def counted(self, line, path):  # type: ignore[no-untyped-def]
        said.append(line.text)  # in this process only: what a worker would speak is not counted
        return synthesize(self, line, path)

    monkeypatch.setattr(clips.Speech, "_synthesize", counted)
    result = invoke("build", *routines, "--profile", profiles[0], "--profile", profiles[1], "--profile",
                    profiles[2], "--cache-dir", cache, "-o", out, "--quiet")
    assert result.exit_code == 0, result.output
    pairs = [(routine, profile) for routine in routines for profile in profiles]
    targets = {out / f"{routine.stem}-{profile.stem}.mp3" for routine, profile in pairs}
    assert set(out.iterdir()) == targets
    lines = [f"{routine} + {profile}: {out / f'{routine.stem}-{profile.stem}.mp3'}  " for routine, profile in pairs]
    printed = result.stdout.splitlines()
    assert sorted(line[: len(start)] for line, start in zip(sorted(printed[:-1]), sorted(lines))) == sorted(lines)
    assert all(re.search(r"  \d+:\d\d\.\d  \d+\.\d MB  loudness: speech -?\d+\.\d LUFS, whole file -?\d+\.\d LUFS$",
                         line) for line in printed[:-1])
    assert SUMMARY.fullmatch(printed[-1]) and SUMMARY.fullmatch(printed[-1]).groups() == ("6", "0")  # type: ignore[union-attr]
    # A profile's hold for a step the routine lacks: noted once, as a single build notes it, after the sessions
    # it concerns (not all of them: the other routine has the step).
    (noted,) = [line for line in result.stderr.splitlines()
                if line.endswith("three.yaml:3:3: note: no step with id 'in' has a hold in this routine; skipped")]
    three = next(profile for profile in profiles if profile.name == "three.yaml")
    assert any(noted == f"{routine} + {three}: {three}:3:3: note: no step with id 'in' has a hold in this routine; "
               "skipped" for routine in routines), noted

    # Every distinct line of the six sessions was spoken once, by the command itself, before the sessions were
    # rendered: the workers found every clip in the cache.
    lines_said = set().union(*(spoken(routine, profile, cache) for routine, profile in pairs))
    assert len(said) == len(set(said)) == len(lines_said) == len(list((cache / clips.CLIPS).rglob("*.wav")))

    for routine, profile in pairs:
        alone = tmp_path / "alone" / f"{routine.stem}-{profile.stem}.mp3"
        single = invoke("build", routine, "--profile", profile, "--cache-dir", cache, "-o", alone, "--quiet")
        assert single.exit_code == 0, single.output
        assert single.stdout.startswith(f"{alone}  ")  # a single pair prints as it always has: two lines
        assert len(single.stdout.splitlines()) == 2
        batched = out / alone.name
        assert batched.read_bytes() == alone.read_bytes(), f"{batched} differs from the same pair built alone"
        plan = json.loads(invoke("plan", routine, "--profile", profile, "--json", "--quiet", "--cache-dir",
                                 cache).stdout)
        assert abs(audio_probe.duration(audio_probe.decode(batched)) - plan["duration"]) < 0.03
    assert len(said) == len(lines_said), "a single build spoke a line the sessions built together had not"


def test_a_bad_profile_fails_only_its_pairs(routines: list[Path], profiles: list[Path], tmp_path: Path,
                                            speech_cache: Path) -> None:
    bad = tmp_path / "profiles" / "bad.yaml"
    bad.write_text("hold-scale: fast\n")
    out = tmp_path / "out"
    result = invoke("build", *routines, "--profile", profiles[0], "--profile", bad, "--cache-dir", speech_cache,
                    "-o", out, "--quiet")
    assert result.exit_code == 2, result.output  # every failure was bad input
    message = f"{bad}:1:13: 'hold-scale' must be a number such as 1.5"
    assert [line for line in result.stderr.splitlines() if "bad.yaml" in line] == [
        f"{routine} + {bad}: {message}" for routine in routines]
    assert sorted(path.name for path in out.iterdir()) == ["breath-three.mp3", "stretch-three.mp3"]
    assert all(audio_probe.decode_errors(path) == "" for path in out.iterdir())
    assert result.stdout.splitlines()[-1].startswith("2 built, 2 failed in ")

    # A failure that is not bad input (a folder where the MP3 goes) makes it 1; the other pairs are built.
    (tmp_path / "blocked" / "stretch-three.mp3").mkdir(parents=True)
    result = invoke("build", *routines, "--profile", profiles[0], "--profile", bad, "--cache-dir", speech_cache,
                    "-o", tmp_path / "blocked", "--quiet")
    assert result.exit_code == 1, result.output
    assert f"{routines[0]} + {profiles[0]}: cannot write {tmp_path / 'blocked' / 'stretch-three.mp3'}: it is a folder" \
        in result.stderr.splitlines()
    assert (tmp_path / "blocked" / "breath-three.mp3").is_file()
    assert result.stdout.splitlines()[-1].startswith("1 built, 3 failed in ")


def test_a_folder_of_routines_and_one_of_profiles(routines: list[Path], profiles: list[Path], tmp_path: Path,
                                                  speech_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "routines" / "notes.txt").write_text("not a routine")
    monkeypatch.chdir(tmp_path)
    result = invoke("build", "routines", "--cache-dir", speech_cache, "--quiet")
    assert result.exit_code == 0, result.output
    # Without profiles each session is named after its routine, in output/ as a single build's.
    assert sorted(path.name for path in (tmp_path / "output").iterdir()) == ["breath.mp3", "stretch.mp3"]
    assert {line.split(":")[0] for line in result.stdout.splitlines()[:-1]} == {
        os.path.join("routines", "breath.yaml"), os.path.join("routines", "stretch.yaml")}

    result = invoke("build", "routines/breath.yaml", "--profile", "profiles", "--cache-dir", speech_cache,
                    "--quiet", "-o", "sessions")
    assert result.exit_code == 0, result.output
    assert sorted(path.name for path in (tmp_path / "sessions").iterdir()) == [
        "breath-four.mp3", "breath-half.mp3", "breath-three.mp3"]
    assert SUMMARY.fullmatch(result.stdout.splitlines()[-1]).groups() == ("3", "0")  # type: ignore[union-attr]

    (tmp_path / "empty").mkdir()
    result = invoke("build", "empty", "--cache-dir", speech_cache)
    assert (result.exit_code, result.stderr) == (2, "empty: no *.yaml files in this folder\n")


def test_output_names_never_collide(routines: list[Path], tmp_path: Path, speech_cache: Path) -> None:
    other = write(tmp_path / "elsewhere", {"stretch.yaml": STRETCH})[0]
    result = invoke("build", routines[0], other, "--cache-dir", speech_cache, "-o", tmp_path / "out")
    assert result.exit_code == 2
    assert result.stderr == (f"{routines[0]} and {other} would both be written to {tmp_path / 'out' / 'stretch.mp3'}: "
                             "give the routines or profiles different file names\n")
    result = invoke("build", *routines, "--cache-dir", speech_cache, "-o", tmp_path / "one.mp3")
    assert result.exit_code == 2
    assert f"Error: -o names the folder to write several sessions to, got '{tmp_path / 'one.mp3'}'" in result.stderr
    assert not (tmp_path / "out").exists() and not (tmp_path / "one.mp3").exists()
    # A single build keeps -o as a file, and refuses a folder there as it always has.
    (tmp_path / "folder").mkdir()
    result = invoke("build", routines[0], "--cache-dir", speech_cache, "-o", tmp_path / "folder")
    assert result.exit_code == 2
    assert f"Invalid value for '-o' / '--output': File '{tmp_path / 'folder'}' is a directory." in result.stderr


@pytest.mark.parametrize(("delay", "whole_group"), [(0.4, True), (0.9, True), (2.5, True), (0.9, False)])
def test_ctrl_c_leaves_no_partial_file(delay: float, whole_group: bool, tmp_path: Path, speech_cache: Path) -> None:
    """Ctrl-C at a terminal (the whole process group) or to the command alone, while sessions are spoken,
    rendered and written: "interrupted", 130, no half-written file, no process left behind."""
    profiles = write(tmp_path / "profiles", {f"k{minutes}.yaml": f"holds:\n  knuckles: {minutes}m{round(delay * 10)}s\n"
                                             for minutes in (1, 2, 3, 4)})
    out = tmp_path / "out"
    env = dict(os.environ, VOICEGUIDE_CACHE_DIR=str(speech_cache))
    process = subprocess.Popen([sys.executable, "-m", "voiceguide", "build", str(SCIATICA), "--profile",
                                str(profiles[0].parent), "-o", str(out), "--quiet"], env=env, cwd=tmp_path,
                               stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               start_new_session=True)
    try:
        time.sleep(delay)
        if whole_group:
            os.killpg(process.pid, signal.SIGINT)
        else:
            os.kill(process.pid, signal.SIGINT)
        stdout, stderr = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    if process.returncode == 0:  # all were built before the signal came: nothing to undo
        assert SUMMARY.fullmatch(stdout.splitlines()[-1]), stdout
    else:
        assert (process.returncode, stderr.strip().splitlines()[-1:]) == (130, ["interrupted"]), stderr
        assert "Traceback" not in stderr
    written = sorted(out.iterdir()) if out.exists() else []
    assert all(path.suffix == ".mp3" for path in written), written  # no .part file
    for path in written:  # each one whole
        assert audio_probe.decode_errors(path) == ""
    deadline = time.monotonic() + 10
    while True:
        try:
            os.killpg(process.pid, 0)
        except ProcessLookupError:
            break
        assert time.monotonic() < deadline, f"a process of the build outlived it: {group_members(process.pid)}"
        time.sleep(0.05)


def group_members(group: int) -> list[str]:
    """The command lines of the processes still in process group ``group``, to say which one outlived it."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[2]) == group:  # after the name: state, parent, group
                found.append((stat.parent / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace"))
        except (OSError, IndexError, ValueError):
            continue  # ended while it was read
    return found


def test_a_process_that_dies_fails_only_its_pair(routines: list[Path], profiles: list[Path], tmp_path: Path,
                                                 speech_cache: Path) -> None:
    """A worker that dies outright (a crash in a library, the system out of memory) fails the pair it was
    building; another worker takes its place for the pairs left."""
    from voiceguide import api, batch
    from voiceguide.environment import Environment

    def build_or_die(session, target, *args):  # type: ignore[no-untyped-def]
        if Path(target).stem == "stretch-half":
            os._exit(3)
        return api.build_session(session, target, *args)

    stages = batch.Stages(api.load, api.load_profile, api.adjust, api.plan_session, build_or_die)
    pairs = batch.pairs_of(routines, profiles, tmp_path / "out")
    outcomes = batch.build_all(pairs, batch.Settings(), Environment(speech_cache), stages, workers=2)
    assert [outcome.pair for outcome in outcomes] == pairs
    failed = [outcome for outcome in outcomes if outcome.figures is None]
    assert [(o.pair.target.name, o.error, o.exit_code) for o in failed] == [
        ("stretch-half.mp3", ("the process building it ended unexpectedly (exit code 3)",), 1)]
    assert batch.exit_code(outcomes) == 1
    assert sorted(path.name for path in (tmp_path / "out").iterdir()) == sorted(
        pair.target.name for pair in pairs if pair.target.name != "stretch-half.mp3")
