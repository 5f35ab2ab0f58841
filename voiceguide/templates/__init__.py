"""Help while writing: starting routines (`voiceguide new`), commented routine files that build as they are,
and the schemas of routine and profile files that editors check them with (`voiceguide schema`).

Each template is a YAML file beside this module. Its first line points an editor at the routine schema, which
is written beside the new routine too, so the editor checks and completes it from the first keystroke.
"""

from __future__ import annotations

import json
import os
import tempfile
from importlib import resources
from pathlib import Path
from typing import Any

from voiceguide.errors import InputError
from voiceguide.overrides import MAX_SCALE, PROFILE_KEYS
from voiceguide.routine.checker import did_you_mean
from voiceguide.routine.schema import ROUTINE_ID, ROUTINE_SCHEMA_FILE, profile_schema, routine_schema

# In the order `voiceguide new --list` shows them; the first is the default.
TEMPLATES = ("stretch", "breathing", "meditation", "intervals")
DEFAULT_TEMPLATE = TEMPLATES[0]


def schema(profile: bool = False) -> dict[str, Any]:
    """The JSON Schema of routine files, or with ``profile`` of profile files."""
    return profile_schema(PROFILE_KEYS, MAX_SCALE) if profile else routine_schema()


def schema_text(profile: bool = False) -> str:
    """A schema as the text of its file."""
    return json.dumps(schema(profile), indent=2, ensure_ascii=False) + "\n"


def template_text(name: str) -> str:
    """The text of the template ``name``; InputError naming the templates if there is none."""
    if name not in TEMPLATES:
        raise InputError(f"unknown template '{name}'{did_you_mean(name, TEMPLATES)} (templates: {', '.join(TEMPLATES)})")
    return resources.files(__name__).joinpath(f"{name}.yaml").read_text(encoding="utf-8")


def summary(name: str) -> str:
    """What the template ``name`` is, in a line: its routine's description."""
    for line in template_text(name).splitlines():
        if line.startswith("description:"):
            return line.partition(":")[2].strip()
    return ""


def write_template(name: str, target: Path, force: bool = False) -> list[Path]:
    """Write the template ``name`` to ``target``, and the routine schema beside it for editors; return the
    files written. An existing ``target`` is replaced only with ``force`` (else InputError); an existing
    schema file is refreshed if it is voiceguide's, and left alone if it is anything else."""
    text = template_text(name)
    if target.is_dir():
        raise InputError(f"{target}: is a folder; give a file name, such as {target / (name + '.yaml')}")
    from voiceguide.export import replace_together

    _folder(target)
    if force:
        replace_together({target: text})
    elif not _create(target, text):
        raise InputError(f"{target}: already exists; add --force to replace it")
    written = [target]
    schema = target.parent / ROUTINE_SCHEMA_FILE
    current = schema_text()
    if _create(schema, current):
        written.append(schema)
    elif _ours(schema) and schema.read_text(encoding="utf-8") != current:
        replace_together({schema: current})
        written.append(schema)
    return written


def write_schema(target: Path, profile: bool = False) -> None:
    """Write the routine schema (or the profile schema) to ``target``, replacing any file there, atomically."""
    from voiceguide.export import replace_together

    if target.is_dir():
        raise InputError(f"{target}: is a folder; give a file name, such as {target / ROUTINE_SCHEMA_FILE}")
    _folder(target)
    replace_together({target: schema_text(profile)})


def _folder(target: Path) -> None:
    """Make the folder ``target`` is to be written into, if it is not there yet."""
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise InputError(f"{target}: cannot make its folder: {error.strerror or error}") from None


def _create(target: Path, text: str) -> bool:
    """Write ``text`` to ``target`` if no file is there, atomically: the complete file appears under its name or
    nothing does, and a file that appears meanwhile is never replaced. Whether it was written."""
    from voiceguide.errors import AudioError
    from voiceguide.export import leftovers

    if os.path.lexists(target):
        return False
    handle, name = tempfile.mkstemp(dir=target.parent, prefix=leftovers.part_prefix(target), suffix=leftovers.PART)
    temp = Path(name)
    try:
        with os.fdopen(handle, "w", encoding="utf-8", newline="\n") as file:
            file.write(text)
            file.flush()
            os.fsync(file.fileno())
        os.chmod(temp, 0o644 & ~_umask())
        try:
            # A link fails where a name exists, where a move would replace it.
            os.link(temp, target)
        except FileExistsError:
            return False
        except OSError:
            # A file system without hard links (FAT, some network shares): checked just before, moved.
            if os.path.lexists(target):
                return False
            os.replace(temp, target)
        return True
    except OSError as error:
        raise AudioError(f"cannot write {target}: {error.strerror or error}") from None
    finally:
        temp.unlink(missing_ok=True)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _ours(schema: Path) -> bool:
    """Whether ``schema`` is a routine schema voiceguide wrote (an older version's, perhaps)."""
    try:
        return json.loads(schema.read_text(encoding="utf-8")).get("$id") == ROUTINE_ID
    except (OSError, ValueError, AttributeError):
        return False
