"""Fuzzing: the sample routines, broken in a few hundred ways, never crash, hang or run away.

Each case is a routine from scripts/ with one to three mutations: bytes flipped, lines deleted or duplicated,
values swapped between keys, control characters and odd Unicode put in, numbers made huge, values nested deep,
strings made very long, and settings that multiply a session's events put in. The seed is fixed, so a failure
is found again by its case id. `voiceguide check` runs on each, in-process; a case it passes is planned too,
with an engine that writes a tone as long as the line would take (the real voices are tested elsewhere).

Whatever the case, the answer is exit code 0 or 2, never "internal error" or a traceback, within a time
bound; with 2, every line on stderr is one problem, starting with the file's name (FILE:LINE:COL: or FILE:).
"""

from __future__ import annotations

import random
import re
import time
import wave
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from click.testing import Result
from test_bad_input import run

from voiceguide.speech import clips
from voiceguide.speech.engines import Engine, VoiceInfo
from voiceguide.units import SAMPLE_RATE

ROOT = Path(__file__).resolve().parent.parent
SCRIPTS = sorted((ROOT / "scripts").glob("*.yaml"))
SEED = 20_251_205
CASES = 400
# What counts as no answer (a hang, a run away): check answers within a second, as benchmarks/hostile.py measures;
# these bounds leave room for a machine busy with other work.
CHECK_SECONDS = 10.0
PLAN_SECONDS = 30.0
PLANS = 50  # the first cases that pass check are planned too: enough shapes, in a few seconds

Mutation = Callable[[random.Random, bytes], bytes]

# Values that have broken programs like this one: YAML's odd types, templates, escapes, extremes.
ODD_VALUES = [
    "~", "[]", "{}", "''", "*nowhere", "&a x", "!!binary aGk=", "!!python/object:os.system x", "!!set {a, b}",
    "!!timestamp 2001-12-14", "!!float .nan", ".inf", "-.inf", "yes", "no", "on", "0", "-1", "1e-9", "1ms", "12h",
    "43200s", "11:59:59", "0:00", "1:2:3:4", "\"{}\"", "\"{{}}\"", "\"{side}\"", "\"{0}\"", "\"{a.b}\"",
    "\"{x!r}\"", "\"{hold:>10}\"", "'...'", "\"\\0\"", "\"\\ud800\"", "\"\\e[31m\"", "\"a\\nb\"", "\"\\u200b\"",
    "\"\\u202e\"", "'\"'", "<<: *a", "[left, left]", "{every: 1ms}", "{at: [1ms], every: 1ms}", "bell.wav",
    "../../../etc/passwd", "/dev/zero", "{engine: piper}", "{engine: nope}", "{rate: 1e400}", "rounds", "-0",
    "2001-02-30", "!!bool maybe", "!!int 0x", "!!str [a]", "!!map [a]", "? [a]", "!!omap [a: 1]",
]
INSERTED_CHARACTERS = ["\u200b", "\u202e", "\ufeff", "\U0001f600", "日本", "\u0301", "\u2028", "\x85", "\u00a0",
                       "\\ud800", "\\0", "\t", "\r", "'", '"', "{", "}", "&", "*", "!", "%", "@", "`", "|", ">"]
SETTINGS = [
    "bells: {every: 1ms}", "remaining: {every: 1ms}", "remaining: {at: [1s, 2s, 3s], every: 10ms}", "countdown: 10",
    "sides: [a, b, c, d, e, f, g, h]", "repeat: 999999", "rounds: 99999", "rest-between: 1ms", "halfway: true",
    "cues: [{at: 1ms, say: Now.}, {at: -1ms, sound: wood}]", "switch: {say: '{side}', gap: 0}", "next: true",
    "last-round: {sound: gong}", "strict: true", "chapters: rounds", "lead-in: 12h", "closing: {strikes: 10}",
    "background: rain", "phrases: {halfway: '--'}", "vars: {x: '" + "y" * 2000 + "'}", "say: '{x}'",
    "steps: [{title: a, steps: [{title: b, steps: [{title: c, hold: 1ms}]}]}]", "hold: 1ms", "hold: 12h",
]
KEY_VALUE = re.compile(rb"^(\s*(?:- )?[\w-]+: ?)(\S.*)$")


def value_lines(lines: list[bytes]) -> list[int]:
    return [index for index, line in enumerate(lines) if KEY_VALUE.match(line)]


def with_value(rng: random.Random, data: bytes, value: bytes) -> bytes:
    """``data`` with one `key: value` line's value replaced by ``value``."""
    lines = data.split(b"\n")
    found = value_lines(lines)
    if not found:
        return data + b"\n" + value
    index = rng.choice(found)
    match = KEY_VALUE.match(lines[index])
    assert match
    lines[index] = match.group(1) + value
    return b"\n".join(lines)


def flip_bytes(rng: random.Random, data: bytes) -> bytes:
    mutable = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        mutable[rng.randrange(len(mutable))] = rng.randrange(256)
    return bytes(mutable)


def delete_line(rng: random.Random, data: bytes) -> bytes:
    lines = data.split(b"\n")
    del lines[rng.randrange(len(lines))]
    return b"\n".join(lines)


def duplicate_lines(rng: random.Random, data: bytes) -> bytes:
    lines = data.split(b"\n")
    start = rng.randrange(len(lines))
    block = lines[start : start + rng.randint(1, 6)]
    at = rng.randrange(len(lines) + 1)
    return b"\n".join(lines[:at] + block + lines[at:])


def swap_values(rng: random.Random, data: bytes) -> bytes:
    lines = data.split(b"\n")
    found = value_lines(lines)
    if len(found) < 2:
        return data
    first, second = rng.sample(found, 2)
    a, b = KEY_VALUE.match(lines[first]), KEY_VALUE.match(lines[second])
    assert a and b
    lines[first], lines[second] = a.group(1) + b.group(2), b.group(1) + a.group(2)
    return b"\n".join(lines)


def insert_control(rng: random.Random, data: bytes) -> bytes:
    char = rng.choice([*range(0, 32), 127]).to_bytes(1, "big") if rng.random() < 0.8 else "\u009b".encode()
    at = rng.randrange(len(data) + 1)
    return data[:at] + char + data[at:]


def insert_unicode(rng: random.Random, data: bytes) -> bytes:
    at = rng.randrange(len(data) + 1)
    return data[:at] + rng.choice(INSERTED_CHARACTERS).encode() + data[at:]


def huge_number(rng: random.Random, data: bytes) -> bytes:
    digits = rng.choice([19, 20, 21, 310, 4300, 5000])
    value = rng.choice(["9" * digits, "-" + "9" * digits, "1e400", "-1e400", "0x" + "f" * digits,
                        "1:" * min(digits, 300) + "1", str(2**64), "9" * digits + "s", "9" * digits + "." + "9" * 5])
    return with_value(rng, data, value.encode())


def deep_nesting(rng: random.Random, data: bytes) -> bytes:
    depth = rng.choice([12, 50, 200, 2000])
    value = rng.choice([
        "[" * depth + "]" * depth,
        "{a: " * depth + "1" + "}" * depth,
        "".join(f"[{{title: g{i}, rounds: 2, steps: " for i in range(depth)) + "[{title: x, hold: 1s}]" + "}]" * depth,
    ])
    return with_value(rng, data, value.encode())


def long_string(rng: random.Random, data: bytes) -> bytes:
    length = rng.choice([1001, 10_000, 200_000, 2_000_000])
    value = rng.choice(["x" * length, ("Breathe in slowly. " * (length // 19 + 1))[:length], "日" * (length // 3)])
    return with_value(rng, data, ("'" + value + "'").encode())


def odd_value(rng: random.Random, data: bytes) -> bytes:
    return with_value(rng, data, rng.choice(ODD_VALUES).encode())


def insert_setting(rng: random.Random, data: bytes) -> bytes:
    """A setting put in after a `key: value` line, at its indentation (so it lands on a step, a group or the
    top of the routine)."""
    lines = data.split(b"\n")
    found = value_lines(lines)
    if not found:
        return data
    index = rng.choice(found)
    line = lines[index]
    indent = len(line) - len(line.lstrip(b" -"))
    lines.insert(index + 1, b" " * indent + rng.choice(SETTINGS).encode())
    return b"\n".join(lines)


def truncate(rng: random.Random, data: bytes) -> bytes:
    return data[: rng.randrange(len(data) + 1)]


MUTATIONS: list[Mutation] = [flip_bytes, delete_line, duplicate_lines, swap_values, insert_control, insert_unicode,
                             huge_number, deep_nesting, long_string, odd_value, insert_setting, insert_setting,
                             truncate]


def make_case(number: int) -> tuple[str, bytes, list[str]]:
    """Case ``number``: its id, the routine's bytes and the mutations made; each case has a seed of its own, so
    that it is made again alone, and only the case at hand is kept in memory."""
    rng = random.Random(SEED * 1000 + number)
    script = SCRIPTS[number % len(SCRIPTS)]
    data = script.read_bytes()
    names = []
    for _ in range(rng.choice([1, 1, 2, 3])):
        mutation = rng.choice(MUTATIONS)
        data = mutation(rng, data)
        names.append(mutation.__name__)
    return f"{number}-{script.stem}-{'+'.join(names)}", data, names


CASE_NAMES = [make_case(number)[0] for number in range(CASES)]


class ToneEngine(Engine):
    """A voice that writes a tone as long as the line would take to say: planning without speaking."""

    name = "tone"

    def version(self) -> str:
        return "1"

    def voices(self) -> list[VoiceInfo]:
        return [VoiceInfo("tone", "Tone", ("en",))]

    def default_voice(self) -> str:
        return "tone"

    def resolve_voice(self, wanted: str | None, base: Path | None = None) -> str:
        return "tone"

    def synthesize(self, text: str, voice: str, rate: int, volume: float, path: Path, timeout: float) -> None:
        seconds = clips.spoken_words(text) * 60 / (rate or 160)
        t = np.arange(int(SAMPLE_RATE * seconds)) / SAMPLE_RATE
        with wave.open(str(path), "wb") as out:
            out.setnchannels(1)
            out.setsampwidth(2)
            out.setframerate(SAMPLE_RATE)
            out.writeframes((np.sin(2 * np.pi * 220 * t) * 12000).astype("<i2").tobytes())


@pytest.fixture(scope="module")
def planned() -> list[str]:
    """The cases planned so far: only the first PLANS that pass check are."""
    return []


@pytest.fixture(scope="module")
def fuzz_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz-cache")


def assert_answered(result: Result, path: Path, command: str, seconds: float, limit: float) -> None:
    """Exit 0 or 2, in time, with no traceback and only whole lines that name the file."""
    shown = f"{command} on {path.name}: exit {result.exit_code}, stderr {result.stderr[:500]!r}"
    assert seconds < limit, f"{shown}: took {seconds:.1f} s"
    assert result.exit_code in (0, 2), shown
    assert result.exception is None or isinstance(result.exception, SystemExit), f"{shown}: {result.exception!r}"
    assert "internal error" not in result.stderr and "Traceback" not in result.stderr + result.stdout, shown
    named = re.compile(rf"{re.escape(str(path))}(:\d+:\d+)?: \S")
    for line in result.stderr.splitlines():
        assert named.match(line), f"{shown}: a line that does not name the file: {line[:300]!r}"
    if result.exit_code == 2:
        assert result.stderr and result.stdout == "", shown


@pytest.mark.parametrize("case", range(CASES), ids=CASE_NAMES)
def test_a_broken_routine_is_answered(case: int, tmp_path: Path, fuzz_cache: Path, planned: list[str],
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    name, data, _ = make_case(case)
    path = tmp_path / "routine.yaml"
    path.write_bytes(data)
    began = time.monotonic()
    result = run("check", str(path))
    assert_answered(result, path, "check", time.monotonic() - began, CHECK_SECONDS)
    if result.exit_code == 0:
        assert result.stdout.startswith(f"{path}: ok ("), result.stdout
    if result.exit_code != 0 or len(planned) >= PLANS:
        return
    planned.append(name)
    monkeypatch.setattr(clips, "create_engine", lambda engine, environment: ToneEngine(environment))
    began = time.monotonic()
    result = run("plan", str(path), "--quiet", "--cache-dir", str(fuzz_cache))
    assert_answered(result, path, "plan", time.monotonic() - began, PLAN_SECONDS)


def test_the_cases_are_varied() -> None:
    """The fuzzer's own check: every mutation is used many times, on every script."""
    cases = [make_case(number) for number in range(CASES)]
    uses = {mutation.__name__: 0 for mutation in MUTATIONS}
    for _, _, names in cases:
        for name in names:
            uses[name] += 1
    assert min(uses.values()) >= 10, uses
    assert {name.split("-", 1)[1].rsplit("-", 1)[0] for name, _, _ in cases} == {script.stem for script in SCRIPTS}
