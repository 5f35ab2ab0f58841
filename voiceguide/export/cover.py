"""Cover art for the lock screen: a small generated image with the routine's title, or the routine's own.

Kept well under 300 KB (Android skips tags over 3 MB, and large art slows
players); JPEG at a modest size does that for photos and drawings alike.
"""

from __future__ import annotations

import functools
import hashlib
import io
import json
import textwrap
from pathlib import Path
from typing import TYPE_CHECKING

from voiceguide import tools
from voiceguide.errors import InputError, Location

if TYPE_CHECKING:
    from PIL import Image

    from voiceguide.cache import Cache

SIZE = 600
MAX_BYTES = 300_000
# The cache's kind for drawn covers; bumped whenever the drawing changes.
COVERS = "covers-1"
TOP = (36, 59, 85)
BOTTOM = (122, 160, 150)


def generated(title: str, cache: Cache | None = None) -> bytes:
    """A calm gradient with the title in large type, as JPEG bytes; the same title gives the same bytes.

    Drawn once and kept in ``cache``: loading Pillow, drawing and compressing take a sixteenth of a second, as
    long as the rest of a build that has every clip.
    """
    if cache is None:
        return _drawn(title)
    # Another Pillow may draw other bytes: the packages installed are part of the key.
    key = hashlib.sha256(json.dumps([title, tools.installed()]).encode()).hexdigest()
    stored = cache.arrays(COVERS, key)
    if stored is not None and "jpeg" in stored:
        return stored["jpeg"].tobytes()
    drawn = _drawn(title)
    try:
        import numpy as np

        cache.put_arrays(COVERS, key, {"jpeg": np.frombuffer(drawn, dtype=np.uint8)})
    except OSError:
        pass  # a cache that cannot be written: drawn again next time
    return drawn


@functools.lru_cache(maxsize=4)  # a build draws it ahead, while the engine speaks (see api.plan_session)
def _drawn(title: str) -> bytes:
    from PIL import Image, ImageDraw, ImageFont

    image = Image.new("RGB", (SIZE, SIZE))
    draw = ImageDraw.Draw(image)
    for row in range(SIZE):
        mix = row / (SIZE - 1)
        draw.line([(0, row), (SIZE, row)], fill=tuple(round(a + (b - a) * mix) for a, b in zip(TOP, BOTTOM)))
    font = ImageFont.load_default(size=54)
    lines = textwrap.wrap(title, width=16)[:5] or [" "]
    heights = [draw.textbbox((0, 0), line, font=font)[3] for line in lines]
    y: float = (SIZE - sum(heights) - 14 * (len(lines) - 1)) // 2
    for line, height in zip(lines, heights):
        width = draw.textlength(line, font=font)
        draw.text(((SIZE - width) / 2, y), line, font=font, fill=(245, 242, 232))
        y += height + 14
    small = ImageFont.load_default(size=22)
    draw.text((SIZE / 2 - draw.textlength("voiceguide", font=small) / 2, SIZE - 48), "voiceguide",
              font=small, fill=(230, 236, 230))
    return _jpeg(image)


def from_file(path: Path, where: Location) -> bytes:
    """The routine's own cover, made small enough; InputError if it is not an image."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as opened:
            image = opened.convert("RGB")
    except (OSError, UnidentifiedImageError) as error:
        raise InputError(f"{where}: cover {path}: not an image ({error})") from None
    data = path.read_bytes()
    if len(data) <= MAX_BYTES and path.suffix.lower() in (".jpg", ".jpeg", ".png"):
        return data
    image.thumbnail((SIZE, SIZE))
    return _jpeg(image)


def mime(data: bytes) -> str:
    return "image/png" if data.startswith(b"\x89PNG") else "image/jpeg"


def _jpeg(image: Image.Image) -> bytes:
    for quality in (88, 75, 60, 45):
        out = io.BytesIO()
        image.save(out, "JPEG", quality=quality, optimize=True)
        if out.tell() <= MAX_BYTES:
            break
    return out.getvalue()
