"""The little of the ONNX format the Piper engine needs: read a model's graph and write graphs of its own.

An ONNX model is a protobuf message; this reads and writes protobuf's wire
format directly, so neither the onnx package nor its 15 MB are needed. Nodes
read are written back byte for byte. Weights (large float tensors) are not
copied into the graphs made: they name them where they are in the model's file,
as ONNX's external data, and onnxruntime reads them from there.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

# TensorProto data types.
FLOAT, INT64 = 1, 7
# Tensors of these types left in the model's file; smaller ones, and others, stay in the graph, where
# onnxruntime's shape inference can read them (axes, shapes).
WEIGHT_TYPES = {FLOAT, 10, 11}  # float, float16, double
WEIGHT_BYTES = 4096
_VARINT, _FIXED64, _BYTES, _FIXED32 = 0, 1, 2, 5
_INT_ATTRIBUTE, _FLOAT_ATTRIBUTE = 2, 1  # AttributeProto.type


class FormatError(ValueError):
    """The bytes are not an ONNX model this module can read."""


@dataclass
class Node:
    """A node of the graph as read; ``raw`` is its NodeProto, written back unchanged."""

    op: str
    name: str
    inputs: list[str]
    outputs: list[str]
    attributes: dict[str, int | float | list[int]]
    raw: bytes


@dataclass(frozen=True)
class Weight:
    """A large tensor, left in the model's file: its dimensions, its data type, and where its bytes are."""

    dims: tuple[int, ...]
    kind: int
    offset: int
    length: int


@dataclass
class Graph:
    """A model's graph: its nodes in order, its tensors, and what the graph takes and gives."""

    file: str  # the model file's name, where the graphs made name their weights (in the session's folder)
    head: list[bytes]  # the model's other fields (IR version, operator sets), written back unchanged
    nodes: list[Node] = field(default_factory=list)
    weights: dict[str, Weight] = field(default_factory=dict)
    constants: dict[str, bytes] = field(default_factory=dict)  # small tensors: TensorProto as read
    inputs: dict[str, bytes] = field(default_factory=dict)  # ValueInfoProto as read
    outputs: dict[str, bytes] = field(default_factory=dict)

    def model(self, nodes: Sequence[Node | bytes], inputs: list[bytes], outputs: list[bytes],
              constants: tuple[bytes, ...] = ()) -> bytes:
        """A model of this one's version with these nodes (read or made with ``node``), inputs and outputs
        (``tensor_info``); the tensors they use come along, weights named in the model's file. A session of it
        reads them from there: its option "session.model_external_initializers_file_folder_path" says where."""
        used = {name for item in nodes if isinstance(item, Node) for name in item.inputs}
        parts = [_bytes(1, item.raw if isinstance(item, Node) else item) for item in nodes]
        parts += [_bytes(5, _external(name, weight, self.file)) for name, weight in self.weights.items() if name in used]
        parts += [_bytes(5, tensor) for name, tensor in self.constants.items() if name in used]
        parts += [_bytes(5, tensor) for tensor in constants]
        parts += [_bytes(11, value) for value in inputs] + [_bytes(12, value) for value in outputs]
        parts.append(_bytes(2, b"voiceguide"))
        return b"".join([*self.head, _bytes(7, b"".join(parts))])


def read(data: Any, file: str) -> Graph:
    """The graph of the ONNX model ``data`` (bytes, or a buffer such as an mmap of the file named ``file``);
    FormatError if it is not one. The weights' bytes are not read, only where they are."""
    with memoryview(data) as view:
        return _read(view, file)


def _read(view: memoryview, file: str) -> Graph:
    try:
        head, graph = [], None
        for number, kind, value, start, end in _fields(view):
            if number == 7 and kind == _BYTES:
                graph = value
            else:
                head.append(bytes(view[start:end]))
        if graph is None:
            raise FormatError("it has no graph")
        found = Graph(file, head)
        for number, kind, value, _, _ in _fields(view, *graph):
            if kind != _BYTES:
                continue
            if number == 1:
                found.nodes.append(_node(view, value, bytes(view[value[0]:value[1]])))
            elif number == 5:
                name, weight = _tensor(view, value)
                if weight is not None:
                    found.weights[name] = weight
                else:
                    found.constants[name] = bytes(view[value[0]:value[1]])
            elif number in (11, 12):
                name = _string(view, next(v for n, _, v, _, _ in _fields(view, *value) if n == 1))
                (found.inputs if number == 11 else found.outputs)[name] = bytes(view[value[0]:value[1]])
            elif number == 15:
                raise FormatError("it has sparse tensors, which voiceguide cannot read")
    except FormatError:
        raise
    except (IndexError, StopIteration, UnicodeDecodeError, ValueError, struct.error) as error:
        raise FormatError(f"it is damaged ({type(error).__name__}: {error})") from None
    return found


def node(op: str, inputs: list[str], outputs: list[str], name: str, **attributes: int | float) -> bytes:
    """A NodeProto; integer and float attributes."""
    parts = [_bytes(1, i) for i in inputs] + [_bytes(2, o) for o in outputs] + [_bytes(3, name), _bytes(4, op)]
    for key, value in attributes.items():
        if isinstance(value, float):
            attribute = _bytes(1, key) + _key(2, _FIXED32) + struct.pack("<f", value) + _int(20, _FLOAT_ATTRIBUTE)
        else:
            attribute = _bytes(1, key) + _int(3, value) + _int(20, _INT_ATTRIBUTE)
        parts.append(_bytes(5, attribute))
    return b"".join(parts)


def tensor_info(name: str, element_type: int, dims: list[int | str] | None = None) -> bytes:
    """A ValueInfoProto: a tensor's name, element type and, when given, its dimensions (sizes or names)."""
    tensor = _int(1, element_type)
    if dims is not None:
        tensor += _bytes(2, b"".join(_bytes(1, _int(1, d) if isinstance(d, int) else _bytes(2, d)) for d in dims))
    return _bytes(1, name) + _bytes(2, _bytes(1, tensor))


def int64_tensor(name: str, values: list[int]) -> bytes:
    """A TensorProto of int64 values, one dimension."""
    return _int(1, len(values)) + _int(2, INT64) + _bytes(8, name) + _bytes(9, struct.pack(f"<{len(values)}q", *values))


# --- reading -----------------------------------------------------------------------------------

def _fields(view: memoryview, start: int = 0, end: int | None = None) -> Iterator[tuple[int, int, Any, int, int]]:
    """(number, wire type, value, start, end) of each field of the message in view[start:end]; a varint's
    value is the number, a length-delimited field's the (start, end) of its bytes, a fixed one's its bytes."""
    i, end = start, len(view) if end is None else end
    while i < end:
        first = i
        key, i = _varint(view, i)
        number, kind = key >> 3, key & 7
        value: Any
        if kind == _VARINT:
            value, i = _varint(view, i)
        elif kind == _BYTES:
            size, i = _varint(view, i)
            value, i = (i, i + size), i + size
        elif kind in (_FIXED32, _FIXED64):
            size = 4 if kind == _FIXED32 else 8
            value, i = bytes(view[i:i + size]), i + size
        else:
            raise FormatError(f"it is not an ONNX model (a field of wire type {kind})")
        if i > end:
            raise FormatError("it is damaged (a field runs past its message)")
        yield number, kind, value, first, i


def _varint(view: memoryview, i: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = view[i]
        i += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return value - (1 << 64) if value >= 1 << 63 else value, i


def _string(view: memoryview, span: tuple[int, int]) -> str:
    return bytes(view[span[0]:span[1]]).decode()


def _ints(view: memoryview, kind: int, value) -> list[int]:
    """A repeated int64 field's values, packed or not."""
    if kind == _VARINT:
        return [value]
    found, i = [], value[0]
    while i < value[1]:
        number, i = _varint(view, i)
        found.append(number)
    return found


def _node(view: memoryview, span: tuple[int, int], raw: bytes) -> Node:
    found = Node("", "", [], [], {}, raw)
    for number, _, value, _, _ in _fields(view, *span):
        if number == 1:
            found.inputs.append(_string(view, value))
        elif number == 2:
            found.outputs.append(_string(view, value))
        elif number == 3:
            found.name = _string(view, value)
        elif number == 4:
            found.op = _string(view, value)
        elif number == 5:
            name, setting = "", None
            for part, part_kind, part_value, _, _ in _fields(view, *value):
                if part == 1:
                    name = _string(view, part_value)
                elif part == 2:
                    setting = struct.unpack("<f", part_value)[0]
                elif part == 3:
                    setting = part_value
                elif part == 8:
                    setting = [*(setting if isinstance(setting, list) else []), *_ints(view, part_kind, part_value)]
            if setting is not None:
                found.attributes[name] = setting
    return found


def _tensor(view: memoryview, span: tuple[int, int]) -> tuple[str, Weight | None]:
    """A tensor's name, and where its data is if it is a weight (None for a tensor kept in the graph)."""
    name, dims, kind, data = "", [], 0, None
    for number, wire, value, _, _ in _fields(view, *span):
        if number == 1:
            dims += _ints(view, wire, value)
        elif number == 2:
            kind = value
        elif number == 8:
            name = _string(view, value)
        elif number == 9:
            data = value
        elif number == 14 and value:
            raise FormatError("it keeps tensors in files of their own, which voiceguide cannot read")
    if data is None or kind not in WEIGHT_TYPES or data[1] - data[0] < WEIGHT_BYTES:
        return name, None
    return name, Weight(tuple(dims), kind, data[0], data[1] - data[0])


# --- writing -----------------------------------------------------------------------------------

def _external(name: str, weight: Weight, file: str) -> bytes:
    """A TensorProto whose data is in ``file``, where the weight is (data_location EXTERNAL)."""
    where = {"location": file, "offset": str(weight.offset), "length": str(weight.length)}
    entries = b"".join(_bytes(13, _bytes(1, key) + _bytes(2, value)) for key, value in where.items())
    return b"".join(_int(1, d) for d in weight.dims) + _int(2, weight.kind) + _bytes(8, name) + entries + _int(14, 1)


def _key(number: int, kind: int) -> bytes:
    return _encode(number << 3 | kind)


def _encode(value: int) -> bytes:
    value &= (1 << 64) - 1  # negative numbers as protobuf writes them: ten bytes, two's complement
    out = bytearray()
    while value > 0x7F:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _int(number: int, value: int) -> bytes:
    return _key(number, _VARINT) + _encode(value)


def _bytes(number: int, value: bytes | str) -> bytes:
    data = value.encode() if isinstance(value, str) else value
    return _key(number, _BYTES) + _encode(len(data)) + data
