"""How each stored thing is laid out as bytes, with the SHA-256 that shows it whole.

Every layout here carries a check of all its bytes, and reading one gives
back what was written or None: a file cut short, lengthened, changed in one
byte, or written by something else never passes for what it is not.
"""

from __future__ import annotations

import hashlib
import json
import struct
from collections.abc import Mapping
from typing import TYPE_CHECKING

from voiceguide.units import SAMPLE_RATE

if TYPE_CHECKING:
    import numpy as np

Buffer = bytes | bytearray | memoryview
_DIGEST = 32  # bytes of a SHA-256
# Encoded pieces of sessions: a magic, the SHA-256 of the rest, the number of frames, their bytes and their
# CRC-16, then the frames.
FRAMES_MAGIC = b"VGF2"
FRAMES_HEADER = "<IIH"
# Arrays: a magic, the SHA-256 of the rest, the length of a JSON list of (name, dtype, shape), that list, then
# each array's bytes; the list and each array start at a multiple of ARRAYS_ALIGN.
ARRAYS_MAGIC = b"VGA1"
ARRAYS_ALIGN = 16
ARRAYS_DTYPES = "biuf"  # numbers only: nothing read back can be an object
_ARRAYS_HEAD = len(ARRAYS_MAGIC) + _DIGEST
# Clips: a plain 44.1 kHz mono 16-bit WAV, then a chunk of our own, which players skip: the SHA-256 of all
# before it. Its header must be exactly the one written for its length.
WAV_HEAD = 44
_WAV_SEAL = b"vgsh" + struct.pack("<I", _DIGEST)
_WAV_EXTRA = WAV_HEAD + len(_WAV_SEAL) + _DIGEST
# Levels and answers: a line with this word and the SHA-256 of the rest in hex, then what is stored, as text.
TEXT_SEAL = b"voiceguide-sha256"


def sealed(magic: bytes, parts: list[Buffer]) -> list[Buffer]:
    """``parts`` as a file that carries its check: ``magic``, the SHA-256 of the parts, the parts."""
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part)
    return [magic + digest.digest(), *parts]


def opened(magic: bytes, data: bytearray) -> memoryview | None:
    """What ``sealed`` wrote after its check, if ``data`` is whole; None otherwise."""
    head = len(magic) + _DIGEST
    view = memoryview(data)
    if len(data) < head or data[: len(magic)] != magic or view[len(magic) : head] != hashlib.sha256(view[head:]).digest():
        return None
    return view[head:]


def sealed_text(text: str) -> list[Buffer]:
    payload = text.encode("utf-8", "surrogateescape")  # a path may hold bytes that are not UTF-8
    return [TEXT_SEAL + b" " + hashlib.sha256(payload).hexdigest().encode() + b"\n", payload]


def opened_text(data: bytearray) -> str | None:
    head, newline, payload = bytes(data).partition(b"\n")
    if not newline or head != TEXT_SEAL + b" " + hashlib.sha256(payload).hexdigest().encode():
        return None
    return payload.decode("utf-8", "surrogateescape")


# --- clips ----------------------------------------------------------------------------------------------------------

def wav(samples: np.ndarray) -> list[Buffer]:
    """``samples`` (int16) as a clip's file."""
    import numpy as np

    pcm = _bytes_of(np.ascontiguousarray(samples, dtype="<i2"))
    head = _wav_head(len(pcm) // 2)
    digest = hashlib.sha256(head)
    digest.update(pcm)
    return [head, pcm, _WAV_SEAL + digest.digest()]


def wav_length(data: bytearray) -> int | None:
    """The samples of a clip as ``wav`` wrote it; None unless ``data`` is that, whole, with some sound."""
    length, odd = divmod(len(data) - _WAV_EXTRA, 2)
    view = memoryview(data)
    if length <= 0 or odd or data[:WAV_HEAD] != _wav_head(length) or data[-_DIGEST - 8 : -_DIGEST] != _WAV_SEAL:
        return None
    return length if view[-_DIGEST:] == hashlib.sha256(view[: -_DIGEST - 8]).digest() else None


def _wav_head(length: int) -> bytes:
    """The header of a clip of ``length`` samples: the RIFF size counts the chunk of the check too."""
    size = 2 * length
    return struct.pack("<4sI4s4sIHHIIHH4sI", b"RIFF", _WAV_EXTRA - 8 + size, b"WAVE", b"fmt ", 16, 1, 1,
                       SAMPLE_RATE, 2 * SAMPLE_RATE, 2, 16, b"data", size)


# --- encoded pieces -------------------------------------------------------------------------------------------------

def frames_file(data: bytes, count: int, crc: int) -> list[Buffer]:
    return sealed(FRAMES_MAGIC, [struct.pack(FRAMES_HEADER, count, len(data), crc), data])


def frames_of(data: bytearray) -> tuple[bytes, int, int] | None:
    """The frames, their count and their CRC, as ``frames_file`` wrote them; None unless ``data`` is whole."""
    body = opened(FRAMES_MAGIC, data)
    header = struct.calcsize(FRAMES_HEADER)
    if body is None or len(body) < header:
        return None
    count, size, crc = struct.unpack_from(FRAMES_HEADER, body)
    return (bytes(body[header:]), count, crc) if size == len(body) - header else None


# --- arrays ---------------------------------------------------------------------------------------------------------

def arrays_file(arrays: Mapping[str, np.ndarray]) -> list[Buffer]:
    """``arrays`` (of numbers, any shape) as a file."""
    import numpy as np

    parts = {name: np.ascontiguousarray(array) for name, array in arrays.items()}
    if any(array.dtype.kind not in ARRAYS_DTYPES for array in parts.values()):
        raise TypeError(f"only arrays of numbers are stored, not {[a.dtype.str for a in parts.values()]}")
    listed = json.dumps([[name, array.dtype.str, array.shape] for name, array in parts.items()]).encode()
    body: list[Buffer] = [struct.pack("<I", len(listed)), listed, _padding(_ARRAYS_HEAD + 4 + len(listed))]
    for array in parts.values():
        body += [_bytes_of(array), _padding(array.nbytes)]
    return sealed(ARRAYS_MAGIC, body)


def arrays_of(data: bytearray) -> dict[str, np.ndarray] | None:
    """The arrays stored in ``data`` by ``arrays_file``, as views of it; None unless it is whole."""
    import numpy as np

    if opened(ARRAYS_MAGIC, data) is None:
        return None
    head, view = _ARRAYS_HEAD, memoryview(data)
    try:
        (length,) = struct.unpack_from("<I", data, head)
        listed = json.loads(bytes(view[head + 4 : head + 4 + length]))
        offset = head + 4 + length
        offset += len(_padding(offset))
        found = {}
        for name, dtype, shape in listed:
            kind = np.dtype(dtype)
            if kind.kind not in ARRAYS_DTYPES or not all(isinstance(n, int) and n >= 0 for n in shape):
                return None
            size = int(np.prod(shape, dtype=np.int64)) * kind.itemsize
            if offset + size > len(data):
                return None
            found[name] = np.frombuffer(view[offset : offset + size], kind).reshape(shape)
            offset += size + len(_padding(size))
    except (ValueError, TypeError, struct.error):  # whole, so written by us: by another version
        return None
    return found if offset == len(data) else None


def _padding(length: int) -> bytes:
    """Zeros from ``length`` to the next multiple of ARRAYS_ALIGN."""
    return bytes(-length % ARRAYS_ALIGN)


def _bytes_of(array: np.ndarray) -> memoryview:
    """The bytes of a contiguous array, as they are in memory."""
    import numpy as np

    return array.reshape(-1).view(np.uint8).data
