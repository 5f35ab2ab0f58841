"""The CRC-16 of MP3 frames (the Info frame's music CRC) as algebra: what reading a stretch of bytes does to
a CRC is a linear map, so the CRC of a long silence is worked out from its steps, not from its bytes."""

from __future__ import annotations

import functools
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

_LANES = 512  # stretches checksummed side by side (see crc16)


def crc16(data: bytes, crc: int = 0) -> int:
    """CRC-16/ARC, the checksum of the LAME tag and of the music after it."""
    if len(data) < 2 * _LANES:
        for byte in data:
            crc = _CRC_TABLE[(crc ^ byte) & 0xFF] ^ (crc >> 8)
        return crc
    import numpy as np  # here: the planner and the command line read this module before numpy is needed

    # Byte by byte in Python, the frames of a few minutes of speech take a tenth of a second. A CRC is
    # linear, so stretches of the data are checksummed side by side, then joined as in crc_after_zeros.
    # Zeros in front leave a CRC that starts at 0 at 0, so they even out the stretches; and they make each
    # a power of two long, so that the zeros that join them are steps kept ready (_ZERO_BYTES).
    power = (-(-len(data) // _LANES) - 1).bit_length()
    length = 1 << power
    padded = np.zeros(length * _LANES, dtype=np.uint8)
    padded[len(padded) - len(data) :] = np.frombuffer(data, dtype=np.uint8)
    columns = np.ascontiguousarray(padded.reshape(_LANES, length).T)
    table = np.array(_CRC_TABLE, dtype=np.uint16)
    states = np.zeros(_LANES, dtype=np.uint16)
    for column in columns:
        states = table[(states ^ column) & 0xFF] ^ (states >> 8)
    # Joined in pairs, then pairs of pairs: each time the first of two goes on over the other's zeros.
    while len(states) > 1:
        states = _ZERO_BYTES.square(power).apply_all(states[0::2]) ^ states[1::2]
        power += 1
    return crc_after_zeros(crc, len(data)) ^ int(states[0])


def _crc_table() -> list[int]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
        table.append(crc)
    return table


_CRC_TABLE = _crc_table()



def crc_after_zeros(crc: int, count: int) -> int:
    """``crc`` continued over ``count`` zero bytes, in time logarithmic in ``count``.

    With it, the CRC of two joined pieces follows from the CRCs of the
    pieces: crc(a + b) = crc_after_zeros(crc(a), len(b)) ^ crc(b). A piece
    of frames taken from the cache is not read byte by byte again.
    """
    # The kept squares applied one after another: a lookup each, where composing them would cost 16.
    power = 0
    while count >> power:
        if (count >> power) & 1:
            crc = _ZERO_BYTES.square(power).apply_kept(crc)
        power += 1
    return crc


def zeros_step(count: int) -> CrcStep:
    """The step of reading ``count`` zero bytes, kept ready: for a length met again and again (a frame's)."""
    return _ZERO_BYTES.times(count).kept()


@dataclass(frozen=True)
class CrcStep:
    """What reading some bytes does to a CRC-16: c -> M c xor k, M a 16x16 matrix over GF(2) given as its columns.

    The CRC of joined pieces follows from their steps, and a step repeated
    n times is found in log n compositions: the CRC of an hour of silent
    frames costs no more than that of one.
    """

    matrix: tuple[int, ...]
    constant: int

    @staticmethod
    def over(data: bytes) -> CrcStep:
        """The step of reading ``data``."""
        base = crc16(data)
        return CrcStep(tuple(crc16(data, 1 << bit) ^ base for bit in range(16)), base)

    def apply(self, crc: int) -> int:
        out = self.constant
        bit = 0
        while crc:
            if crc & 1:
                out ^= self.matrix[bit]
            crc >>= 1
            bit += 1
        return out

    def apply_kept(self, crc: int) -> int:
        """``apply`` by the tables of a step that is kept (see kept)."""
        low, high = self._tables
        return low[crc & 0xFF] ^ high[crc >> 8] ^ self.constant

    def then(self, after: CrcStep) -> CrcStep:
        """This step followed by ``after``."""
        # A step made for once is applied bit by bit: its tables would cost more than they save.
        if "_tables" not in after.__dict__:
            return CrcStep(tuple(after.apply(column) ^ after.constant for column in self.matrix),
                        after.apply(self.constant))
        low, high = after._tables
        return CrcStep(tuple(low[column & 0xFF] ^ high[column >> 8] for column in self.matrix),
                    low[self.constant & 0xFF] ^ high[self.constant >> 8] ^ after.constant)

    def kept(self) -> CrcStep:
        """This step, made quick to follow others with: for the steps that do so again and again (a frame,
        a square), where the 512 entries of its tables repay themselves."""
        self._tables  # noqa: B018 (made now, kept with the step)
        return self

    @functools.cached_property
    def _tables(self) -> tuple[list[int], list[int]]:
        """M times every low byte and every high byte of a CRC: two lookups apply M."""
        tables = []
        for columns in (self.matrix[:8], self.matrix[8:]):
            table = [0] * 256
            for value in range(1, 256):
                lowest = value & -value
                table[value] = table[value ^ lowest] ^ columns[lowest.bit_length() - 1]
            tables.append(table)
        return tables[0], tables[1]

    def apply_all(self, crcs: np.ndarray) -> np.ndarray:
        """``apply`` to every CRC in an array at once, by its tables (see kept)."""
        low, high = self._table_arrays
        return low[crcs & 0xFF] ^ high[crcs >> 8] ^ low.dtype.type(self.constant)

    @functools.cached_property
    def _table_arrays(self) -> tuple[np.ndarray, np.ndarray]:
        import numpy as np

        return np.array(self._tables[0], dtype=np.uint16), np.array(self._tables[1], dtype=np.uint16)

    def times(self, count: int) -> CrcStep:
        """This step ``count`` times over, by repeated squaring."""
        result, step = _NOTHING, self
        while count:
            if count & 1:
                result = result.then(step)
            step = step.then(step)
            count >>= 1
        return result


_NOTHING = CrcStep(tuple(1 << bit for bit in range(16)), 0)  # reading nothing: the CRC stays


class Repeats:
    """A step and its squares, kept: the step of any number of repeats in as many compositions as it has bits."""

    def __init__(self, step: CrcStep) -> None:
        self._squares = [step.kept()]  # the step repeated 1, 2, 4, ... times
        self._lock = threading.Lock()

    def times(self, count: int) -> CrcStep:
        result = _NOTHING
        power = 0
        while count >> power:
            if (count >> power) & 1:
                result = result.then(self.square(power))
            power += 1
        return result

    def square(self, power: int) -> CrcStep:
        """The step repeated 2 ** ``power`` times."""
        with self._lock:
            while power >= len(self._squares):
                self._squares.append(self._squares[-1].then(self._squares[-1]).kept())
            return self._squares[power]


_ZERO_BYTES = Repeats(CrcStep.over(b"\x00"))

