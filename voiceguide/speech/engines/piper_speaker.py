"""A Piper voice model, loaded once and shared by every clip spoken with it (see PiperEngine).

Noise. Piper's model draws random noise inside it (RandomNormalLike: the rhythm
and the sound of each phoneme) from generators that belong to its onnxruntime
session and go on from one run to the next, so one session says a line
differently each time. Here the model is rewritten to take that noise as an
input, and each clip is given what a session made for that clip alone would
draw: onnxruntime's own generators, seeded as it seeds them, draw it once into
streams that every clip reads from their start. One session speaks every clip,
and a line sounds the same whatever was spoken before it, on however many
threads.

Memory. The vocoder at the end of the model (HiFi-GAN: convolutions that
upsample frames to samples) takes most of the time and, run whole, 150 MB for
an eight-second sentence. It runs on windows that overlap by the reach of its
convolutions, so that each window gives what the whole would give there: first
its low-rate start, on long windows (its reach is long, its memory a frame
small), then the rest, on windows of about a second (its reach is a frame).
What follows its last convolution (tanh) runs on the whole sentence.
"""

from __future__ import annotations

import hashlib
import json
import math
import mmap
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from voiceguide.speech.engines import _onnx
from voiceguide.speech.engines._onnx import FLOAT, INT64, Node

if TYPE_CHECKING:
    import numpy as np

    from voiceguide.cache import Cache

# Frames (of 256 samples or so) of the vocoder's input per window at most, overlaps aside: for the low-rate
# start, and for the rest, whose memory is about 200 kB a frame (two windows at once on two cores). Changing
# them may change the last bit of a sample here and there: bump the engine's FORMAT.
START_FRAMES = 1000
WINDOW_FRAMES = 100
# The low-rate start ends where what remains reaches this many frames at most on either side.
REST_REACH = 2.0
# Noise values drawn at first for each noise node: enough for a clip of about 15 seconds; a longer one draws more.
FIRST_DRAW = 1 << 18
NOISE = "RandomNormalLike"
# Other ways a model could draw noise, which this cannot repeat.
OTHER_NOISE = {"RandomNormal", "RandomUniform", "RandomUniformLike", "Multinomial", "Bernoulli"}
# Operations after which each sample depends only on the samples near it: the vocoder's windows go through them.
LOCAL = {"Conv", "ConvTranspose", "LeakyRelu", "Relu", "Add", "Sub", "Mul", "Div"}
VOCODER_PREFIX = "/dec/"  # the vocoder's nodes in Piper's models (VITS's "dec")
Settings = dict[str, int | float]  # a noise node's attributes
# The arena the sessions share is registered once a process (onnxruntime's environment keeps it).
_ARENA = threading.Lock()
_arena: list[bool] = []
# The cache's kind for what a model is rewritten into; bumped whenever the rewriting changes.
PARTS = "piper-parts-1"


@dataclass(frozen=True)
class Stretch:
    """A stretch of the vocoder run on windows: from tensor ``start`` to ``end``, which has ``rate`` samples for
    each of ``start``'s; windows of ``window`` samples of ``start`` at most, and ``overlap`` more on either side."""

    start: str
    end: str
    rate: int
    window: int
    overlap: int


@dataclass(frozen=True)
class _Parts:
    """What a model is rewritten into, as it is stored: the names that tie the sessions together (``layout``),
    each session's graph (front, stretch0…, tail, shrink, noise0…), and the first values each noise stream
    draws (empty until drawn)."""

    layout: dict[str, Any]
    models: dict[str, bytes]
    noise: list[np.ndarray]

    def packed(self, noise: list[np.ndarray]) -> dict[str, np.ndarray]:
        import numpy as np

        arrays = {"layout": np.frombuffer(json.dumps(self.layout).encode(), np.uint8)}
        arrays.update({f"model/{name}": np.frombuffer(model, np.uint8) for name, model in self.models.items()})
        arrays.update({f"noise/{index}": values for index, values in enumerate(noise)})
        return arrays

    @classmethod
    def unpacked(cls, arrays: dict[str, np.ndarray] | None) -> _Parts | None:
        """The parts stored as ``arrays`` (see packed); None for none, or for arrays that are not such parts."""
        if arrays is None or "layout" not in arrays:
            return None
        try:
            layout = json.loads(arrays["layout"].tobytes())
            models = {name.removeprefix("model/"): array.tobytes() for name, array in arrays.items()
                      if name.startswith("model/")}
            noise = [arrays[f"noise/{index}"] for index in range(len(layout["counts"]))]
            if not {"front", "shrink"} <= set(models) or any(values.dtype.str != "<f4" for values in noise):
                return None
        except (ValueError, KeyError, TypeError):
            return None
        return cls(layout, models, noise)


class Speaker:
    """A model with its noise as an input and its vocoder apart; ``for_clip`` gives a PiperVoice for one clip.

    What reading and rewriting the model makes (its sessions' graphs, and the first noise of each stream) is
    kept in ``cache`` when one is given, under ``identity`` (the model file's hash, the engine's version):
    a later build makes its sessions from there, without reading the model's graph or drawing noise.
    """

    def __init__(self, model: Path, config: Any, seed: int, cache: Cache | None = None, identity: str = "") -> None:
        key = _parts_key(identity, seed) if cache is not None and identity else None
        stored = _Parts.unpacked(cache.arrays(PARTS, key)) if cache is not None and key else None
        parts = stored or _rewritten(model, seed)
        self.config = config
        self._folder = model.parent
        layout = parts.layout
        self._outputs, self._front_outputs = layout["outputs"], layout["front_outputs"]
        self._counts, self._tail_outputs = layout["counts"], layout["tail_outputs"]
        self.stretches = [Stretch(*stretch) for stretch in layout["stretches"]]
        # Windows of one sentence run at once on the cores that no other clip keeps busy.
        self._windows = ThreadPoolExecutor(max_workers=os.cpu_count() or 1, thread_name_prefix="piper-window")
        # The front is the largest graph by far (a tenth of a second to make); the others are made beside it,
        # as onnxruntime lets go of Python while it makes a session.
        names = [f"stretch{i}" for i in range(len(self.stretches))] + ["tail", "shrink"]
        others = {name: self._windows.submit(self._session, parts.models[name]) for name in names
                  if name in parts.models}
        try:
            self._front = self._session(parts.models["front"], threads=os.cpu_count() or 1)
            made = {name: future.result() for name, future in others.items()}
        except BaseException:
            self._windows.shutdown(cancel_futures=True)
            raise
        self._windowed = [made[f"stretch{i}"] for i in range(len(self.stretches))]
        self._tail = made.get("tail")
        self._shrink = made["shrink"]
        self._noise = _Noise([parts.models[f"noise{i}"] for i in range(len(self._counts))], parts.noise)
        if cache is not None and key and stored is None:
            cache.put_arrays(PARTS, key, parts.packed(self._noise.first()))  # a cache that cannot be written says so

    def close(self) -> None:
        """Hand the shared arena's memory back to the system: all of it is free once no clip is being spoken."""
        import numpy as np
        import onnxruntime

        self._windows.shutdown()
        options = onnxruntime.RunOptions()
        options.add_run_config_entry("memory.enable_memory_arena_shrinkage", "cpu:0")
        self._shrink.run(["out"], {"in": np.zeros(1, dtype=np.float32)}, options)

    def for_clip(self) -> Any:
        """A PiperVoice that speaks one clip (Piper phonemizes, runs the model once a sentence, scales)."""
        from piper import PiperVoice

        return PiperVoice(session=_Clip(self), config=self.config)

    def noises(self) -> int:
        """How many streams of noise the model takes."""
        return len(self._counts)

    def run(self, inputs: dict[str, np.ndarray], taken: list[int]) -> list[np.ndarray]:
        """The model's outputs for one sentence, with the noise that follows ``taken`` (moved on past it)."""
        names = self._front_outputs + self._counts
        while True:
            noise = self._noise.after(taken)
            found = dict(zip(names, self._front.run(names, {**inputs, **dict(noise)})))
            used = [int(found[name]) for name in self._counts]
            short = [index for index, count in enumerate(used) if count > len(noise[index][1])]
            if not short:
                break
            for index in short:  # a longer clip than any before: draw more, speak the sentence again
                self._noise.draw(index, taken[index] + used[index])
        for index, count in enumerate(used):
            # The generators draw pairs of values; a run that takes an odd number leaves the pair's second unused.
            taken[index] += count + count % 2
        if self.stretches:
            samples = found[self.stretches[0].start]
            for stretch, session in zip(self.stretches, self._windowed):
                samples = _in_windows(stretch, session, samples, self._windows)
            found[self.stretches[-1].end] = samples
            if self._tail is not None:
                tail = self._tail.run(self._tail_outputs, {self.stretches[-1].end: samples})
                found.update(zip(self._tail_outputs, tail))
        return [found[name] for name in self._outputs]

    def _session(self, model: bytes, threads: int = 1) -> Any:
        """An onnxruntime session of one of the graphs the model was rewritten into, on ``threads`` at most; it
        reads the weights the graph uses from the model's file."""
        import onnxruntime

        options = onnxruntime.SessionOptions()
        # The vocoder's windows run on threads of their own (see _in_windows), one thread each. The front's
        # convolutions are shared out over the cores: a clip spoken alone (a rebuild's new line) is spoken in
        # two thirds of the time on two, and when every core has a clip, a run's threads wait their turn
        # without spinning. The samples are the same on any number of threads (tested).
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        # Optimizing the graph changes the sound a little and speaks no faster. A change here: bump FORMAT.
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_DISABLE_ALL
        # A memory pattern is planned for each length of input, and every sentence has its own.
        options.enable_mem_pattern = False
        # One arena for every session: their peaks meet there instead of adding up in an arena each.
        _share_arena()
        options.add_session_config_entry("session.use_env_allocators", "1")
        # Where the model's file is, from which the session reads the weights its graph uses.
        options.add_session_config_entry("session.model_external_initializers_file_folder_path", str(self._folder))
        return onnxruntime.InferenceSession(model, sess_options=options, providers=["CPUExecutionProvider"])


def _rewritten(model: Path, seed: int) -> _Parts:
    """Read the model's graph and rewrite it into the graphs of a Speaker's sessions (see the module's doc)."""
    if model.stat().st_size == 0:
        raise _onnx.FormatError("the file is empty")
    # Mapped, not read: only the graph's structure is read, its weights are left in the file for onnxruntime.
    with open(model, "rb") as file, mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ) as data:
        graph = _onnx.read(data, model.name)
    nodes, noises = _noise_as_input(graph, seed)
    outputs = list(graph.outputs)
    counts = [f"{name}/used" for name, _ in noises]
    inputs = list(graph.inputs.values()) + [_onnx.tensor_info(name, FLOAT, ["n"]) for name, _ in noises]
    count_infos = [_onnx.tensor_info(name, INT64, []) for name in counts]
    constants = (_onnx.int64_tensor("voiceguide/zero", [0]), _onnx.int64_tensor("voiceguide/one", [1]))
    # A model this does not know how to cut runs whole.
    front, stretches, tail = _cut(graph, nodes) or (nodes, [], [])
    start = [stretches[0][0].start] if stretches else []
    # The front gives the vocoder's input, and any of the model's outputs made before it.
    front_outputs = start + [name for name in outputs if name in _made(front)]
    front_infos = [_onnx.tensor_info(name, FLOAT) for name in start] + [
        graph.outputs[name] for name in front_outputs[len(start):]]
    models = {"front": graph.model(front, inputs, front_infos + count_infos, constants)}
    for index, (stretch, body) in enumerate(stretches):
        models[f"stretch{index}"] = graph.model(body, [_onnx.tensor_info(stretch.start, FLOAT)],
                                                [_onnx.tensor_info(stretch.end, FLOAT)])
    tail_outputs = [name for name in outputs if name in _made(tail)]
    if tail:
        models["tail"] = graph.model(tail, [_onnx.tensor_info(stretches[-1][0].end, FLOAT)],
                                     [graph.outputs[name] for name in tail_outputs])
    models["shrink"] = graph.model([_onnx.node("Identity", ["in"], ["out"], "voiceguide/shrink")],
                                   [_onnx.tensor_info("in", FLOAT, [1])], [_onnx.tensor_info("out", FLOAT, [1])])
    for index, (name, settings) in enumerate(noises):
        models[f"noise{index}"] = graph.model(
            [_onnx.node(NOISE, ["shape"], ["noise"], name, **settings)],
            [_onnx.tensor_info("shape", FLOAT, ["n"])], [_onnx.tensor_info("noise", FLOAT, ["n"])])
    layout = {"outputs": outputs, "front_outputs": front_outputs, "counts": counts, "tail_outputs": tail_outputs,
              "stretches": [[s.start, s.end, s.rate, s.window, s.overlap] for s, _ in stretches]}
    return _Parts(layout, models, [])


def _parts_key(identity: str, seed: int) -> str:
    """The cache key of what a model is rewritten into: the model and engine (``identity``), the seed, and every
    setting the rewriting follows."""
    import onnxruntime  # whose generators draw the noise stored

    settings = [identity, seed, onnxruntime.__version__, START_FRAMES, WINDOW_FRAMES, REST_REACH, FIRST_DRAW,
                VOCODER_PREFIX]
    return hashlib.sha256(json.dumps(settings).encode()).hexdigest()


def _share_arena() -> None:
    """Register the arena the sessions share with onnxruntime's environment, once a process."""
    import onnxruntime

    with _ARENA:
        if not _arena:
            where = onnxruntime.OrtMemoryInfo("Cpu", onnxruntime.OrtAllocatorType.ORT_ARENA_ALLOCATOR, 0,
                                              onnxruntime.OrtMemType.DEFAULT)
            onnxruntime.create_and_register_allocator(where, onnxruntime.OrtArenaCfg(0, -1, -1, -1))
            _arena.append(True)


def _in_windows(stretch: Stretch, session: Any, samples: np.ndarray, pool: ThreadPoolExecutor) -> np.ndarray:
    """What ``session`` (``stretch``) makes of ``samples`` (1 × channels × length), run on overlapping windows
    (on ``pool``'s threads when there are several: each window is computed as it would be alone)."""
    import numpy as np

    total = samples.shape[-1]
    count = max(1, math.ceil(total / stretch.window))
    # Windows of equal length: a short last one would be computed a little differently.
    bounds = [round(i * total / count) for i in range(count + 1)]

    def window(first: int, last: int) -> np.ndarray:
        low, high = max(0, first - stretch.overlap), min(total, last + stretch.overlap)
        made = session.run([stretch.end], {stretch.start: np.ascontiguousarray(samples[..., low:high])})[0]
        if made.shape[-1] != (high - low) * stretch.rate:
            raise ValueError(f"the vocoder made {made.shape[-1]} samples of {high - low}, not {stretch.rate} of each")
        return made[..., (first - low) * stretch.rate:(last - low) * stretch.rate]

    if count == 1:
        return window(0, total)
    return np.concatenate(list(pool.map(window, bounds[:-1], bounds[1:])), axis=-1)


class _Clip:
    """What PiperVoice takes for its onnxruntime session: runs the shared model with this clip's noise."""

    def __init__(self, speaker: Speaker) -> None:
        self._speaker = speaker
        self._taken = [0] * speaker.noises()

    def run(self, names: list[str] | None, inputs: dict[str, np.ndarray]) -> list[np.ndarray]:
        return self._speaker.run(inputs, self._taken)


class _Noise:
    """The values each noise node of a model draws, from the start of its generator, as a new session draws them.

    Each stream comes from a model of one RandomNormalLike node made like the
    model's, with its seed: onnxruntime seeds a node with no seed of its own
    with the global seed plus the node's index in the graph, which is what
    onnxruntime.set_seed(seed) before making a session of the model did.
    """

    def __init__(self, models: list[bytes], first: list[np.ndarray]) -> None:
        """``models``: each stream's model; ``first``: the values each one draws first, when they were kept."""
        import numpy as np

        self._models = models
        self._sessions: list[Any] = [None] * len(models)
        self._drawn = [0] * len(models)  # values each session has drawn
        self._values = list(first) or [np.zeros(0, dtype=np.float32) for _ in models]
        self._lock = threading.Lock()
        if not first:
            for index in range(len(models)):
                self.draw(index, FIRST_DRAW)

    def first(self) -> list[np.ndarray]:
        """What each stream has drawn so far."""
        with self._lock:
            return list(self._values)

    def after(self, taken: list[int]) -> list[tuple[str, np.ndarray]]:
        """Each stream's values from ``taken`` on (views: nothing is copied), by the name of its input."""
        with self._lock:
            return [(f"voiceguide/noise{index}", values[start:])
                    for index, (values, start) in enumerate(zip(self._values, taken))]

    def draw(self, index: int, end: int) -> None:
        """Draw stream ``index`` on to ``end`` values at least, twice what it had at least."""
        import numpy as np
        import onnxruntime

        with self._lock:
            values = self._values[index]
            more = max(end - len(values), len(values))
            more += more % 2  # in pairs, as the generator draws them: the next draw goes on where this one ends
            if more <= 0:
                return
            if self._sessions[index] is None:
                options = onnxruntime.SessionOptions()
                options.intra_op_num_threads = options.inter_op_num_threads = 1
                self._sessions[index] = onnxruntime.InferenceSession(
                    self._models[index], sess_options=options, providers=["CPUExecutionProvider"])
            # A session made for values taken from the cache draws them again, from its start, before the new ones.
            wanted = len(values) + more - self._drawn[index]
            drawn = self._sessions[index].run(["noise"], {"shape": np.zeros(wanted, dtype=np.float32)})[0]
            self._drawn[index] += wanted
            self._values[index] = np.concatenate([values, drawn[wanted - more:]])


def _noise_as_input(graph: _onnx.Graph, seed: int) -> tuple[list[Node | bytes], list[tuple[str, Settings]]]:
    """The graph's nodes with each noise node replaced by nodes that take its noise from an input of its own,
    as many values as it would draw (zeros past the end of what is given), and report how many they took;
    and each such input's name with the settings of the node it stands for, its seed as onnxruntime seeds it."""
    nodes: list[Node | bytes] = []
    noises: list[tuple[str, Settings]] = []
    index = 0  # the node's index in onnxruntime's graph, which has no Constant nodes (they become tensors)
    for node in graph.nodes:
        if node.op in OTHER_NOISE:
            raise _onnx.FormatError(f"it draws noise with {node.op}, which voiceguide cannot repeat")
        if node.op == NOISE:
            if node.attributes.get("dtype", FLOAT) != FLOAT:
                raise _onnx.FormatError("it draws noise of a type other than float")
            name = f"voiceguide/noise{len(noises)}"
            settings = {key: value for key, value in node.attributes.items()
                        if key in ("dtype", "mean", "scale", "seed") and isinstance(value, (int, float))}
            noises.append((name, {"seed": float(seed + index), **settings}))
            shape, taken = node.inputs[0], node.outputs[0]
            nodes += [
                _onnx.node("Size", [shape], [f"{name}/used"], f"{name}/used"),
                _onnx.node("Reshape", [f"{name}/used", "voiceguide/one"], [f"{name}/count"], f"{name}/count"),
                _onnx.node("Slice", [name, "voiceguide/zero", f"{name}/count"], [f"{name}/given"], f"{name}/given"),
                _onnx.node("Shape", [f"{name}/given"], [f"{name}/got"], f"{name}/got"),
                _onnx.node("Sub", [f"{name}/count", f"{name}/got"], [f"{name}/short"], f"{name}/short"),
                _onnx.node("Concat", ["voiceguide/zero", f"{name}/short"], [f"{name}/pads"], f"{name}/pads", axis=0),
                _onnx.node("Pad", [f"{name}/given", f"{name}/pads"], [f"{name}/padded"], f"{name}/padded"),
                _onnx.node("Shape", [shape], [f"{name}/shape"], f"{name}/shape"),
                _onnx.node("Reshape", [f"{name}/padded", f"{name}/shape"], [taken], f"{name}/noise"),
            ]
        else:
            nodes.append(node)
        if node.op != "Constant":
            index += 1
    return nodes, noises


def _cut(graph: _onnx.Graph, nodes: list[Node | bytes]
         ) -> tuple[list[Node | bytes], list[tuple[Stretch, list[Node]]], list[Node]] | None:
    """The nodes before the vocoder, the vocoder's stretches up to its last convolution (each with its nodes),
    and the nodes after; None for a model whose vocoder is not where Piper's are or is not only convolutions."""
    first = next((node for node in nodes if isinstance(node, Node) and node.name.startswith(VOCODER_PREFIX)), None)
    if first is None or not first.inputs:
        return None
    start = first.inputs[0]
    made, vocoder = {start}, []
    for node in nodes:
        if isinstance(node, Node) and any(name in made for name in node.inputs):
            vocoder.append(node)
            made.update(node.outputs)
    known = set(graph.weights) | set(graph.constants) | made | {""}
    cut = next((i for i, node in enumerate(vocoder) if node.op not in LOCAL), len(vocoder))
    body, tail = vocoder[:cut], vocoder[cut:]
    ends = {name for node in tail for name in node.inputs if name in _made(body)}
    end = ends.pop() if len(ends) == 1 else (body[-1].outputs[0] if body and not tail else None)
    if end is None or not all(name in known for node in vocoder for name in node.inputs):
        return None
    whole = _reach(body, start, end)
    if whole is None:
        return None
    stretches = [(Stretch(start, end, whole[0], WINDOW_FRAMES, math.ceil(whole[1]) + 2), body)]
    # The low-rate start: up to the first tensor that is all the rest needs and from which it reaches little.
    for at, name in _joints(body, start):
        rest = _reach(body[at + 1:], name, end)
        early = _reach(body[:at + 1], start, name)
        if rest is not None and early is not None and rest[1] / early[0] <= REST_REACH:
            stretches = [(Stretch(start, name, early[0], START_FRAMES, math.ceil(early[1]) + 2), body[:at + 1]),
                         (Stretch(name, end, rest[0], WINDOW_FRAMES * early[0], math.ceil(rest[1]) + 2),
                          body[at + 1:])]
            break
    inside = {id(node) for node in vocoder}
    return [node for node in nodes if id(node) not in inside], stretches, tail


def _joints(body: list[Node], start: str) -> list[tuple[int, str]]:
    """(index, tensor) for each node of ``body`` after which its output is all the nodes after it need."""
    last = {name: i for i, node in enumerate(body) for name in node.inputs}
    found, live = [], {start}
    for i, node in enumerate(body):
        live = {name for name in live | set(node.outputs) if last.get(name, -1) > i}
        if i + 1 < len(body) and live == set(node.outputs) and len(node.outputs) == 1:
            found.append((i, node.outputs[0]))
    return found


def _reach(nodes: list[Node], start: str, end: str) -> tuple[int, float] | None:
    """Samples at ``end`` for each sample of ``start``, and how many samples of ``start`` on either side one
    there depends on; None when an operation changes the length in a way windows cannot follow (strides,
    padding other than keeping the length, more dimensions than one)."""
    rates, reaches = {start: 1}, {start: 0.0}
    for node in nodes:
        sources = [name for name in node.inputs if name in rates]
        if not sources or any(rates[name] != rates[sources[0]] for name in sources):
            return None
        rate, reach = rates[sources[0]], max(reaches[name] for name in sources)
        if node.op in ("Conv", "ConvTranspose"):
            kernel, pads = node.attributes.get("kernel_shape"), node.attributes.get("pads", [0, 0])
            stride, dilation = node.attributes.get("strides", [1]), node.attributes.get("dilations", [1])
            if not (isinstance(kernel, list) and isinstance(pads, list) and isinstance(stride, list)
                    and isinstance(dilation, list) and len(kernel) == len(stride) == len(dilation) == 1
                    and len(pads) == 2 and not {"auto_pad", "output_padding"} & set(node.attributes)):
                return None
            (k,), (s,), (d,), (before, after) = kernel, stride, dilation, pads
            if node.op == "Conv":
                if s != 1 or (k - 1) * d != before + after:  # the output as long as the input
                    return None
                reach += max(before, (k - 1) * d - before) / rate
            else:
                if d != 1 or k - before - after != s:  # the output exactly ``s`` times as long
                    return None
                reach += max((k - 1 - before) // s, (s - 1 + before) // s) / rate
                rate *= s
        for name in node.outputs:
            rates[name], reaches[name] = rate, reach
    return (rates[end], reaches[end]) if end in rates else None


def _made(nodes: list) -> set[str]:
    return {name for node in nodes if isinstance(node, Node) for name in node.outputs}
