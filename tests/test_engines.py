"""Engines as plugins: the table comes from the `voiceguide.engines` entry-point group.

A third-party engine is installed here as a real distribution would be: a
module and a ``*.dist-info`` folder with its entry points, put on sys.path.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from importlib import metadata
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from voiceguide.cli import cli
from voiceguide.environment import Environment
from voiceguide.errors import EngineError, InputError
from voiceguide.speech import engines

ROOT = Path(__file__).resolve().parent.parent
BOX = ROOT / "scripts" / "box-breathing.yaml"

# A complete engine in a few lines: a tone per word, as long as the rate says.
HUM_ENGINE = '''
from __future__ import annotations

import wave

import numpy as np

from voiceguide.speech.engines import Engine, VoiceInfo


class HumEngine(Engine):
    name = "hum"

    def version(self) -> str:
        return "1"

    def voices(self) -> list[VoiceInfo]:
        return [VoiceInfo("low", "Low hum", ("en",)), VoiceInfo("high", "High hum", ("en",))]

    def default_voice(self) -> str:
        return "low"

    def synthesize(self, text, voice, rate, volume, path, timeout) -> None:
        seconds = len(text.split()) * 60 / rate
        t = np.arange(int(16000 * seconds)) / 16000
        pitch = 220 if voice == "low" else 440
        samples = (np.sin(2 * np.pi * pitch * t) * 20000 * volume).astype("<i2")
        with wave.open(str(path), "wb") as wav:
            wav.setnchannels(1)
            wav.setsampwidth(2)
            wav.setframerate(16000)
            wav.writeframes(samples.tobytes())
'''


def install_plugin(root: Path, name: str, entry_points: str, module: str, source: str) -> None:
    """Put a distribution ``name`` with ``entry_points`` and one module under ``root``, as pip would."""
    (root / f"{module}.py").write_text(source)
    # pip's folder name: the project name with "_" for "-", then its version.
    info = root / f"{name.replace('-', '_')}-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[voiceguide.engines]\n{textwrap.dedent(entry_points).strip()}\n")


@pytest.fixture
def plugins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A folder on sys.path for plugin distributions; the engine table is read again around each test."""
    root = tmp_path / "site"
    root.mkdir()
    monkeypatch.syspath_prepend(str(root))
    engines._engines.cache_clear()
    yield root
    engines._engines.cache_clear()


@pytest.fixture
def environment(tmp_path: Path) -> Environment:
    """An environment with a cache of its own, where the engine table is kept."""
    return Environment(cache_dir=tmp_path / "cache", bundled=Environment.from_os().bundled)


def invoke(*args: object) -> Result:
    return CliRunner().invoke(cli, [str(a) for a in args])


def test_builtin_engines_are_registered_as_entry_points(environment: Environment) -> None:
    registered = {e.name: e.value for e in metadata.entry_points(group=engines.ENTRY_POINT_GROUP)}
    assert registered["pyttsx3"] == "voiceguide.speech.engines.pyttsx3_engine:Pyttsx3Engine"
    assert registered["piper"] == "voiceguide.speech.engines.piper_engine:PiperEngine"
    assert {"pyttsx3", "piper"} <= set(engines.engine_names(environment))


def test_listing_engines_imports_none(plugins: Path, environment: Environment) -> None:
    install_plugin(plugins, "exploding-engine", "boom = exploding:Engine", "exploding", "raise RuntimeError('imported')\n")
    assert "boom" in engines.engine_names(environment)


def test_a_third_party_engine_is_found_and_speaks(plugins: Path, tmp_path: Path, environment: Environment) -> None:
    install_plugin(plugins, "voiceguide-hum", "hum = hum_engine:HumEngine", "hum_engine", HUM_ENGINE)
    assert "hum" in engines.engine_names(environment)
    assert engines.create_engine("hum", environment).resolve_voice("high") == "high"

    result = invoke("voices", "--engine", "hum")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == ["low   Low hum  (en)", "high  High hum  (en)"]

    # A routine may name it like a built-in engine, and the timeline is made from its clips.
    routine = tmp_path / "hum.yaml"
    routine.write_text("title: Hum\nvoice: {engine: hum, rate: 60}\nsteps:\n  - title: One\n    say: one two three\n")
    result = invoke("plan", routine, "--json", "-q", "--cache-dir", tmp_path / "cache")
    assert result.exit_code == 0, result.output
    speech = [e for e in json.loads(result.stdout)["events"] if e["kind"] == "speech"]
    assert speech[0]["voice"]["engine"] == "hum"
    # Three words at 60 a minute: three seconds of tone (trimmed of its fades, so a hair less).
    assert speech[0]["end"] - speech[0]["start"] == pytest.approx(3.0, abs=0.01)


def test_a_broken_plugin_fails_alone_naming_itself(plugins: Path, environment: Environment) -> None:
    install_plugin(plugins, "voiceguide-broken", "broken = broken_engine:BrokenEngine", "broken_engine",
                   "import no_such_module_anywhere\n")
    with pytest.raises(EngineError) as caught:
        engines.create_engine("broken", environment)
    assert str(caught.value) == (
        "engine 'broken' (broken_engine:BrokenEngine from package voiceguide-broken) cannot be loaded: "
        "ModuleNotFoundError: No module named 'no_such_module_anywhere'")
    # The other engines are untouched.
    assert {"broken", "piper", "pyttsx3"} <= set(engines.engine_names(environment))
    assert engines.create_engine("pyttsx3", environment).name == "pyttsx3"


def test_a_plugin_that_is_not_an_engine_is_refused(plugins: Path, environment: Environment) -> None:
    install_plugin(plugins, "voiceguide-odd", "odd = odd_engine:Odd\nmisnamed = odd_engine:Misnamed", "odd_engine",
                   "from voiceguide.speech.engines.pyttsx3_engine import Pyttsx3Engine\n"
                   "class Odd:\n    name = 'odd'\n"
                   "class Misnamed(Pyttsx3Engine):\n    pass\n")
    with pytest.raises(EngineError, match=r"^engine 'odd' \(odd_engine:Odd from package voiceguide-odd\) "
                                          r"is not a voiceguide Engine class$"):
        engines.create_engine("odd", environment)
    with pytest.raises(EngineError, match=r"^engine 'misnamed' .* calls itself 'pyttsx3'"):
        engines.create_engine("misnamed", environment)


def test_a_plugin_failing_to_start_is_one_line_naming_it(plugins: Path) -> None:
    install_plugin(plugins, "voiceguide-flaky", "flaky = flaky_engine:Flaky", "flaky_engine",
                   HUM_ENGINE.replace('name = "hum"', 'name = "flaky"').replace("class HumEngine", "class Flaky")
                   + "\n    def __init__(self, environment):\n        raise OSError('no sound card')\n")
    result = invoke("voices", "--engine", "flaky")
    assert result.exit_code == 1
    assert result.stderr.strip() == ("engine 'flaky' (flaky_engine:Flaky from package voiceguide-flaky) failed to start: "
                                     "OSError: no sound card")


def test_unknown_engine_lists_the_registered_ones(plugins: Path, environment: Environment) -> None:
    install_plugin(plugins, "voiceguide-hum", "hum = hum_engine:HumEngine", "hum_engine", HUM_ENGINE)
    with pytest.raises(InputError, match=r"^unknown engine 'nope'; valid engines: hum, piper, pyttsx3$"):
        engines.create_engine("nope", environment)


def test_the_engine_table_is_kept_until_a_package_changes(plugins: Path, environment: Environment) -> None:
    """Read from the packages' metadata once, then from the kept table; a package installed later is seen."""
    before = set(engines.engine_names(environment))
    install_plugin(plugins, "voiceguide-hum", "hum = hum_engine:HumEngine", "hum_engine", HUM_ENGINE)
    engines._engines.cache_clear()
    assert set(engines.engine_names(environment)) == before | {"hum"}


def test_a_command_does_not_import_the_package_metadata_once_the_table_is_kept(tmp_path: Path) -> None:
    """importlib.metadata costs every command 40 ms to import: asked once, the table is kept on disk."""
    probe = ("import sys, voiceguide.speech.engines as e; from voiceguide.environment import Environment; "
             "e.create_engine('pyttsx3', Environment.from_os()); "
             "print('importlib.metadata' in sys.modules)")
    env = dict(os.environ, VOICEGUIDE_CACHE_DIR=str(tmp_path / "cache"))
    said = [subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True).stdout
            for _ in range(2)]
    assert said == ["True\n", "False\n"]
