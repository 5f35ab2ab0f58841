"""MP3 frames as bytes: their lengths from their headers, padding, and the Info frame that heads a file."""

from __future__ import annotations

from voiceguide.errors import AudioError
from voiceguide.mp3._crc import crc16
from voiceguide.units import ENCODER_DELAY, FRAME, SAMPLE_RATE

BITRATES = (32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320)
DEFAULT_BITRATE = 64  # kbps: clear speech in mono, about 29 MB an hour
INFO_OFFSET = 4 + 17  # frame header and the side information of a mono MPEG-1 frame
LAME_TAG_OFFSET = INFO_OFFSET + 4 + 4 + 4 + 4 + 100 + 4
TAG_CRC_SPAN = 190  # the LAME tag's own CRC covers this many bytes of the frame


def frame_bytes(bitrate: int) -> float:
    """The average length of a frame at ``bitrate`` kbps; frames are this long rounded down, or one byte more."""
    return 144 * bitrate * 1000 / SAMPLE_RATE



class Frames:
    """Splits a stream of MPEG audio bytes into frames, by their headers."""

    def __init__(self) -> None:
        self._buffer = b""

    def feed(self, data: bytes) -> list[bytes]:
        self._buffer += data
        found = []
        position = 0
        while len(self._buffer) - position >= 4:
            length = frame_length(self._buffer[position : position + 4])
            if len(self._buffer) - position < length:
                break
            found.append(self._buffer[position : position + length])
            position += length
        self._buffer = self._buffer[position:]
        return found

    def rest(self) -> bytes:
        return self._buffer


def frame_length(header: bytes) -> int:
    length = _LENGTHS.get(header)
    if length is None:
        length = _LENGTHS[header] = _length_of(header)
    return length


_LENGTHS: dict[bytes, int] = {}  # a CBR stream has two headers, with and without padding: each is read once


def _length_of(header: bytes) -> int:
    word = int.from_bytes(header, "big")
    # MPEG-1 Layer III at 44.1 kHz is all the encoder is asked for; anything else is a fault.
    if word >> 21 != 0x7FF or (word >> 19) & 3 != 3 or (word >> 17) & 3 != 1 or (word >> 10) & 3 != 0:
        raise AudioError(f"the encoder wrote something that is not an MPEG-1 Layer III frame ({header.hex()})")
    index = (word >> 12) & 15
    if not 1 <= index <= 14:
        raise AudioError(f"the encoder wrote a frame with a bad bitrate ({header.hex()})")
    return int(frame_bytes(BITRATES[index - 1])) + ((word >> 9) & 1)


def padded(frame: bytes) -> bytes:
    """``frame`` one byte longer: its padding bit set, and a zero byte of ancillary data at its end.

    Without the bit reservoir a frame's data never reaches past its own
    end, so the added byte is read by no one.
    """
    return frame[:2] + bytes([frame[2] | 0x02]) + frame[3:] + b"\x00"


def unpadded(frame: bytes) -> bytes:
    """A frame with its padding byte removed; only for silent frames, whose data ends long before."""
    return frame[:2] + bytes([frame[2] & ~0x02 & 0xFF]) + frame[3:-1] if frame[2] & 0x02 else frame



def bytes_after(bitrate: int, frames: int) -> int:
    """Bytes a CBR file holds after ``frames`` audio frames and its Info frame, at ``bitrate``."""
    # 144 * bitrate / sample rate bytes a frame, rounded half up, in integers.
    numerator, denominator = 144_000 * bitrate, SAMPLE_RATE
    return (2 * numerator * (frames + 1) + denominator) // (2 * denominator)



def info_frame(bitrate: int, frames: int, size: int, samples: int, music_crc: int) -> bytes:
    """The Info frame for ``frames`` audio frames, ``size`` bytes in all, holding ``samples`` samples.

    Laid out as LAME and ffmpeg write it: the Xing fields (frame count, byte
    count, a seek table), then the LAME tag with the encoder delay and the
    padding at the end that players trim.
    """
    index = BITRATES.index(bitrate) + 1
    header = bytes([0xFF, 0xFB, index << 4, 0xC0])  # MPEG-1 Layer III, no CRC, 44.1 kHz, mono
    frame = bytearray(int(frame_bytes(bitrate)))
    frame[:4] = header
    padding = frames * FRAME - samples - ENCODER_DELAY
    if not 0 <= padding < 4096:
        raise AudioError(f"the encoder made {frames} frames for {samples} samples")
    # A uniform table: in a CBR file, byte offset and time are proportional.
    toc = bytes(min(255, i * 256 // 100) for i in range(100))
    xing = b"Info" + (0x0F).to_bytes(4, "big") + frames.to_bytes(4, "big") + size.to_bytes(4, "big") + toc + bytes(4)
    lame = (b"LAME3.100" + bytes(12) + ((ENCODER_DELAY << 12) | padding).to_bytes(3, "big") + bytes(4)
            + size.to_bytes(4, "big") + music_crc.to_bytes(2, "big"))
    frame[INFO_OFFSET : INFO_OFFSET + len(xing)] = xing
    frame[LAME_TAG_OFFSET : LAME_TAG_OFFSET + len(lame)] = lame
    frame[LAME_TAG_OFFSET + len(lame) : LAME_TAG_OFFSET + len(lame) + 2] = crc16(bytes(frame[:TAG_CRC_SPAN])).to_bytes(2, "big")
    return bytes(frame)


