"""The layout shows the data flow: each stage imports only the stages before it, no module is a big room, and the
MP3 writer loads none of the routine parser, the YAML reader or the engines."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "voiceguide"
# The stages in the order data flows through them; a module may import its own stage and those before it.
# Shared vocabulary and services sit at the bottom; serve reads MP3s, not routines, and stands apart.
BOTTOM = ("units", "errors", "durations", "yamlfile", "environment", "cache", "tools", "audio", "loudness")
FLOW = ("routine", "importing", "overrides", "plan", "speech", "sounds", "render", "mp3", "export", "templates", "batch", "api", "cli")
APART = ("serve",)
MAX_LINES = 500


def stage(module: str) -> str:
    """The stage a module of the package belongs to: ``voiceguide.plan.timeline`` → ``plan``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def rank(name: str) -> int:
    if name in ("", "__main__") or name in BOTTOM:
        return -1 if name in BOTTOM else len(FLOW) + 1  # the package's front and `python -m` sit on top
    return FLOW.index(name)


def modules() -> dict[str, Path]:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def imports(path: Path, module: str) -> set[str]:
    """Every module of the package that ``path`` imports, wherever in the file (functions too)."""
    found = set()
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names if f"{base}.{alias.name}" in modules())
    return {name for name in found if name == "voiceguide" or name.startswith("voiceguide.")}


def test_every_stage_is_in_the_flow() -> None:
    named = set(BOTTOM + FLOW + APART + ("", "__main__"))
    assert {stage(module) for module in modules()} <= named


@pytest.mark.parametrize("module", sorted(modules()))
def test_no_import_runs_against_the_flow(module: str) -> None:
    path = modules()[module]
    own = stage(module)
    for imported in imports(path, module):
        other = stage(imported)
        if other == own or other == "":
            continue
        if own in APART:
            assert other in BOTTOM, f"{module} (apart from the flow) imports {imported}"
        elif own not in BOTTOM and own not in ("", "__main__"):
            assert other not in APART or own == "cli", f"{module} imports {imported}, which stands apart"
            if other in APART:
                continue
            assert rank(other) <= rank(own), f"{module} ({own}) imports {imported} ({other}), a later stage"
        else:
            assert other in BOTTOM or own in ("", "__main__"), f"{module} (at the bottom) imports {imported}"


@pytest.mark.parametrize("module", sorted(modules()))
def test_no_module_is_a_big_room(module: str) -> None:
    lines = len(modules()[module].read_text().splitlines())
    assert lines <= MAX_LINES, f"{module} has {lines} lines"


def test_the_mp3_writer_loads_no_routine_parser_yaml_reader_or_engine() -> None:
    code = "import sys, voiceguide.mp3; print('\\n'.join(sorted(sys.modules)))"
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert "voiceguide.mp3" in loaded
    unwanted = [name for name in loaded if name.startswith(("voiceguide.routine", "voiceguide.yamlfile",
                                                           "voiceguide.speech", "yaml"))]
    assert unwanted == []
