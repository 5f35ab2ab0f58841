"""The JSON Schemas of routine and profile files agree with the loader: every file the loader accepts (the
sample routines, the good test files, the templates, the README's examples) is valid, every bad case within
a schema's reach is refused, the keys are the loader's own, and a few thousand generated variations get the
same answer from both.

Files are read as an editor reads them (YAML 1.2, where `yes` is text and there are no dates) and as
PyYAML reads them (YAML 1.1): a file must pass either way.
"""

from __future__ import annotations

import random
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from voiceguide import templates
from voiceguide.errors import InputError
from voiceguide.overrides import PROFILE_KEYS, load_profile
from voiceguide.routine import (
    BACKGROUND_KEYS,
    CLOSING_KEYS,
    DUCK_KEYS,
    GROUP_KEYS,
    PHRASE_KEYS,
    STEP_KEYS,
    TOP_KEYS,
    VOICE_KEYS,
    load_routine,
)
from voiceguide.routine.schema import (
    DURATION_PATTERN,
    GROUP_ONLY,
    POSITIVE_PATTERN,
    PROFILE_ID,
    ROUTINE_ID,
    STEP_ONLY,
    routine_schema,
)

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent
BAD = TESTS / "bad"
OTHER_TOOLS = TESTS / "imports"  # w2a workouts and phrase files, read by `voiceguide import`
TEMPLATES = ROOT / "voiceguide" / "templates"
ENGINES = ("pyttsx3", "piper")

ROUTINES = jsonschema.Draft7Validator(routine_schema())
PROFILES = jsonschema.Draft7Validator(templates.schema(profile=True))


class EditorLoader(yaml.SafeLoader):
    """YAML 1.2's core schema, as editors read a file: only true/false are booleans, `1:30` and dates are text."""


EditorLoader.yaml_implicit_resolvers = {}
for tag, pattern, first in (
        ("bool", r"^(?:true|True|TRUE|false|False|FALSE)$", "tTfF"),
        ("null", r"^(?:~|null|Null|NULL|)$", "~nN\0"),
        ("int", r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$", "-+0123456789"),
        ("float", r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$",
         "-+0123456789."),
):
    EditorLoader.add_implicit_resolver(f"tag:yaml.org,2002:{tag}", re.compile(pattern), list(first))
EditorLoader.add_implicit_resolver("tag:yaml.org,2002:null", re.compile(r"^$"), [""])


def readings(path: Path) -> list[Any]:
    """The file's data as an editor reads it and as PyYAML does."""
    text = path.read_text(encoding="utf-8")
    return [yaml.load(text, Loader=EditorLoader), yaml.safe_load(text)]


def errors(validator: jsonschema.Draft7Validator, data: Any) -> list[str]:
    return [f"{'/'.join(map(str, error.absolute_path)) or '(top)'}: {error.message[:200]}"
            for error in validator.iter_errors(data)]


def loads(path: Path) -> bool:
    try:
        load_routine(path, ENGINES)
    except InputError:
        return False
    return True


def loads_as_profile(path: Path) -> bool:
    try:
        load_profile(path, ENGINES)
    except InputError:
        return False
    return True


# --- the schemas themselves -----------------------------------------------------------------


def test_schemas_are_draft_7_with_an_id_and_no_key_left_without_a_shape() -> None:
    for schema, schema_id in ((routine_schema(), ROUTINE_ID), (templates.schema(profile=True), PROFILE_ID)):
        jsonschema.Draft7Validator.check_schema(schema)
        assert schema["$schema"] == "http://json-schema.org/draft-07/schema#"
        assert schema["$id"] == schema_id

        def walk(node: Any, where: str) -> None:
            if isinstance(node, dict):
                for key, shape in node.get("properties", {}).items():
                    assert shape, f"{where}/{key} has no shape"
                for key, value in node.items():
                    walk(value, f"{where}/{key}")
            elif isinstance(node, list):
                for value in node:
                    walk(value, where)

        walk(schema, "")


def properties(schema: dict, *path: str) -> set[str]:
    """The keys of the mapping found by following ``path`` from the top of ``schema``, through references and
    to the mapping among a key's shapes."""
    node = schema
    for name in path:
        node = node["properties"][name]
        while "$ref" in node:
            node = schema["definitions"][node["$ref"].rpartition("/")[2]]
        if "properties" not in node:
            node = next(shape for shape in node["anyOf"] if shape.get("type") == "object")
    return set(node["properties"])


def test_the_schema_takes_the_keys_the_loader_takes_and_no_other() -> None:
    schema = routine_schema()
    definitions = schema["definitions"]
    assert set(schema["properties"]) == set(TOP_KEYS)
    assert "language" in schema["properties"]
    assert set(definitions["plain-step"]["properties"]) - {"steps"} == set(STEP_KEYS) - set(GROUP_ONLY)
    assert set(definitions["group"]["properties"]) == set(GROUP_KEYS) - set(STEP_ONLY)
    assert set(STEP_KEYS) | set(GROUP_KEYS) == set(definitions["plain-step"]["properties"]) | set(GROUP_ONLY)
    assert properties(schema, "voice") == set(VOICE_KEYS)
    assert properties(schema, "background") == set(BACKGROUND_KEYS)
    assert properties(schema, "background", "duck") == set(DUCK_KEYS)
    assert properties(schema, "closing") == set(CLOSING_KEYS)
    assert properties(schema, "phrases") == set(PHRASE_KEYS)
    profile = templates.schema(profile=True)
    assert set(profile["properties"]) == set(PROFILE_KEYS)
    assert properties(profile, "voice") == set(VOICE_KEYS)
    # Every mapping is closed: an unknown key is marked, as the loader refuses it.
    for node in [schema, profile, *definitions.values()]:
        if node.get("type") == "object":
            assert node["additionalProperties"] is False or "propertyNames" in node


@pytest.mark.parametrize("text", ["45", "45s", "1m30s", "1:30", "1:02:03", "1:02:03.5", "2 min", "1.5m", "90 seconds",
                                  "1h", "500ms", ".5s", "1h 30m", "1 h, 30 m", "2 Minutes", " 30s ", "0", "0s", "10:00"])
def test_the_duration_pattern_takes_what_the_loader_reads(text: str) -> None:
    from voiceguide.durations import parse_duration

    parse_duration(text)
    assert re.search(DURATION_PATTERN, text)
    assert bool(re.search(POSITIVE_PATTERN, text)) == (parse_duration(text) > 0)


@pytest.mark.parametrize("text", ["", "s", "30 sek", "30s 1m", "1m1m", "1:75", "1:60:00", "-30s", "a while", "1:3",
                                  "30 s s", "1.2.3s", "3 mins 2 hours", "1msec", "1e3s"])
def test_the_duration_pattern_refuses_what_the_loader_refuses(text: str) -> None:
    from voiceguide.durations import DurationError, parse_duration

    with pytest.raises(DurationError):
        parse_duration(text)
    assert not re.search(DURATION_PATTERN, text)


# --- every good file is valid -------------------------------------------------------------


def good_files() -> list[Path]:
    """Every routine file shipped or kept for tests: scripts, templates, and any YAML under tests/ but the bad
    cases and the other tools' files that `voiceguide import` reads."""
    found = sorted(ROOT.glob("scripts/*.yaml")) + sorted(TEMPLATES.glob("*.yaml"))
    found += sorted(path for path in TESTS.rglob("*.y*ml") if BAD not in path.parents and OTHER_TOOLS not in path.parents)
    return found


@pytest.mark.parametrize("path", good_files(), ids=lambda path: str(path.relative_to(ROOT)))
def test_every_file_the_loader_accepts_is_valid(path: Path) -> None:
    if loads(path):
        validator = ROUTINES
    elif loads_as_profile(path):
        validator = PROFILES
    else:
        raise AssertionError(f"{path} loads neither as a routine nor as a profile")
    for data in readings(path):
        assert errors(validator, data) == []


def test_the_good_files_include_the_samples_the_templates_and_the_test_routines() -> None:
    names = {str(path.relative_to(ROOT)) for path in good_files() if loads(path)}
    assert {"scripts/sciatica-self-massage.yaml", "scripts/tabata.yaml", "tests/good/holds.yaml",
            "voiceguide/templates/stretch.yaml", "voiceguide/templates/intervals.yaml"} <= names


def readme_examples() -> list[tuple[str, Any]]:
    """The README's YAML examples that are routines, steps, profiles or top-level settings, as (kind, data).
    An example of several alternatives for one key (`background:` three ways) is read as YAML does, the last
    one winning; examples of other formats are left out."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    found = []
    for block in re.findall(r"```yaml\n(.*?)```", text, re.DOTALL):
        try:
            data = yaml.load(block, Loader=EditorLoader)
        except yaml.YAMLError:
            continue
        if isinstance(data, dict) and "steps" in data and "title" in data:
            found.append(("routine", data))
        elif isinstance(data, list) and data and all(isinstance(item, dict) and "title" in item for item in data):
            found += [("step", item) for item in data]
        elif isinstance(data, dict) and "title" in data:
            found.append(("step", data))
        elif isinstance(data, dict) and set(data) <= set(PROFILE_KEYS) and "holds" in data:
            found.append(("profile", data))
        elif isinstance(data, dict) and set(data) <= set(TOP_KEYS):
            found.append(("settings", data))
    return found


def test_every_routine_example_in_the_readme_is_valid() -> None:
    examples = readme_examples()
    kinds = [kind for kind, _ in examples]
    assert {"routine", "step", "profile", "settings"} <= set(kinds) and len(examples) >= 7, kinds
    step = {"$ref": "#/definitions/step", "definitions": routine_schema()["definitions"]}
    for kind, data in examples:
        if kind == "routine":
            found = errors(ROUTINES, data)
        elif kind == "profile":
            found = errors(PROFILES, data)
        elif kind == "step":
            found = errors(jsonschema.Draft7Validator(step), data)
        else:
            found = errors(ROUTINES, {"title": "T", "steps": [{"title": "A", "hold": "1m"}], **data})
        assert found == [], (kind, data)


@pytest.mark.parametrize("word", ["yes", "no", "on", "off", "Yes", "OFF"])
def test_true_and_false_written_as_yaml_1_1_words_are_valid_where_the_loader_takes_them(word: str,
                                                                                         tmp_path: Path) -> None:
    """PyYAML reads `strict: yes` as true, an editor as the text 'yes': the schema takes both where the loader
    takes true or false."""
    texts = [f"title: T\n{key}: {word}\nsteps:\n  - title: A\n    hold: 20s\n"
             for key in ("countdown", "halfway", "remaining", "bells", "switch", "next", "lead-in", "background")]
    texts += [f"title: T\nsteps:\n  - title: G\n    rounds: 2\n    {key}: {word}\n    steps:\n      - title: A\n"
              f"        hold: 20s\n" for key in ("strict", "last-round")]
    texts.append(f"title: T\nbackground:\n  sound: rain\n  duck: {word}\nsteps:\n  - title: A\n    hold: 20s\n")
    taken = 0
    for number, text in enumerate(texts):
        path = tmp_path / f"{number}.yaml"
        path.write_text(text, encoding="utf-8")
        if loads(path):
            taken += 1
            assert [errors(ROUTINES, data) for data in readings(path)] == [[], []], text
    assert taken >= 5


# --- bad cases ------------------------------------------------------------------------------

# The bad cases no schema can refuse, and why; every other case in tests/bad must be refused by it.
OUT_OF_REACH = {
    **dict.fromkeys(["alias-undefined", "key-not-scalar", "number-5000-digits", "python-tag", "two-documents",
                     "yaml-syntax-error", "yaml-tab-indent", "yaml-unclosed-quote", "duplicate-key-step",
                     "duplicate-key-top", "profiles/duplicate-key", "profiles/yaml-syntax-error"],
                    "the YAML itself: an editor's YAML parser marks it before any schema applies"),
    **dict.fromkeys(["value-nul", "value-surrogate"], "characters a value may not hold"),
    **dict.fromkeys(["background-missing-file", "chime-file-missing", "chime-file-newline"],
                    "a file that is not there: a schema sees names, not the disk"),
    **dict.fromkeys(["duplicate-id-explicit", "duplicate-id-from-titles", "duplicate-id-in-group", "id-reserved"],
                    "ids compared across the routine, or made from a title"),
    **dict.fromkeys(["groups-too-deep", "session-too-long-hold", "session-too-long-rounds", "session-too-long-sum",
                     "session-too-many-events", "bells-too-many", "profiles/fit-too-long"],
                    "limits on the whole session: its length and its events"),
    "engine-unknown": "engines are plugins, found where voiceguide runs",
    **dict.fromkeys(["template-bad-braces", "template-format-spec", "template-hold-without-hold",
                     "template-round-outside-group", "template-side-without-sides", "template-unknown-var",
                     "template-unknown-var-known-list", "template-unknown-var-no-hint"],
                    "{names} in text, which depend on where the text is"),
    **dict.fromkeys(["phrase-unspeakable", "say-nothing-to-say", "say-too-long", "vars-unspeakable"],
                    "what a line says once its {names} are filled in"),
}


def bad_cases() -> list[Path]:
    return sorted(BAD.glob("*.yaml")) + sorted((BAD / "profiles").glob("*.yaml"))


def case_name(path: Path) -> str:
    return str(path.relative_to(BAD).with_suffix(""))


def test_the_cases_out_of_reach_are_bad_cases() -> None:
    assert set(OUT_OF_REACH) <= {case_name(path) for path in bad_cases()}


@pytest.mark.parametrize("path", bad_cases(), ids=case_name)
def test_the_schema_refuses_every_bad_case_in_its_reach(path: Path) -> None:
    validator = PROFILES if path.parent.name == "profiles" else ROUTINES
    try:
        found = [errors(validator, data) for data in readings(path)]
    except (yaml.YAMLError, ValueError, UnicodeDecodeError):
        assert case_name(path) in OUT_OF_REACH, "YAML that cannot be read is marked by the editor's parser"
        return
    if case_name(path) in OUT_OF_REACH:
        # Kept exact: a case the schema comes to refuse leaves the list.
        assert found == [[]] * len(found), f"{case_name(path)} is refused after all: take it off OUT_OF_REACH"
    else:
        assert all(found), f"{case_name(path)}: {found}"


# --- generated variations: the schema and the loader give the same answer --------------------

VALUES: list[Any] = [
    True, False, None, 0, 1, 2, 3, 11, 2.5, -1, "30s", "0s", "1:30", "1m30s", "-10s", "soon", "", " ", "bell", "rain",
    "none", "a.wav", "left", "de", "pt-BR", "German", "rounds", "words", "-20dB", "+6 dB", "Now.", [], ["left", "right"],
    ["left", "left"], ["30s", "1m"], ["a.wav", "b.ogg"], [""], {}, {"say": "Now."}, {"sound": "wood"},
    {"say": "Now.", "sound": "wood"},
    {"every": "1m"}, {"count": 2, "sound": "wood"}, {"at": "10s", "say": "Now."}, [{"at": "10s", "say": "Now."}],
    [{"at": "-5s", "sound": "wood"}], [{"say": "Now."}], {"sound": "rain", "level": -20}, {"rate": 150}, {"x": 1},
]
STEP = {"title": "Reach", "say": "Reach up.", "hold": "20s"}
GROUP = {"title": "Circuit", "rounds": 2, "steps": [{"title": "Squat", "say": "Squat.", "hold": "20s"}]}
# A mapping inside a routine, by where it sits: how to put a setting into it.
NESTED = {
    "voice": (VOICE_KEYS, lambda value: {"voice": value}),
    "background": (BACKGROUND_KEYS, lambda value: {"background": {"sound": "rain", **value}}),
    "duck": (DUCK_KEYS, lambda value: {"background": {"sound": "rain", "duck": value}}),
    "closing": (CLOSING_KEYS, lambda value: {"closing": {"sound": "gong", **value}}),
    "phrases": (PHRASE_KEYS, lambda value: {"phrases": value}),
    "countdown": (("count", "sound"), lambda value: {"countdown": value}),
    "bells": (("every", "sound", "strikes"), lambda value: {"bells": value}),
    "switch": (("say", "sound", "gap"), lambda value: {"switch": value}),
    "halfway": (("say", "sound"), lambda value: {"halfway": value}),
    "remaining": (("at", "every"), lambda value: {"remaining": value}),
    "lead-in": (("say", "time"), lambda value: {"lead-in": value}),
    "cues": (("at", "say", "sound"), lambda value: {"cues": [{"at": "5s", **value}]}),
}
# Where the schema says yes and the loader no, and why; never the other way round.
LOOSER = {
    ("voice", "engine"): "engines are plugins, found where voiceguide runs",
    ("top", "cover"): "a file that is not there",
    ("top", "background"): "a playlist of files that are not there",
    ("background", "sound"): "a playlist of files that are not there",
}


def variations() -> list[tuple[str, str, dict, Any]]:
    """(where, key, routine or profile, value): each key of each mapping, and a key no mapping has, set to
    half of VALUES, chosen at random but the same every run (all of them take twice as long)."""
    cases = []

    def values(where: str, key: str) -> list[Any]:
        return random.Random(f"{where} {key}").sample(VALUES, len(VALUES) // 2)

    for key in (*TOP_KEYS, "colour"):
        for value in values("top", key):
            cases.append(("top", key, {"title": "T", "steps": [STEP], key: value}, value))
    for key in (*STEP_KEYS, *GROUP_ONLY, "hodl"):
        for value in values("step", key):
            cases.append(("step", key, {"title": "T", "steps": [{**STEP, key: value}]}, value))
    for key in (*GROUP_KEYS, *STEP_ONLY, "hodl"):
        for value in values("group", key):
            cases.append(("group", key, {"title": "T", "steps": [{**GROUP, key: value}]}, value))
    for where, (keys, put) in NESTED.items():
        for key in (*keys, "colour"):
            for value in values(where, key):
                cases.append((where, key, {"title": "T", "steps": [STEP], **put({key: value})}, value))
    for key in (*PROFILE_KEYS, "colour"):
        for value in values("profile", key):
            cases.append(("profile", key, {key: value}, value))
    return cases


def test_the_schema_and_the_loader_agree_on_generated_variations(tmp_path: Path) -> None:
    for name in ("a.wav", "b.ogg"):
        (tmp_path / name).write_bytes(b"")
    agreed, looser, differ = 0, 0, []
    for number, (where, key, data, value) in enumerate(variations()):
        path = tmp_path / f"{number}.yaml"
        path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8")
        if where == "profile":
            loader, schema = loads_as_profile(path), PROFILES.is_valid(data)
        else:
            loader, schema = loads(path), ROUTINES.is_valid(data)
        if loader == schema:
            agreed += 1
        elif schema and (where, key) in LOOSER:
            looser += 1
        else:
            differ.append(f"{where} {key}: {value!r}: loader {'accepts' if loader else 'refuses'}, schema "
                          f"{'accepts' if schema else 'refuses'}")
        path.unlink()
    assert differ == [], "\n".join(differ)
    assert agreed > 2500 and looser < agreed / 50
