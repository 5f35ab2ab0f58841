"""Bad input: one clear line per problem as FILE:LINE:COL, exit code 2, no traceback.

Golden files: tests/bad/NAME.yaml is a routine checked with `voiceguide check`;
tests/bad/profiles/NAME.yaml is a profile given to `voiceguide plan --profile`
with the valid routine tests/good/holds.yaml. Beside each, NAME.expected holds
the exact stderr, with ``{dir}`` standing for the folder the file is in.

Cases that cannot be a checked-in file (directories, binary data, generated
alias bombs, huge files) and the command-line options are explicit tests below.

Cases marked xfail (none at present) are messages we want changed; their
expected text is the proposed fix, so they flip to XPASS (and fail, being
strict) once the product is fixed, and the mark should then be removed.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from voiceguide.cli import cli
from voiceguide.yamlfile import MAX_BYTES

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent
BAD = TESTS / "bad"
BAD_PROFILES = BAD / "profiles"
GOOD = TESTS / "good"
HOLDS = GOOD / "holds.yaml"  # ids with a hold: left, right; 'shrug' has none

ROUTINE_CASES = sorted(BAD.glob("*.yaml"))
PROFILE_CASES = sorted(BAD_PROFILES.glob("*.yaml"))

# Problems found while writing these tests; the .expected file holds the proposed message.
ROUTINE_XFAIL: dict[str, str] = {}
PROFILE_XFAIL: dict[str, str] = {}


def runner() -> CliRunner:
    """A runner that keeps stderr apart from stdout (click < 8.2 needs mix_stderr=False)."""
    try:
        return CliRunner(mix_stderr=False)  # type: ignore[call-arg]
    except TypeError:
        return CliRunner()


def run(*args: str) -> Result:
    return runner().invoke(cli, list(args), prog_name="voiceguide")


def plan(tmp_path: Path, *args: str, routine: Path = HOLDS) -> Result:
    """`voiceguide plan` with a private cache, so no test touches the user's cache."""
    return run("plan", str(routine), "--cache-dir", str(tmp_path / "cache"), *args)


def assert_bad_input(result: Result, expected: str) -> None:
    """Exit code 2, exactly the expected stderr, nothing on stdout, no traceback."""
    assert "Traceback" not in result.stdout + result.stderr
    # CliRunner stores an exception that escaped the command; only the exit itself may.
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert result.stderr == expected
    assert result.stdout == ""
    assert result.exit_code == 2


def expected_for(case: Path) -> str:
    return case.with_suffix(".expected").read_text(encoding="utf-8").replace("{dir}", str(case.parent))


def cases(paths: list[Path], xfail: dict[str, str]) -> list:
    params = []
    for path in paths:
        marks = [pytest.mark.xfail(strict=True, reason=xfail[path.stem])] if path.stem in xfail else []
        params.append(pytest.param(path, id=path.stem, marks=marks))
    return params


def test_every_case_has_an_expected_file() -> None:
    for folder in (BAD, BAD_PROFILES):
        cases = {p.stem for p in folder.glob("*.yaml")}
        expected = {p.stem for p in folder.glob("*.expected")}
        assert cases == expected, folder
    assert set(ROUTINE_XFAIL) <= {p.stem for p in ROUTINE_CASES}
    assert set(PROFILE_XFAIL) <= {p.stem for p in PROFILE_CASES}


@pytest.mark.parametrize("case", cases(ROUTINE_CASES, ROUTINE_XFAIL))
def test_bad_routine(case: Path) -> None:
    assert_bad_input(run("check", str(case)), expected_for(case))


@pytest.mark.parametrize("case", cases(PROFILE_CASES, PROFILE_XFAIL))
def test_bad_profile(tmp_path: Path, case: Path) -> None:
    assert_bad_input(plan(tmp_path, "--profile", str(case)), expected_for(case))


@pytest.mark.parametrize("routine", sorted(ROOT.glob("scripts/*.yaml")) + sorted(GOOD.glob("*.yaml")),
                         ids=lambda p: p.name)
def test_valid_routines_pass_check(routine: Path) -> None:
    result = run("check", str(routine))
    assert result.exit_code == 0, result.stderr
    assert result.stderr == ""
    assert result.stdout.startswith(f"{routine}: ok (")


def test_check_reports_every_file_and_exits_2_if_any_is_bad() -> None:
    good = ROOT / "scripts" / "box-breathing.yaml"
    result = run("check", str(BAD / "hold-zero.yaml"), str(good), str(BAD / "missing-title.yaml"))
    assert result.exit_code == 2
    assert result.stdout == f"{good}: ok (Box breathing: 4 steps)\n"
    assert result.stderr == expected_for(BAD / "hold-zero.yaml") + expected_for(BAD / "missing-title.yaml")


# --- files that cannot be checked in -------------------------------------------------------


def test_directory(tmp_path: Path) -> None:
    folder = tmp_path / "routines.yaml"
    folder.mkdir()
    assert_bad_input(run("check", str(folder)), f"{folder}: is a directory, not a routine file\n")


def test_missing_file(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.yaml"
    assert_bad_input(run("check", str(missing)), f"{missing}: no such file\n")


def test_unreadable_file(tmp_path: Path) -> None:
    path = tmp_path / "locked.yaml"
    path.write_text("title: T\nsteps:\n  - title: A\n")
    path.chmod(0)
    try:
        try:
            path.read_bytes()
        except PermissionError:
            assert_bad_input(run("check", str(path)), f"{path}: permission denied\n")
        else:
            pytest.skip("this user (root?) can read a mode-000 file")
    finally:
        path.chmod(0o644)


def test_binary_file(tmp_path: Path) -> None:
    path = tmp_path / "song.yaml"
    path.write_bytes(b"ID3\x04\x00\x00\x00\x00\x00\x00title: T\n")
    assert_bad_input(run("check", str(path)), f"{path}: not a text file (binary data at byte 4)\n")


def test_invalid_utf8_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes("title: T\nsteps:\n  - title: café\n    hold: 1s\n".encode("latin-1"))
    result = run("check", str(path))
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1 and result.stderr.startswith(str(path))
    assert "Traceback" not in result.stderr


def test_invalid_utf8(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes("title: T\nsteps:\n  - title: café\n    hold: 1s\n".encode("latin-1"))
    assert_bad_input(run("check", str(path)), f"{path}:3:15: not UTF-8 text (byte 0xe9); save the file as UTF-8\n")


def test_utf8_byte_order_mark_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "bom.yaml"
    path.write_bytes(b"\xef\xbb\xbftitle: T\nsteps: 5\n")
    # The BOM is skipped: lines and columns count as the person sees them.
    assert_bad_input(run("check", str(path)), f"{path}:2:8: 'steps' must be a list of at least one step, got 5\n")


def test_alias_bomb_is_refused_quickly(tmp_path: Path) -> None:
    # "Billion laughs": nine levels of nine aliases each expand to 9**9 values.
    lines = ["title: Laughs", "a: &a [x, x, x, x, x, x, x, x, x]"]
    for before, name in zip("abcdefgh", "bcdefghi"):
        lines.append(f"{name}: &{name} [{', '.join([f'*{before}'] * 9)}]")
    lines.append("steps: [*i]")
    path = tmp_path / "bomb.yaml"
    path.write_text("\n".join(lines) + "\n")
    started = time.monotonic()
    result = run("check", str(path))
    assert time.monotonic() - started < 5
    assert_bad_input(result, f"{path}:2:8: the file expands to more than 100000 values (YAML aliases?); refusing to read it\n")


def test_huge_file(tmp_path: Path) -> None:
    path = tmp_path / "huge.yaml"
    path.write_text("title: Big\n# " + "x" * 1_000_000 + "\nsteps:\n  - title: A\n    hold: 1s\n")
    size = path.stat().st_size
    assert_bad_input(run("check", str(path)),
                     f"{path}: too large for a routine file ({size} bytes; the limit is {MAX_BYTES})\n")


def test_deep_nesting(tmp_path: Path) -> None:
    path = tmp_path / "deep.yaml"
    path.write_text("title: Deep\nsteps: " + "[" * 5000 + "]" * 5000 + "\n")
    assert_bad_input(run("check", str(path)), f"{path}:2:48: invalid YAML: values nested more than 40 deep\n")


def test_merge_keys_can_be_overridden(tmp_path: Path) -> None:
    path = tmp_path / "merge.yaml"
    path.write_text("title: T\nsteps:\n  - &base\n    title: A\n    hold: 20s\n  - <<: *base\n    title: B\n")
    result = run("check", str(path))
    assert result.stderr == ""
    assert result.exit_code == 0


# --- the command line: --hold, --hold-scale, --profile --------------------------------------

USAGE = "Usage: voiceguide plan [OPTIONS] ROUTINE\nTry 'voiceguide plan --help' for help.\n\n"


def test_hold_unknown_id_lists_valid_ids(tmp_path: Path) -> None:
    assert_bad_input(plan(tmp_path, "--hold", "neck=30s"),
                     "--hold neck: no step with id 'neck' has a hold (valid ids: left, right)\n")


def test_hold_on_a_step_without_hold(tmp_path: Path) -> None:
    assert_bad_input(plan(tmp_path, "--hold", "shrug=30s"),
                     "--hold shrug: no step with id 'shrug' has a hold (valid ids: left, right)\n")


def test_hold_unknown_ids_are_all_reported(tmp_path: Path) -> None:
    assert_bad_input(plan(tmp_path, "--hold", "neck=30s", "--hold", "left=1m", "--hold", "lft=1m"),
                     "--hold neck: no step with id 'neck' has a hold (valid ids: left, right)\n"
                     "--hold lft: no step with id 'lft' has a hold; did you mean 'left'? (valid ids: left, right)\n")


def test_hold_on_routine_without_holds(tmp_path: Path) -> None:
    routine = tmp_path / "talk.yaml"
    routine.write_text("title: Talk\nsteps:\n  - title: Hello\n    say: Hello.\n")
    assert_bad_input(plan(tmp_path, "--hold", "hello=5s", routine=routine),
                     "--hold hello: no step with id 'hello' has a hold; this routine has no holds\n")


def test_command_line_hold_wins_over_profile(tmp_path: Path) -> None:
    # The profile's 'neck' (skipped with a note on its own) is replaced by --hold neck, which is meant for this
    # routine: refused, once, as the option.
    profile = tmp_path / "me.yaml"
    profile.write_text("holds:\n  left: 30s\n  neck: 30s\n")
    assert_bad_input(plan(tmp_path, "--hold", "neck=30s", "--profile", str(profile)),
                     "--hold neck: no step with id 'neck' has a hold (valid ids: left, right)\n")


def test_routine_problems_come_before_hold_ids(tmp_path: Path) -> None:
    case = BAD / "hold-zero.yaml"
    assert_bad_input(plan(tmp_path, "--hold", "neck=30s", routine=case), expected_for(case))


@pytest.mark.parametrize("option, message", [
    ("foo", "expected ID=DURATION such as tennis-balls=90s, got 'foo'"),
    ("foo=abc", "expected a duration such as 45, 45s, 1m30s, 1:30, 2 min, 1.5m, 90 seconds or 1h, got 'abc'"),
    ("=30s", "expected ID=DURATION such as tennis-balls=90s, got '=30s'"),
    ("left=", "expected ID=DURATION such as tennis-balls=90s, got 'left='"),
    ("left=0", "a hold must be longer than zero, got 'left=0'"),
    ("left=-3s", "a duration cannot be negative, got '-3s'"),
    ("left=30 sek", "unknown unit 'sek' in '30 sek'; use h, m, s or ms"),
])
def test_hold_malformed(tmp_path: Path, option: str, message: str) -> None:
    assert_bad_input(plan(tmp_path, "--hold", option), f"{USAGE}Error: Invalid value for '--hold': {message}\n")


def test_hold_huge(tmp_path: Path) -> None:
    huge = "9" * 310 + "h"
    assert_bad_input(plan(tmp_path, "--hold", f"left={huge}"),
                     f"{USAGE}Error: Invalid value for '--hold': too long for a duration, got '{huge}'\n")


@pytest.mark.parametrize("value, message", [
    ("0", "must be above 0 and at most 100, got 0"),
    ("-1", "must be above 0 and at most 100, got -1"),
    ("101", "must be above 0 and at most 100, got 101"),
    ("nan", "must be above 0 and at most 100, got nan"),
    ("abc", "expected a number such as 1.5, got 'abc'"),
])
def test_hold_scale_malformed(tmp_path: Path, value: str, message: str) -> None:
    assert_bad_input(plan(tmp_path, "--hold-scale", value), f"{USAGE}Error: Invalid value for '--hold-scale': {message}\n")


def test_profile_missing(tmp_path: Path) -> None:
    missing = tmp_path / "me.yaml"
    assert_bad_input(plan(tmp_path, "--profile", str(missing)), f"{missing}: no such file\n")


def test_profile_is_a_directory(tmp_path: Path) -> None:
    assert_bad_input(plan(tmp_path, "--profile", str(tmp_path)),
                     f"{USAGE}Error: Invalid value for '--profile': File '{tmp_path}' is a directory.\n")


def test_profile_binary(tmp_path: Path) -> None:
    path = tmp_path / "me.yaml"
    path.write_bytes(b"holds:\x00\n")
    assert_bad_input(plan(tmp_path, "--profile", str(path)), f"{path}: not a text file (binary data at byte 6)\n")


def test_profile_problems_come_before_routine_problems(tmp_path: Path) -> None:
    profile = BAD_PROFILES / "hold-scale-zero.yaml"
    assert_bad_input(plan(tmp_path, "--profile", str(profile), routine=BAD / "hold-zero.yaml"), expected_for(profile))
