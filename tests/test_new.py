"""`voiceguide new` writes a starting routine that builds, and `voiceguide schema` the schema editors read.

Each template is checked as a first-time writer meets it (commented, pointing an editor at the schema, no
warning even with --strict), and built with short holds: its MP3, decoded, lasts what its plan says, and the
meditation's interval bells sound where the plan puts them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
import yaml
from click.testing import CliRunner, Result

from voiceguide import templates
from voiceguide.cli import cli
from voiceguide.routine.schema import MODELINE, PROFILE_ID, ROUTINE_ID, ROUTINE_SCHEMA_FILE, routine_schema

NAMES = ("stretch", "breathing", "meditation", "intervals")


def run(*args: str) -> Result:
    try:
        runner = CliRunner(mix_stderr=False)  # type: ignore[call-arg]
    except TypeError:
        runner = CliRunner()
    return runner.invoke(cli, list(args), prog_name="voiceguide")


def leftovers(folder: Path) -> list[str]:
    return sorted(path.name for path in folder.iterdir() if path.name.endswith(".part"))


# --- new --------------------------------------------------------------------------------------


def test_list_names_the_templates_with_the_default_first() -> None:
    result = run("new", "--list")
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert [line.split()[0] for line in lines] == list(NAMES)
    assert lines[0].endswith("(the default)")
    assert "interval bells" in lines[2]


def test_without_a_file_the_stretch_template_is_printed() -> None:
    result = run("new")
    assert result.exit_code == 0
    assert result.stdout == templates.template_text("stretch")
    assert result.stdout.splitlines()[0] == MODELINE + ROUTINE_SCHEMA_FILE
    assert "sides: [left, right]" in result.stdout


def test_new_writes_the_routine_and_the_schema_beside_it(tmp_path: Path) -> None:
    target = tmp_path / "routines" / "mine.yaml"
    result = run("new", "breathing", "-o", str(target))
    assert result.exit_code == 0, result.stderr
    assert result.stdout == (f"wrote {target} from the breathing template, and {ROUTINE_SCHEMA_FILE} beside it "
                             f"for editors\nnext: voiceguide build {target}\n")
    assert target.read_text(encoding="utf-8") == templates.template_text("breathing")
    schema = json.loads((target.parent / ROUTINE_SCHEMA_FILE).read_text(encoding="utf-8"))
    assert schema == routine_schema()
    assert leftovers(target.parent) == []
    assert run("check", str(target)).exit_code == 0


def test_new_refuses_to_replace_a_file_without_force(tmp_path: Path) -> None:
    target = tmp_path / "mine.yaml"
    target.write_text("title: My own\n", encoding="utf-8")
    result = run("new", "-o", str(target))
    assert result.exit_code == 2
    assert result.stderr == f"{target}: already exists; add --force to replace it\n"
    assert result.stdout == ""
    assert target.read_text(encoding="utf-8") == "title: My own\n"
    assert not (tmp_path / ROUTINE_SCHEMA_FILE).exists()

    result = run("new", "intervals", "-o", str(target), "--force")
    assert result.exit_code == 0, result.stderr
    assert target.read_text(encoding="utf-8") == templates.template_text("intervals")
    assert leftovers(tmp_path) == []


def test_a_name_that_appears_while_writing_is_not_replaced(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "mine.yaml"
    link = os.link

    def someone_else_first(source: str, destination: str) -> None:
        if Path(destination) == target:
            target.write_text("theirs\n", encoding="utf-8")
        link(source, destination)

    monkeypatch.setattr(os, "link", someone_else_first)
    result = run("new", "-o", str(target))
    assert result.exit_code == 2
    assert result.stderr == f"{target}: already exists; add --force to replace it\n"
    assert target.read_text(encoding="utf-8") == "theirs\n"
    assert leftovers(tmp_path) == []


def test_without_hard_links_the_file_is_moved_into_place(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(source: str, destination: str) -> None:
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(os, "link", refuse)
    target = tmp_path / "mine.yaml"
    assert run("new", "meditation", "-o", str(target)).exit_code == 0
    assert target.read_text(encoding="utf-8") == templates.template_text("meditation")
    assert (tmp_path / ROUTINE_SCHEMA_FILE).is_file()
    assert leftovers(tmp_path) == []


def test_a_schema_file_beside_is_refreshed_if_it_is_ours_and_kept_if_not(tmp_path: Path) -> None:
    schema = tmp_path / ROUTINE_SCHEMA_FILE
    schema.write_text(json.dumps({"$id": ROUTINE_ID, "title": "an older voiceguide's"}), encoding="utf-8")
    result = run("new", "-o", str(tmp_path / "a.yaml"))
    assert result.exit_code == 0
    assert f"{ROUTINE_SCHEMA_FILE} beside it" in result.stdout
    assert json.loads(schema.read_text(encoding="utf-8")) == routine_schema()

    result = run("new", "-o", str(tmp_path / "b.yaml"))
    assert result.stdout.splitlines()[0] == f"wrote {tmp_path / 'b.yaml'} from the stretch template"

    schema.write_text('{"$id": "https://example.org/my-own.json"}', encoding="utf-8")
    assert run("new", "-o", str(tmp_path / "c.yaml")).exit_code == 0
    assert schema.read_text(encoding="utf-8") == '{"$id": "https://example.org/my-own.json"}'


@pytest.mark.parametrize(("args", "message"), [
    (["new", "breathin"], "unknown template 'breathin'; did you mean 'breathing'? "
                          "(templates: stretch, breathing, meditation, intervals)\n"),
    (["new", "yoga"], "unknown template 'yoga' (templates: stretch, breathing, meditation, intervals)\n"),
])
def test_an_unknown_template_is_one_line(args: list[str], message: str) -> None:
    result = run(*args)
    assert (result.exit_code, result.stderr, result.stdout) == (2, message, "")


def test_a_folder_as_the_file_is_one_line(tmp_path: Path) -> None:
    result = run("new", "-o", str(tmp_path))
    assert result.exit_code == 2
    assert result.stderr == f"{tmp_path}: is a folder; give a file name, such as {tmp_path / 'stretch.yaml'}\n"


# --- the templates, as a first-time writer meets them ---------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_each_template_is_commented_points_at_the_schema_and_is_valid(name: str, tmp_path: Path) -> None:
    text = templates.template_text(name)
    lines = text.splitlines()
    assert lines[0] == MODELINE + ROUTINE_SCHEMA_FILE
    # Notes for a first reader: how to check, plan and build, and a word on most settings.
    assert "voiceguide check" in text and "voiceguide build" in text
    settings = [line for line in lines if line.strip() and not line.lstrip().startswith("#")]
    explained = [line for line in settings if " # " in line]
    assert len(explained) >= len(settings) / 3, name
    jsonschema.validate(yaml.safe_load(text), routine_schema())
    path = tmp_path / f"{name}.yaml"
    path.write_text(text, encoding="utf-8")
    result = run("plan", str(path), "--strict", "--cache-dir", str(tmp_path / "cache"), "--json")
    assert result.exit_code == 0, result.stderr
    assert result.stderr == ""


@pytest.mark.parametrize("name", NAMES)
def test_each_template_says_what_it_promises(name: str) -> None:
    routine = yaml.safe_load(templates.template_text(name))
    steps = routine["steps"]
    if name == "stretch":
        assert all(step["sides"] == ["left", "right"] for step in steps)
    elif name == "breathing":
        assert steps[0]["rounds"] > 1 and steps[0]["steps"]
    elif name == "meditation":
        assert steps[0]["bells"]["every"] and routine["closing"]["strikes"] > 1
    else:
        assert steps[0]["strict"] is True and steps[0]["chapters"] == "rounds"


# Short holds, so that each build takes seconds; the meditation keeps two of its interval bells.
BUILD_OPTIONS = {
    "stretch": ["--hold-scale", "0.1"],
    "breathing": ["--hold-scale", "0.5"],
    "meditation": ["--hold", "sit=6m10s"],
    "intervals": ["--hold-scale", "0.2"],
}


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_each_template_builds_an_mp3_as_long_as_its_plan(name: str, tmp_path: Path, speech_cache: Path) -> None:
    from audio_probe import decode, duration, first_loud

    routine = tmp_path / f"{name}.yaml"
    assert run("new", name, "-o", str(routine)).exit_code == 0
    options = [*BUILD_OPTIONS[name], "--cache-dir", str(speech_cache)]
    planned = run("plan", str(routine), "--json", *options)
    assert planned.exit_code == 0, planned.stderr
    plan = json.loads(planned.stdout)
    output = tmp_path / f"{name}.mp3"
    built = run("build", str(routine), "-o", str(output), "-q", *options)
    assert built.exit_code == 0, built.stderr
    audio = decode(output)
    assert duration(audio) == pytest.approx(plan["duration"], abs=0.03)
    if name == "meditation":
        bells = [event for event in plan["events"] if event["kind"] == "cue" and event.get("cue") == "bell"]
        assert len(bells) == 2
        for bell in bells:
            heard = first_loud(audio, bell["start"] - 0.1, bell["start"] + 0.5)
            assert heard is not None and abs(heard - bell["start"]) < 0.03


# --- schema -------------------------------------------------------------------------------------


def test_schema_prints_the_routine_schema_and_with_profile_the_profile_schema() -> None:
    routine = run("schema")
    assert routine.exit_code == 0
    assert json.loads(routine.stdout)["$id"] == ROUTINE_ID
    profile = run("schema", "--profile")
    assert json.loads(profile.stdout)["$id"] == PROFILE_ID


def test_schema_writes_its_file_atomically_and_replaces_it(tmp_path: Path) -> None:
    target = tmp_path / "routine.schema.json"
    target.write_text("old", encoding="utf-8")
    result = run("schema", "-o", str(target))
    assert (result.exit_code, result.stdout) == (0, f"wrote {target}\n")
    assert json.loads(target.read_text(encoding="utf-8")) == routine_schema()
    assert leftovers(tmp_path) == []
    profile = tmp_path / "profiles" / "profile.schema.json"
    assert run("schema", "--profile", "-o", str(profile)).exit_code == 0
    assert json.loads(profile.read_text(encoding="utf-8"))["$id"] == PROFILE_ID


def test_the_program_needs_no_jsonschema(tmp_path: Path) -> None:
    """jsonschema is for the tests: `schema` and `new` run where it cannot be imported."""
    script = (
        "import sys; sys.modules['jsonschema'] = None\n"
        "from click.testing import CliRunner\n"
        "from voiceguide.cli import cli\n"
        f"for args in (['schema'], ['new', '-o', {str(tmp_path / 'a.yaml')!r}], ['check', {str(tmp_path / 'a.yaml')!r}]):\n"
        "    result = CliRunner().invoke(cli, args)\n"
        "    assert result.exit_code == 0, (args, result.output, result.exception)\n"
    )
    completed = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert completed.returncode == 0, completed.stderr


def test_the_readme_shows_what_new_prints() -> None:
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    listed = run("new", "--list").stdout
    assert f"```\n$ voiceguide new --list\n{listed}```" in readme
    assert f"```yaml\n{MODELINE}{ROUTINE_SCHEMA_FILE}\n" in readme
    for name in NAMES:
        assert templates.summary(name) in readme
