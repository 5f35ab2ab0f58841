"""`build` measured: decode the MP3 it wrote and compare the sound with the plan.

Every check here reads numbers out of the file (decoded samples, MP3 headers,
ID3 frames, bytes) or out of the program's own streams; none only checks that
a file exists. Measuring helpers live in audio_probe.py.

Speech is synthesized once per run into the session cache (``speech_cache``);
tests that must see synthesis happen, or must break it, use a cache of their own.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import struct
import subprocess
import sys
import time
import wave
from pathlib import Path

import audio_probe
import imageio_ffmpeg
import numpy as np
import pytest
import yaml
from click.testing import CliRunner, Result
from mutagen.id3 import ID3
from mutagen.mp3 import MP3, BitrateMode
from test_phone import ebur128

from voiceguide.cli import cli
from voiceguide.environment import BUNDLED_ENV, Environment
from voiceguide.errors import AudioError, EngineError
from voiceguide.mp3 import lame_command

ROOT = Path(__file__).resolve().parent.parent
SCRIPTS = sorted((ROOT / "scripts").glob("*.yaml"))
SCIATICA = ROOT / "scripts" / "sciatica-self-massage.yaml"
BOX = ROOT / "scripts" / "box-breathing.yaml"
PIRIFORMIS = ROOT / "scripts" / "piriformis-stretch.yaml"
SHORT = ("--hold-scale", "0.25")  # box breathing in about 70 s of audio
TOLERANCE = 0.050  # seconds
SAMPLE_RATE = audio_probe.SAMPLE_RATE
WORKER = "voiceguide.speech.engines.pyttsx3_engine.WORKER"


# --- running the program -------------------------------------------------------------------------

def invoke(*args: object) -> Result:
    return CliRunner().invoke(cli, [str(a) for a in args])


def plan_json(routine: Path, cache: Path, *options: str) -> dict:
    result = invoke("plan", routine, "--json", "--quiet", "--cache-dir", cache, *options)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def build(routine: Path, target: Path, cache: Path, *options: str) -> Path:
    result = invoke("build", routine, "-o", target, "--quiet", "--cache-dir", cache, *options)
    assert result.exit_code == 0, result.output
    return target


def run_module(*args: object, cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    """`python -m voiceguide ARGS` in a process of its own."""
    return subprocess.run([sys.executable, "-m", "voiceguide", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, env=env, stdin=subprocess.DEVNULL, timeout=120)


def one_line_error(result: Result, code: int) -> str:
    """The single stderr line of a failed command, after checking its exit code and that nothing else was said."""
    assert result.exit_code == code, (result.exit_code, result.output)
    assert "Traceback" not in result.output
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def fake_worker(action: str) -> list[str]:
    """A pyttsx3 worker that answers --info like the real one, and runs ``action`` instead of speaking."""
    code = ("import runpy, sys\n"
            "if sys.argv[1:] == ['--info']:\n"
            "    runpy.run_module('voiceguide.speech.engines.pyttsx3_worker', run_name='__main__')\n"
            f"{action}\n")
    return [sys.executable, "-c", code]


REFUSING_WORKER = fake_worker("sys.stderr.write('synthesis is switched off in this test\\n'); sys.exit(1)")


def clips(cache: Path) -> dict[str, tuple[int, int]]:
    """Every clip file in a cache: relative path -> (size, mtime in ns)."""
    return {str(p.relative_to(cache)): (p.stat().st_size, p.stat().st_mtime_ns) for p in sorted(cache.glob("clips-*/*/*.wav"))}


def clips_files(cache: Path) -> list[Path]:
    return sorted(cache.glob("clips-*/*/*.wav"))


def distinct_lines(plan: dict) -> int:
    """How many different clips the plan speaks: speech and spoken cues, by text and voice."""
    return len({(e["text"], json.dumps(e["voice"], sort_keys=True)) for e in plan["events"] if "text" in e})


def tiny_routine(folder: Path, text: str, name: str = "tiny.yaml", hold: str = "2s", chime: str = "wood") -> Path:
    path = folder / name
    path.write_text(f"title: Tiny\ndescription: A one-step routine for tests.\nchime: {chime}\n"
                    f"steps:\n  - title: Only step\n    id: only\n    say: {text}\n    hold: {hold}\n")
    return path


def plan_has_chimes(plan: dict) -> bool:
    return any(e["kind"] == "chime" for e in plan["events"])


def clock_seconds(text: str) -> float:
    """'1:54.5' or '1:02:03' as seconds."""
    total = 0.0
    for part in text.split(":"):
        total = total * 60 + float(part)
    return total


# --- 1. the decoded audio follows the timeline ----------------------------------------------------

SCIATICA_HOLDS = {"palms": 45, "thumbs": 45, "tennis-balls": 60, "knuckles": 60, "side-rest": 300}
BUILD_CASES = [pytest.param(path, (), None, id=path.stem) for path in SCRIPTS] + [
    pytest.param(SCIATICA, ("--hold", "tennis-balls=20s", "--hold", "palms=7s"),
                 {**SCIATICA_HOLDS, "tennis-balls": 20, "palms": 7}, id="sciatica-hold-options"),
    pytest.param(SCIATICA, ("--hold-scale", "0.5"), {k: v / 2 for k, v in SCIATICA_HOLDS.items()}, id="sciatica-hold-scale"),
]


@pytest.fixture(scope="module")
def built(speech_cache: Path, tmp_path_factory: pytest.TempPathFactory):
    """Plan, build and decode a session once per module: (plan, samples)."""
    done: dict[tuple, tuple[dict, np.ndarray]] = {}

    def get(routine: Path, *options: str) -> tuple[dict, np.ndarray]:
        key = (routine, options)
        if key not in done:
            plan = plan_json(routine, speech_cache, *options)
            target = tmp_path_factory.mktemp(routine.stem) / "session.mp3"
            done[key] = plan, audio_probe.decode(build(routine, target, speech_cache, *options))
        return done[key]

    return get


@pytest.mark.slow
@pytest.mark.parametrize(("routine", "options", "expected_holds"), BUILD_CASES)
def test_decoded_audio_follows_the_plan(routine: Path, options: tuple[str, ...], expected_holds: dict | None, built) -> None:
    plan, samples = built(routine, *options)
    measured = audio_probe.measure_timeline(samples, plan)
    sounds, silences = measured["sounds"], measured["silences"]
    holds = [(heard.event, heard) for heard in measured["holds"]]
    total_error = audio_probe.duration(samples) - plan["duration"]
    speech = [m for m in sounds if m.kind == "speech"]
    rung = [m for m in sounds if m.kind != "speech"]
    print(f"\n{routine.stem} {' '.join(options)}: {audio_probe.duration(samples):.3f} s decoded, total error "
          f"{total_error * 1000:+.1f} ms; {len(holds)} holds, max error {audio_probe.worst([h.length_error for _, h in holds]):.1f} ms; "
          f"{len(silences)} silences, max edge error {audio_probe.worst([s.start_error for s in silences] + [s.end_error for s in silences]):.1f} ms; "
          f"{len(speech)} speech, max onset error {audio_probe.worst([m.start_error for m in speech]):.1f} ms, "
          f"max end error {audio_probe.worst([m.end_error for m in speech]):.1f} ms; {len(rung)} chimes/cues, max onset error "
          f"{audio_probe.worst([m.start_error for m in rung]):.1f} ms, max end error {audio_probe.worst([m.end_error for m in rung]):.1f} ms")

    assert abs(total_error) <= TOLERANCE
    assert len(holds) == sum(1 for e in plan["events"] if e["kind"] == "hold") > 0
    assert len(speech) == sum(1 for e in plan["events"] if e["kind"] == "speech")
    problems = []
    for event, heard in holds:
        where = f"hold of {event['step']} planned {event['start']:.3f}-{event['end']:.3f}"
        counted_in = [m.event for m in sounds if m.event.get("cue") == "countdown" and m.planned_end <= event["start"]
                      and m.planned_end == heard.planned_start]
        if counted_in:  # a strict group counts into the hold: "one" a second before it starts
            assert event["start"] - counted_in[0]["start"] == pytest.approx(1.0, abs=0.001), where
        else:
            assert heard.planned_start == event["start"], where  # the hold starts where the words end
        if plan_has_chimes(plan):
            # The hold is heard from the end of the words to the start of its chime.
            assert heard.planned_end == event["end"], where
            if expected_holds:
                assert event["end"] - event["start"] == pytest.approx(expected_holds[event["step"]], abs=0.001), where
        if abs(heard.length_error) > TOLERANCE or abs(heard.start_error) > TOLERANCE or abs(heard.end_error) > TOLERANCE:
            problems.append(f"{where}: heard {heard.start}-{heard.end}, planned {heard.planned_start:.3f}-{heard.planned_end:.3f}")
        if heard.interior_dbfs is None or heard.interior_dbfs >= audio_probe.TAIL_DBFS:  # silent between its cues
            problems.append(f"{where}: peaks at {heard.interior_dbfs} dBFS inside")
    # Every silence (holds, pauses, rests) is where planned, and silent inside.
    for heard in silences:
        where = f"silence planned {heard.planned_start:.3f}-{heard.planned_end:.3f}"
        if abs(heard.start_error) > TOLERANCE or abs(heard.end_error) > TOLERANCE:
            problems.append(f"{where}: heard {heard.start:.3f}-{heard.end:.3f}")
        if heard.interior_dbfs >= audio_probe.TAIL_DBFS:
            problems.append(f"{where}: peaks at {heard.interior_dbfs:.1f} dBFS inside")
    for sound in sounds:
        event = sound.event
        where = f"{event['kind']} {event.get('text', event.get('sound'))!r} planned {event['start']:.3f}-{event['end']:.3f}"
        if abs(sound.start_error) > TOLERANCE or abs(sound.end_error) > TOLERANCE:
            problems.append(f"{where}: heard {sound.start}-{sound.end}")
    assert not problems, "\n".join(problems)


@pytest.mark.slow
@pytest.mark.parametrize("routine", SCRIPTS, ids=lambda p: p.stem)
def test_sounds_never_touch(routine: Path, built) -> None:
    """planner.place(): 'A pause of the routine's `pause` separates two sounds that would otherwise touch.'

    (Caught the side-switch line starting the instant the chime ended, fixed in db151b2.)
    """
    plan, samples = built(routine)
    pause = yaml.safe_load(routine.read_text()).get("pause", 0.8)
    assert pause == 0.8  # the scripts keep the default
    # The sounds that follow one another: speech, chimes, and the cue a rest opens with.
    # (Other cues sit at chosen offsets inside a hold or rest: counts, "next up".)
    rests = {e["start"] for e in plan["events"] if e["kind"] == "rest"}
    heard = sorted((m for m in audio_probe.measure_sounds(samples, plan) if m.kind != "cue" or m.planned_start in rests),
                   key=lambda m: m.planned_start)
    gaps = [(after.start - before.end, before, after) for before, after in zip(heard, heard[1:])]
    close = [f"{gap * 1000:.0f} ms between {b.kind} {b.event.get('text', b.event.get('sound'))!r} ending at "
             f"{b.end:.3f} and {a.kind} {a.event.get('text', a.event.get('sound'))!r}" for gap, b, a in gaps if gap < pause - TOLERANCE]
    assert not close, "\n".join(close)


# --- 2. the MP3 itself -------------------------------------------------------------------------

@pytest.mark.slow
@pytest.mark.parametrize("bitrate", [None, 96], ids=["default-64", "bitrate-96"])
def test_mp3_is_cbr_mono_44k_with_id3v23_tags(bitrate: int | None, speech_cache: Path, tmp_path: Path) -> None:
    options = ("--hold-scale", "0.2")
    plan = plan_json(PIRIFORMIS, speech_cache, *options)
    target = build(PIRIFORMIS, tmp_path / "stretch.mp3", speech_cache, *options,
                   *(("--bitrate", str(bitrate)) if bitrate else ()))
    kbps = bitrate or 64

    info = MP3(target).info
    assert (info.bitrate, info.sample_rate, info.channels) == (kbps * 1000, 44100, 1)
    # mutagen says CBR only for an Info (not Xing) header: the encoder's own declaration.
    assert info.bitrate_mode == BitrateMode.CBR
    # The frame count in that header gives players the length; mutagen counts the
    # encoder's padding frames too, so allow a little over the plan.
    assert -TOLERANCE <= info.length - plan["duration"] <= 0.1
    # Constant bitrate in fact, not only in the first header: the audio bytes are bitrate x duration.
    tags = ID3(target)
    audio_bytes = target.stat().st_size - tags.size
    assert audio_bytes * 8 / plan["duration"] == pytest.approx(kbps * 1000, rel=0.02)

    source = yaml.safe_load(PIRIFORMIS.read_text())
    assert tags.version == (2, 3, 0)
    assert tags["TIT2"].text == [source["title"]]
    assert tags["TPE1"].text == ["voiceguide"]
    assert tags["TALB"].text == ["voiceguide sessions"]
    assert tags["TCON"].text == ["Speech"]
    assert [frame.text for frame in tags.getall("COMM")] == [[source["description"]]]
    assert audio_probe.decode_errors(target) == ""


# --- 3. reproducible bytes ------------------------------------------------------------------------

@pytest.mark.slow
def test_same_options_give_the_same_bytes(speech_cache: Path, tmp_path: Path) -> None:
    first = build(BOX, tmp_path / "a" / "box.mp3", speech_cache, *SHORT).read_bytes()
    second = build(BOX, tmp_path / "b" / "box.mp3", speech_cache, *SHORT).read_bytes()
    assert first == second
    changed = build(BOX, tmp_path / "c" / "box.mp3", speech_cache, *SHORT, "--hold", "in=3s")
    assert changed.read_bytes() != first
    # Four rounds, each 'in' hold 3 s instead of 1 s: 8 s longer, to the sample.
    longer = audio_probe.duration(audio_probe.decode(changed)) - audio_probe.duration(audio_probe.decode(tmp_path / "a" / "box.mp3"))
    assert longer == pytest.approx(8.0, abs=TOLERANCE)


# --- 4. speaking rate per step --------------------------------------------------------------------

RATES_ROUTINE = """\
title: Two speeds
description: The same sentence, slow then fast.
chime: none
steps:
  - title: Slow
    id: slow
    say: Breathe in slowly through your nose, and let your shoulders settle down.
    voice: {rate: 100}
  - title: Fast
    id: fast
    say: Breathe in slowly through your nose, and let your shoulders settle down.
    voice: {rate: 200}
"""


@pytest.mark.slow
def test_each_step_speaks_at_its_own_rate(speech_cache: Path, tmp_path: Path) -> None:
    routine = tmp_path / "rates.yaml"
    routine.write_text(RATES_ROUTINE)
    plan = plan_json(routine, speech_cache)
    slow, fast = [e for e in plan["events"] if e["kind"] == "speech"]
    assert (slow["voice"]["rate"], fast["voice"]["rate"]) == (100, 200)
    planned_ratio = (slow["end"] - slow["start"]) / (fast["end"] - fast["start"])
    samples = audio_probe.decode(build(routine, tmp_path / "rates.mp3", speech_cache))
    heard = []
    for event in (slow, fast):
        start = audio_probe.first_loud(samples, event["start"] - 0.1, event["end"] + 0.1)
        end = audio_probe.last_loud(samples, event["start"] - 0.1, event["end"] + 0.1)
        assert start == pytest.approx(event["start"], abs=TOLERANCE)
        assert end == pytest.approx(event["end"], abs=TOLERANCE)
        heard.append(end - start)
    print(f"\nrate 100: {heard[0]:.3f} s, rate 200: {heard[1]:.3f} s; planned ratio {planned_ratio:.2f}")
    assert 1.6 <= planned_ratio <= 2.6
    assert 1.6 <= heard[0] / heard[1] <= 2.6


# --- 5. stdout carries only the program's answer --------------------------------------------------

@pytest.mark.slow
def test_plan_json_stdout_is_only_json_while_synthesizing(tmp_path: Path) -> None:
    cache = tmp_path / "empty-cache"
    result = run_module("plan", BOX, "--json", "--cache-dir", cache, *SHORT, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    plan = json.loads(result.stdout)  # the whole of stdout, nothing before or after
    assert plan["format"] == 1 and plan["events"]
    assert result.stderr == ""
    # Synthesis did happen in that process: one clip per distinct line.
    assert len(clips(cache)) == distinct_lines(plan) > 5


@pytest.mark.slow
def test_build_prints_path_duration_size_and_loudness(tmp_path: Path) -> None:
    target = tmp_path / "out" / "box.mp3"
    result = run_module("build", BOX, "-o", target, "--cache-dir", tmp_path / "empty-cache", *SHORT, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "Audio saved to" not in result.stdout + result.stderr
    assert result.stderr == ""
    lines = result.stdout.splitlines()
    assert len(lines) == 2, result.stdout
    match = re.fullmatch(r"(.+)  (\d+(?::\d\d){1,2}(?:\.\d)?)  (\d+\.\d) MB", lines[0])
    assert match, lines[0]
    assert match[1] == str(target)
    assert clock_seconds(match[2]) == pytest.approx(audio_probe.duration(audio_probe.decode(target)), abs=0.06)
    assert match[3] == f"{target.stat().st_size / 1_000_000:.1f}"
    # The speech's loudness, and the whole file's as a player measures it.
    loudness = re.fullmatch(r"loudness: speech (-?\d+\.\d) LUFS, whole file (-?\d+\.\d) LUFS", lines[1])
    assert loudness, lines[1]
    assert float(loudness[1]) == pytest.approx(-16.0, abs=1.0)
    assert float(loudness[2]) == pytest.approx(ebur128(target)[0], abs=0.3)


# --- 6. the clip cache ------------------------------------------------------------------------

@pytest.mark.slow
def test_second_build_synthesizes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cache = tmp_path / "cache"
    routine = tiny_routine(tmp_path, "Rest your hands on your knees and breathe out slowly.")
    first = build(routine, tmp_path / "1.mp3", cache).read_bytes()
    before = clips(cache)
    assert len(before) == 1
    # The worker can no longer speak (it still answers --info, which the cache key needs).
    monkeypatch.setattr(WORKER, REFUSING_WORKER)
    assert build(routine, tmp_path / "2.mp3", cache).read_bytes() == first
    assert clips(cache) == before  # not one clip written again
    # Proof that the switched-off worker would have been noticed: a new line fails.
    changed = tiny_routine(tmp_path, "A sentence that is not in the cache yet.", name="new.yaml")
    result = invoke("build", changed, "-o", tmp_path / "3.mp3", "--quiet", "--cache-dir", cache)
    assert "synthesis is switched off" in one_line_error(result, 1)


def workers_running() -> list[str]:
    """Command lines of the pyttsx3 workers that are children of this process."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            stat = (entry / "stat").read_text()
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except (OSError, ValueError):
            continue
        if int(stat[stat.rfind(")") + 2 :].split()[1]) == os.getpid() and "pyttsx3_worker" in command:
            found.append(command)
    return found


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="workers that fork a child a line are Linux's")
def test_a_worker_that_forks_a_child_a_line_speaks_what_a_worker_a_line_speaks(tmp_path: Path,
                                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """On Linux a worker loads pyttsx3 once and forks a child for each line (pyttsx3_worker --fork): its
    clips are the very bytes of one worker process a line, and no worker is left running after a build."""
    routine = tiny_routine(tmp_path, "Let your shoulders drop. Breathe in through your nose, and out slowly.")
    plan_json(routine, tmp_path / "forked")
    assert workers_running() == []
    monkeypatch.setattr("voiceguide.speech.engines.pyttsx3_engine.FORKING", False)
    plan_json(routine, tmp_path / "one-each")
    forked, one_each = clips(tmp_path / "forked"), clips(tmp_path / "one-each")
    assert len(forked) == 1 and forked.keys() == one_each.keys()
    for name in forked:
        assert (tmp_path / "forked" / name).read_bytes() == (tmp_path / "one-each" / name).read_bytes()


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="workers that fork a child a line are Linux's")
def test_a_line_that_hangs_in_a_forked_child_is_given_up_and_leaves_nothing_running(tmp_path: Path,
                                                                                   environment: Environment) -> None:
    """The child a forking worker forked hangs: after the timeout the engine kills the worker, and the child
    goes with it; the next line gets a worker of its own."""
    from voiceguide.speech.engines import pyttsx3_engine

    hanging = [sys.executable, "-c", (
        "import os, sys, time\n"
        "import voiceguide.speech.engines.pyttsx3_worker as worker\n"
        "def speak(request):\n"
        "    open(request['path'] + '.pid', 'w').write(str(os.getpid()))\n"
        "    time.sleep(120)\n"
        "worker.speak = speak\n"
        "sys.exit(worker.main())\n")]
    engine = pyttsx3_engine.Pyttsx3Engine(environment)
    path = tmp_path / "clip.wav"
    try:
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(pyttsx3_engine, "WORKER", hanging)
            began = time.monotonic()
            with pytest.raises(EngineError, match=r"no answer from pyttsx3 after 1 s"):
                engine.synthesize("Hold it there.", engine.default_voice(), 160, 1.0, path, 1.0)
            assert time.monotonic() - began < 10
        child = int((tmp_path / "clip.wav.pid").read_text())
        deadline = time.monotonic() + 5
        while Path(f"/proc/{child}").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not Path(f"/proc/{child}").exists() or "Z" in Path(f"/proc/{child}/stat").read_text().split()[2]
        assert workers_running() == []
        engine.synthesize("Hold it there.", engine.default_voice(), 160, 1.0, path, 30.0)
        assert path.stat().st_size > 10_000
    finally:
        engine.close()
    assert workers_running() == []


@pytest.mark.slow
def test_cache_info_counts_and_clear_empties(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    plan = plan_json(BOX, cache, *SHORT)
    count = len(clips(cache))
    assert count == distinct_lines(plan) > 5
    files = [path for path in cache.rglob("*") if path.is_file()]  # everything stored
    result = invoke("cache", "info", "--cache-dir", cache)
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert lines[0] == str(cache)
    assert lines[1].split() == [str(count), "spoken", "clips", f"{sum(p.stat().st_size for p in clips_files(cache)) / 1e6:.1f}", "MB"]
    assert lines[-1].split() == [str(len(files)), "files", "in", "all",
                                 f"{sum(p.stat().st_size for p in files) / 1e6:.1f}", "MB"]
    result = invoke("cache", "clear", "--cache-dir", cache)
    assert result.exit_code == 0
    assert result.stdout == f"removed from {cache}:\n" + "\n".join(lines[1:]) + "\n"
    assert clips(cache) == {}
    assert not [path for path in cache.rglob("*") if path.is_file()]
    assert invoke("cache", "info", "--cache-dir", cache).stdout == f"{cache}\nnothing stored\n"
    # And the next run speaks them again.
    assert plan_json(BOX, cache, *SHORT) == plan
    assert len(clips(cache)) == count


@pytest.mark.slow
@pytest.mark.parametrize("damage", ["truncated", "not-a-wav"])
def test_damaged_clip_is_spoken_again(damage: str, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    routine = tiny_routine(tmp_path, "Let your shoulders drop and your jaw soften.")
    good = build(routine, tmp_path / "good.mp3", cache).read_bytes()
    [name] = clips(cache)
    clip = cache / name
    original = clip.read_bytes()
    if damage == "truncated":
        clip.write_bytes(original[: len(original) // 2])
    else:
        clip.write_text("this is not audio\n")
    assert build(routine, tmp_path / "again.mp3", cache).read_bytes() == good
    with wave.open(str(clip), "rb") as repaired:
        # The header, the samples, and the chunk that carries their SHA-256 (8 bytes and 32).
        assert clip.stat().st_size == 44 + 2 * repaired.getnframes() + 40 > len(original) // 2
    assert clip.read_bytes() == original  # espeak-ng speaks the same line to the same samples


# --- 7. atomic output ----------------------------------------------------------------------------

@pytest.fixture
def previous(speech_cache: Path, tmp_path: Path) -> tuple[Path, bytes]:
    """A good session already at the target, which a failed build must leave alone."""
    target = build(BOX, tmp_path / "out" / "box.mp3", speech_cache, *SHORT)
    return target, target.read_bytes()


@pytest.mark.slow
@pytest.mark.parametrize(("raised", "code", "said"), [
    (KeyboardInterrupt(), 130, "interrupted"),
    (AudioError("cannot write: No space left on device"), 1, "No space left on device"),
    (ZeroDivisionError("boom"), 1, "internal error: ZeroDivisionError: boom"),
], ids=["interrupt", "audio-error", "bug"])
def test_failed_build_keeps_the_previous_file(raised: BaseException, code: int, said: str, previous: tuple[Path, bytes],
                                               speech_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target, old = previous
    seen: list[list[str]] = []

    def render_then_fail(timeline, speech, sounds, path, *level) -> None:
        with open(path, "wb") as half_written:
            half_written.write(b"\xff\xfb" * 5000)
        seen.append(sorted(p.name for p in target.parent.iterdir()))
        raise raised

    # api imports render when it builds: patch it where it is taken from.
    monkeypatch.setattr("voiceguide.render.render", render_then_fail)
    result = invoke("build", BOX, "-o", target, "--quiet", "--cache-dir", speech_cache, "--hold-scale", "0.5")
    assert said in one_line_error(result, code)
    assert len(seen) == 1 and any(n.startswith(".box.mp3.") and n.endswith(".part") for n in seen[0]), seen
    assert target.read_bytes() == old
    assert sorted(p.name for p in target.parent.iterdir()) == ["box.mp3"]


@pytest.mark.slow
def test_encoder_dying_midway_keeps_the_previous_file(previous: tuple[Path, bytes], speech_cache: Path,
                                                     monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                     environment: Environment) -> None:
    from voiceguide.mp3 import _encoder, _silence

    target, old = previous
    _silence.silence_at(environment.tools.ffmpeg, 64, environment.cache)  # made before the encoder is broken
    # An encoder that takes some audio and dies, as on a full disk or an OOM kill.
    dying = tmp_path / "dying.py"
    dying.write_text("import sys\nsys.stdin.buffer.read(300000)\nsys.stderr.write('killed\\n')\nsys.exit(9)\n")
    monkeypatch.setattr(_encoder, "encoder_command", lambda *args: [sys.executable, str(dying)])
    # Nothing stored: every piece goes to the encoder.
    cache = tmp_path / "cache"
    shutil.copytree(speech_cache, cache, ignore=shutil.ignore_patterns("frames-*"))
    result = invoke("build", BOX, "-o", target, "--quiet", "--cache-dir", cache, "--hold-scale", "0.5")
    assert "encoding the MP3 failed: killed" in one_line_error(result, 1)
    assert target.read_bytes() == old
    assert sorted(p.name for p in target.parent.iterdir()) == ["box.mp3"]
    assert not list(cache.glob("frames-*/*/*")), "nothing half-made is stored"


@pytest.mark.slow
def test_ctrl_c_during_a_real_build(previous: tuple[Path, bytes], speech_cache: Path, tmp_path: Path) -> None:
    """Ctrl-C at a terminal: SIGINT to the whole process group (voiceguide and its ffmpeg) while encoding."""
    target, old = previous
    routine = tiny_routine(tmp_path, "Lie still.", hold="20m")
    build(routine, tmp_path / "first" / "still.mp3", speech_cache)  # its level is stored: the next build writes at once
    # An ffmpeg that takes its time, as the encoder (imageio-ffmpeg's, which IMAGEIO_FFMPEG_EXE names): its
    # encoded pieces are not the stored ones, so the build below must encode, and is surely interrupted while
    # it does.
    slow = tmp_path / "slow-bin"
    slow.mkdir()
    started = tmp_path / "encoding"
    (slow / "ffmpeg").write_text(f"#!/bin/sh\ntouch '{started}'\nsleep 10\n"
                                 f"exec '{imageio_ffmpeg.get_ffmpeg_exe()}' \"$@\"\n")
    (slow / "ffmpeg").chmod(0o755)
    env = {k: v for k, v in os.environ.items() if k != "VOICEGUIDE_BUNDLED"}
    env["IMAGEIO_FFMPEG_EXE"] = str(slow / "ffmpeg")
    env["PYTHONFAULTHANDLER"] = "1"  # so that a hang below can show where each thread is
    # As from a terminal: Ctrl-C reaches the build even where this test runs with SIGINT ignored (a
    # background job), which a child would inherit; the build replaces this small starter in place.
    starter = ("import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); "
               "os.execv(sys.executable, [sys.executable, '-m', 'voiceguide', *sys.argv[1:]])")
    command = [sys.executable, "-c", starter, "build", str(routine), "-o", str(target), "--quiet",
               "--cache-dir", str(speech_cache)]
    process = subprocess.Popen(command, cwd=tmp_path, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, start_new_session=True, env=env)
    try:
        deadline = time.monotonic() + 60
        while not (started.exists() and any(p.stat().st_size > 0 for p in target.parent.glob(".*.part"))):
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, "the build never started writing"
            time.sleep(0.05)
        time.sleep(0.2)
        os.killpg(process.pid, signal.SIGINT)
        try:
            stdout, stderr = process.communicate(timeout=40)
        except subprocess.TimeoutExpired:
            os.kill(process.pid, signal.SIGABRT)  # the fault handler prints every thread's stack
            raise AssertionError(f"still running 40 s after Ctrl-C:\n{process.communicate(timeout=10)[1]}") from None
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    assert process.returncode == 130, stderr
    assert stdout == "" and stderr.strip() == "interrupted"
    # Its ffmpeg went with it: nothing is left in the process group.
    time.sleep(0.2)
    with pytest.raises(ProcessLookupError):
        os.killpg(process.pid, 0)
    assert target.read_bytes() == old
    assert sorted(p.name for p in target.parent.iterdir()) == ["box.mp3"]


# --- 8. bad cases: one clear line --------------------------------------------------------------

def test_unknown_engine(speech_cache: Path, tmp_path: Path) -> None:
    result = invoke("build", BOX, "-o", tmp_path / "x.mp3", "--cache-dir", speech_cache, "--engine", "nope")
    assert one_line_error(result, 2) == "unknown engine 'nope'; valid engines: piper, pyttsx3"
    assert list(tmp_path.iterdir()) == []


def test_unknown_voice(speech_cache: Path, tmp_path: Path) -> None:
    # (espeak-ng really has a Klingon voice, art/piqd, so 'klingon' is valid.)
    result = invoke("build", BOX, "-o", tmp_path / "x.mp3", "--cache-dir", speech_cache, "--voice", "vulcan")
    assert one_line_error(result, 2) == "unknown voice 'vulcan' for engine pyttsx3 (see `voiceguide voices`)"
    result = invoke("plan", BOX, "--cache-dir", speech_cache, "--voice", "englsh")
    assert re.fullmatch(r"unknown voice 'englsh' for engine pyttsx3; close matches: .+ \(see `voiceguide voices`\)",
                        one_line_error(result, 2))
    assert list(tmp_path.iterdir()) == []


def test_misspelt_voice_suggests_the_language_meant(speech_cache: Path) -> None:
    result = invoke("plan", BOX, "--cache-dir", speech_cache, "--voice", "englsh")
    hint = one_line_error(result, 2).split("close matches:")[1]
    assert "english" in hint.casefold(), hint


@pytest.mark.slow
def test_hung_synthesis_times_out_naming_the_text(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(WORKER, fake_worker("import time; time.sleep(120)"))
    # cli builds Speech() without a timeout, which then falls back to this module constant.
    monkeypatch.setattr("voiceguide.speech.clips.SYNTHESIS_TIMEOUT", 0.5)
    routine = tiny_routine(tmp_path, "Curl your toes and hold them tight.")
    began = time.monotonic()
    result = invoke("build", routine, "-o", tmp_path / "x.mp3", "--quiet", "--cache-dir", tmp_path / "cache")
    elapsed = time.monotonic() - began
    assert one_line_error(result, 1) == f'{routine}:7:10: could not speak "Curl your toes and hold them tight.": no answer from pyttsx3 after 0.5 s'
    assert elapsed < 15  # two tries of 0.5 s, plus starting the real worker for --info
    assert not (tmp_path / "x.mp3").exists() and clips(tmp_path / "cache") == {}


def test_failing_synthesis_names_the_text(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(WORKER, fake_worker("sys.stderr.write('noise\\nRuntimeError: espeak lost its voice\\n'); sys.exit(1)"))
    routine = tiny_routine(tmp_path, "Roll your shoulders back three times.")
    result = invoke("build", routine, "-o", tmp_path / "x.mp3", "--quiet", "--cache-dir", tmp_path / "cache")
    assert one_line_error(result, 1) == f'{routine}:7:10: could not speak "Roll your shoulders back three times.": RuntimeError: espeak lost its voice'
    assert not (tmp_path / "x.mp3").exists()


@pytest.mark.slow
def test_output_folder_that_cannot_exist(speech_cache: Path, tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder\n")
    target = blocker / "box.mp3"
    result = invoke("build", BOX, "-o", target, "--quiet", "--cache-dir", speech_cache, *SHORT)
    line = one_line_error(result, 1)
    assert line.startswith(f"cannot write {target}: ") and ("Not a directory" in line or "File exists" in line), line
    assert blocker.read_text() == "not a folder\n"


@pytest.mark.filterwarnings("ignore:Couldn't find ffprobe:RuntimeWarning")
@pytest.mark.parametrize("content", [b"just some text\n", b"RIFF\x10\x00\x00\x00WAVEgarbage"], ids=["text", "riff-garbage"])
def test_chime_that_is_not_audio(content: bytes, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "x.wav").write_bytes(content)
    routine = tiny_routine(tmp_path, "Stand tall.", chime="x.wav")
    line_number = routine.read_text().splitlines().index("chime: x.wav") + 1
    # Reported before any speech is made: with the worker switched off and an empty cache.
    monkeypatch.setattr(WORKER, REFUSING_WORKER)
    result = invoke("build", routine, "-o", tmp_path / "x.mp3", "--quiet", "--cache-dir", tmp_path / "cache")
    line = one_line_error(result, 2)
    assert re.fullmatch(rf"{re.escape(str(routine))}:{line_number}:8: chime .*x\.wav: not an audio file \(.+\)", line), line
    assert not (tmp_path / "x.mp3").exists()


def float_wav(path: Path, seconds: float = 0.5) -> Path:
    """A decaying 660 Hz tone as 32-bit float WAV, as Audacity exports by default."""
    t = np.arange(round(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    data = (0.5 * np.sin(2 * np.pi * 660 * t) * np.exp(-6 * t)).astype("<f4").tobytes()
    fmt = struct.pack("<HHIIHH", 3, 1, SAMPLE_RATE, SAMPLE_RATE * 4, 4, 32)
    path.write_bytes(b"RIFF" + struct.pack("<I", 4 + 8 + len(fmt) + 8 + len(data)) + b"WAVE"
                     + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", len(data)) + data)
    return path


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:Couldn't find ffprobe:RuntimeWarning")
def test_float_wav_chime_plays_where_planned(speech_cache: Path, tmp_path: Path) -> None:
    float_wav(tmp_path / "tone.wav")
    routine = tiny_routine(tmp_path, "Stand tall.", chime="tone.wav")
    plan = plan_json(routine, speech_cache)
    [chime] = [e for e in plan["events"] if e["kind"] == "chime"]
    assert chime["end"] - chime["start"] == pytest.approx(0.5, abs=0.001)
    samples = audio_probe.decode(build(routine, tmp_path / "tone.mp3", speech_cache))
    assert audio_probe.first_loud(samples, chime["start"] - 0.1, chime["end"]) == pytest.approx(chime["start"], abs=TOLERANCE)
    # Chimes are levelled to sit below the speech in loudness, and still clearly heard. This session is one
    # short sentence, which the speech alone cannot bring to the target: the chime carries some of it, yet
    # stays under the words (render.level.SOUND_MIN_BELOW_LU, measured over the whole speech, here per event).
    def loudness(event: dict) -> float:
        return audio_probe.loudness(samples[audio_probe.index(event["start"], samples) : audio_probe.index(event["end"], samples)])

    speech = max(loudness(e) for e in plan["events"] if e["kind"] == "speech")
    assert speech - 15 < loudness(chime) < speech - 1, (loudness(chime), speech)


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["float-wav", "riff-garbage"])
def test_sound_file_chime_says_nothing_else_on_stderr(kind: str, speech_cache: Path, tmp_path: Path) -> None:
    if kind == "float-wav":
        float_wav(tmp_path / "x.wav")
    else:
        (tmp_path / "x.wav").write_bytes(b"RIFF\x10\x00\x00\x00WAVEgarbage")
    routine = tiny_routine(tmp_path, "Stand tall.", chime="x.wav")
    result = run_module("build", routine, "-o", tmp_path / "x.mp3", "--cache-dir", speech_cache, cwd=tmp_path)
    if kind == "float-wav":
        assert result.returncode == 0 and result.stdout.startswith(str(tmp_path / "x.mp3"))
        assert result.stderr == ""
    else:
        assert result.returncode == 2
        assert len(result.stderr.splitlines()) == 1, result.stderr


# --- a clip is whole or it is refused ------------------------------------------------------------

# pyttsx3's runAndWait returns before espeak-ng has written the file, so the
# worker polls until the WAV "has frames". The wave module writes the header,
# with the full frame count, before the data: a poll in between passes, the
# worker exits 0, and its exit cuts the espeak thread's write short. Measured
# here under CPU load: 8 of 2500 syntheses left a 44-byte file (caught by
# `_checked`, then retried) and 1 a WAV cut at 256 KiB of 502 KiB, which
# `_checked` accepted: a sentence cut in half, cached for good. The worker below
# widens that window to 0.5 s so the race happens every time.
SLOW_WRITE_WORKER = [sys.executable, "-c", (
    "import runpy, time, wave\n"
    "header = wave.Wave_write._write_header\n"
    "def slow(self, length):\n"
    "    header(self, length)\n"
    "    self._file.flush()\n"
    "    time.sleep(0.5)  # a loaded machine or slow disk between header and data\n"
    "wave.Wave_write._write_header = slow\n"
    "runpy.run_module('voiceguide.speech.engines.pyttsx3_worker', run_name='__main__')\n")]


@pytest.mark.slow
def test_worker_exits_only_after_the_whole_wav_is_written(tmp_path: Path, environment: Environment) -> None:
    from voiceguide.speech.engines import pyttsx3_engine

    info = pyttsx3_engine._worker_info(environment, tuple(pyttsx3_engine.WORKER))
    path = tmp_path / "clip.wav"
    request = json.dumps({"text": "Breathe in slowly and hold it.", "voice": info["default"], "rate": 160,
                          "volume": 1.0, "path": str(path)})
    result = subprocess.run(SLOW_WRITE_WORKER, input=request, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    time.sleep(1)  # whatever the worker left behind, it has left by now
    with wave.open(str(path), "rb") as clip:
        frames = clip.getnframes()
        assert frames > 0
        assert path.stat().st_size == 44 + 2 * frames, "the worker exited 0 before its clip was written"


TRUNCATING_WORKER = fake_worker(
    "import json, wave, numpy as np\n"
    "forking = sys.argv[1:] == ['--fork']  # a request a line, each answered; else one request\n"
    "for line in (sys.stdin if forking else [sys.stdin.read()]):\n"
    "    request = json.loads(line)\n"
    "    tone = (8000 * np.sin(np.arange(2 * 22050) * 0.2)).astype('<i2').tobytes()\n"
    "    with wave.open(request['path'], 'wb') as clip:\n"
    "        clip.setnchannels(1); clip.setsampwidth(2); clip.setframerate(22050); clip.writeframes(tone)\n"
    "    # what the race above leaves: the header says 2 s, the file holds 1 s\n"
    "    with open(request['path'], 'r+b') as clip:\n"
    "        clip.truncate(44 + len(tone) // 2)\n"
    "    if forking:\n"
    "        print('{}', flush=True)\n")


def test_clip_shorter_than_its_header_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(WORKER, TRUNCATING_WORKER)
    routine = tiny_routine(tmp_path, "Hold still and breathe.")
    result = invoke("build", routine, "-o", tmp_path / "x.mp3", "--quiet", "--cache-dir", tmp_path / "cache")
    cached = [wave.open(str(tmp_path / "cache" / name)).getnframes() / SAMPLE_RATE for name in clips(tmp_path / "cache")]
    assert result.exit_code == 1, f"built with a clip of {cached} s instead of the 2 s the engine announced"
    assert one_line_error(result, 1) == f'{routine}:7:10: could not speak "Hold still and breathe.": the engine wrote a truncated WAV file'
    assert cached == []


# --- 9. bundled ffmpeg and espeak-ng --------------------------------------------------------------

@pytest.fixture
def fake_system_ffmpeg(tmp_path: Path) -> Path:
    """A folder with an `ffmpeg` that always fails, to put first on PATH."""
    folder = tmp_path / "bin"
    folder.mkdir()
    fake = folder / "ffmpeg"
    fake.write_text("#!/bin/sh\necho 'fake system ffmpeg' >&2\nexit 1\n")
    fake.chmod(0o755)
    return folder


@pytest.mark.slow
def test_bundled_tools_are_used_when_asked(fake_system_ffmpeg: Path, speech_cache: Path, tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    import imageio_ffmpeg

    path = f"{fake_system_ffmpeg}{os.pathsep}{os.environ.get('PATH', '')}"
    monkeypatch.setenv("PATH", path)
    monkeypatch.delenv(BUNDLED_ENV, raising=False)
    # The environment of a process: its tools are looked up afresh for each one.
    environment = Environment.from_os(tmp_path / "cache")
    assert environment.tools.ffmpeg == str(fake_system_ffmpeg / "ffmpeg")  # the system's copy wins by default
    monkeypatch.setenv(BUNDLED_ENV, "1")
    assert Environment.from_os(tmp_path / "cache").tools.ffmpeg == imageio_ffmpeg.get_ffmpeg_exe()

    # Sessions are encoded by imageio-ffmpeg's LAME whatever the system has (see Tools.encoder).
    assert Environment.from_os(tmp_path / "cache").tools.encoder == imageio_ffmpeg.get_ffmpeg_exe()
    monkeypatch.delenv(BUNDLED_ENV)
    assert Environment.from_os(tmp_path / "cache").tools.encoder == imageio_ffmpeg.get_ffmpeg_exe()

    # In a process of its own, with the broken "system" ffmpeg first on PATH: it reads sound files, such as a
    # chime that is an MP3.
    tone = np.round(8000 * np.sin(2 * np.pi * 660 * np.arange(22050) / SAMPLE_RATE)).astype("<i2")
    mp3_chime = subprocess.run(lame_command(imageio_ffmpeg.get_ffmpeg_exe(), 64), input=tone.tobytes(),
                               capture_output=True, check=True).stdout
    (tmp_path / "tone.mp3").write_bytes(mp3_chime)
    routine = tiny_routine(tmp_path, "Stand tall.", chime="tone.mp3")
    env = {**os.environ, "PATH": path}
    env.pop(BUNDLED_ENV, None)
    args = ("build", routine, "--quiet", "--cache-dir", speech_cache)
    broken = run_module(*args, "-o", tmp_path / "system.mp3", cwd=tmp_path, env=env)
    assert broken.returncode == 2 and "fake system ffmpeg" in broken.stderr, broken.stderr
    assert len(broken.stderr.splitlines()) == 1, broken.stderr
    assert not (tmp_path / "system.mp3").exists()
    result = run_module(*args, "-o", tmp_path / "bundled.mp3", cwd=tmp_path, env={**env, BUNDLED_ENV: "1"})
    assert result.returncode == 0, result.stderr
    plan = plan_json(routine, speech_cache)
    samples = audio_probe.decode(tmp_path / "bundled.mp3")
    assert audio_probe.duration(samples) == pytest.approx(plan["duration"], abs=TOLERANCE)
    first_speech = next(e for e in plan["events"] if e["kind"] == "speech")
    assert audio_probe.first_loud(samples, 0, 2) == pytest.approx(first_speech["start"], abs=TOLERANCE)
    chime = next(e for e in plan["events"] if e["kind"] == "chime")
    assert audio_probe.first_loud(samples, chime["start"] - 0.5, chime["end"]) == pytest.approx(chime["start"],
                                                                                                 abs=TOLERANCE)
