"""The command line itself: help for every command, exit codes, `python -m voiceguide`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from voiceguide.cli import cli


def all_commands(group: click.Group, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found = []
    for name, command in group.commands.items():
        found.append(prefix + (name,))
        if isinstance(command, click.Group):
            found.extend(all_commands(command, prefix + (name,)))
    return found


COMMANDS = all_commands(cli)


def test_expected_commands_exist() -> None:
    assert set(COMMANDS) >= {("check",), ("plan",), ("build",), ("voices",), ("cache",), ("cache", "info"), ("cache", "clear")}


@pytest.mark.parametrize("path", COMMANDS, ids=" ".join)
def test_every_command_has_help_with_an_example(path: tuple[str, ...]) -> None:
    for flag in ("-h", "--help"):
        result = CliRunner().invoke(cli, [*path, flag])
        assert result.exit_code == 0, result.output
        assert "Example:" in result.stdout
        assert f"voiceguide {' '.join(path[:1])}" in result.stdout


def test_python_dash_m_runs_the_cli() -> None:
    result = subprocess.run([sys.executable, "-m", "voiceguide", "--version"], capture_output=True, text=True)
    assert result.returncode == 0
    assert result.stdout.startswith("voiceguide, version ")


def test_usage_errors_exit_2_without_traceback() -> None:
    result = CliRunner().invoke(cli, ["plan"])
    assert result.exit_code == 2
    assert "Missing argument 'ROUTINE'" in result.stderr
    result = CliRunner().invoke(cli, ["plan", "x.yaml", "--rate", "5"])
    assert result.exit_code == 2
    assert "--rate" in result.stderr


def test_internal_errors_are_one_line_unless_debug(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    def broken(path, engines):
        raise ZeroDivisionError("boom")

    monkeypatch.setattr("voiceguide.api.load_routine", broken)
    result = CliRunner().invoke(cli, ["check", str(tmp_path / "x.yaml")])
    assert result.exit_code == 1
    assert result.stderr == "voiceguide: internal error: ZeroDivisionError: boom (run with --debug for details)\n"
    result = CliRunner().invoke(cli, ["--debug", "check", str(tmp_path / "x.yaml")])
    assert result.exit_code == 1
    assert "Traceback" in result.stderr


def test_ctrl_c_exits_130_quietly(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    def interrupted(path, engines):
        raise KeyboardInterrupt

    monkeypatch.setattr("voiceguide.api.load_routine", interrupted)
    result = CliRunner().invoke(cli, ["check", str(tmp_path / "x.yaml")])
    assert result.exit_code == 130
    assert result.stderr == "interrupted\n"


def test_the_command_leaves_at_once_with_its_exit_code(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    """``voiceguide`` skips Python's teardown (os._exit) once its output is out, keeping click's exit code."""
    from voiceguide import cli as command

    class Left(Exception):
        pass

    def leave(code: int) -> None:
        raise Left(code)

    monkeypatch.setattr(command.os, "_exit", leave)
    for argv, code in [(["--version"], 0), (["plan", str(tmp_path / "missing.yaml")], 2), (["bogus"], 2)]:
        monkeypatch.setattr(sys, "argv", ["voiceguide", *argv])
        with pytest.raises(Left) as left:
            command.main()
        assert left.value.args == (code,), argv
    out, err = capsys.readouterr()
    assert "voiceguide, version" in out
    assert "missing.yaml: no such file" in err


def test_what_starts_the_speech_engines_loads_without_the_sound_libraries() -> None:
    """A build starts its speech engines before it loads numpy and the other sound libraries, which take a
    fifth of a second and load while the engines speak (see api.plan_session): the modules on the way
    to the first engine must not import them."""
    code = ("import sys, voiceguide.cli, voiceguide.api, voiceguide.speech.clips, voiceguide.sounds, "
            "voiceguide.plan.planner, voiceguide.speech.engines.pyttsx3_engine; "
            "print(' '.join(m for m in ('numpy', 'mutagen', 'PIL', 'miniaudio', 'pydub') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == ""


def test_a_reader_that_goes_away_ends_the_command_quietly() -> None:
    """`voiceguide voices | head -1`: once the reader of the output has gone, the command stops without a
    word and with the status a shell gives such a program (141), not an internal error."""
    process = subprocess.Popen([sys.executable, "-m", "voiceguide", "voices"], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    assert process.stdout is not None and process.stderr is not None
    process.stdout.close()  # gone before the first line is written
    said = process.stderr.read()
    assert process.wait(timeout=60) == 141
    assert said == ""
