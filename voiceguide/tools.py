"""Find the external programs voiceguide runs: ffmpeg and the espeak-ng library.

The system's copies are preferred; the ones shipped in the imageio-ffmpeg and
espeakng-loader wheels make a plain `pip install` work without root. An
environment that says ``bundled`` (VOICEGUIDE_BUNDLED=1) takes the shipped
copies, which tells a system problem from one of ours.
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import importlib.util
import json
import os
import shutil
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from voiceguide.errors import AudioError, EngineError

if TYPE_CHECKING:
    from voiceguide.cache import Cache

# Where pyttsx3 looks for espeak-ng on Linux, in its order.
_ESPEAK_NAMES = ("libespeak-ng.so.1", "/usr/local/lib/libespeak-ng.so.1")


class Tools:
    """The programs of one environment: the system's, or with ``bundled`` the ones shipped in wheels; answers
    that take a process start are kept in ``cache``."""

    def __init__(self, bundled: bool, cache: Cache):
        self.bundled = bundled
        self.cache = cache

    @functools.cached_property
    def ffmpeg(self) -> str:
        """Path of the ffmpeg that reads sound files."""
        found = (None if self.bundled else shutil.which("ffmpeg")) or self._bundled_ffmpeg
        if found is None:
            raise AudioError("ffmpeg not found: install it, or `pip install imageio-ffmpeg`")
        return found

    @functools.cached_property
    def encoder(self) -> str:
        """Path of the ffmpeg whose LAME encodes sessions: the one shipped in imageio-ffmpeg, wherever it runs.

        The MP3 writer puts frames encoded apart side by side; that gives
        the frames of one whole encode only from a LAME that makes each frame
        from the sound near it alone, which this one does (tested). Others
        may not: Debian's ffmpeg 5.1 encodes the first frame of a word after
        a silence differently when it has not heard the word before (up to
        2.7 times the coding noise there). Sessions also come out the same,
        byte for byte, on every machine with the same speech.
        """
        return self._bundled_ffmpeg or self.ffmpeg  # without imageio-ffmpeg: the one ffmpeg there is

    @functools.cached_property
    def _bundled_ffmpeg(self) -> str | None:
        """imageio-ffmpeg's ffmpeg, or None where imageio-ffmpeg is not installed.

        Finding it imports imageio-ffmpeg and runs its ffmpeg once to see
        that it works, a tenth of a second that every build would wait for:
        the answer is kept, for this installation of imageio-ffmpeg (its
        ``__init__.py``: where, how long, when written).
        """
        spec = importlib.util.find_spec("imageio_ffmpeg")
        if spec is None or spec.origin is None:
            return None

        def ask() -> str:
            import imageio_ffmpeg

            return str(imageio_ffmpeg.get_ffmpeg_exe())

        try:
            if os.environ.get("IMAGEIO_FFMPEG_EXE"):  # named by the user: imageio-ffmpeg takes it as it is
                return ask()
            stat = Path(spec.origin).stat()
            return self.cache.answer("ffmpeg", [spec.origin, stat.st_size, stat.st_mtime_ns], ask, os.path.isfile)
        except (ImportError, RuntimeError) as error:
            raise AudioError(f"ffmpeg not found: {error}") from None

    def system_espeak(self) -> str | None:
        """The system's espeak-ng library as pyttsx3 would open it, or None (always None when bundled).

        The dynamic loader is asked, as pyttsx3 asks it: that takes a
        millisecond, where ctypes.util.find_library runs ldconfig, gcc and ld
        (a tenth of a second of work in every speech worker).
        """
        if self.bundled:
            return None
        for name in _ESPEAK_NAMES:
            try:
                ctypes.CDLL(name)
            except OSError:
                continue
            return name
        return None

    def load_espeak(self) -> str:
        """Make libespeak-ng loadable for pyttsx3; return 'system' or 'bundled'.

        Must run before pyttsx3 is imported: pyttsx3 opens the library by name at
        import time, and a copy already loaded with RTLD_GLOBAL answers to that name.
        """
        if self.system_espeak():
            return "system"
        try:
            import espeakng_loader
        except ImportError:
            raise EngineError(
                "espeak-ng not found: install it (e.g. `apt install espeak-ng`) or `pip install espeakng-loader`"
            ) from None
        # Without its data path espeak-ng calls exit(1) inside initialisation; the variable is read by the
        # library itself, in this process.
        os.environ["ESPEAK_DATA_PATH"] = espeakng_loader.get_data_path()
        ctypes.CDLL(espeakng_loader.get_library_path(), mode=ctypes.RTLD_GLOBAL)
        return "bundled"


def installed() -> str:
    """A digest of the packages Python finds here (their metadata folders, as they are now).

    It changes whenever a package is installed, upgraded or removed, so an
    answer about them kept on disk (see remembered) is keyed by it: reading
    the folders takes a millisecond, importing importlib.metadata forty.
    """
    found = []
    for entry in sys.path:
        try:
            with os.scandir(entry or ".") as listing:
                for item in listing:
                    if item.name.endswith((".dist-info", ".egg-info")):
                        found.append((entry, item.name, item.stat().st_mtime_ns))
        except OSError:
            continue  # a zip file, or a folder that is not there
    return hashlib.sha256(json.dumps(sorted(found)).encode()).hexdigest()[:32]


def release_freed_memory() -> None:
    """Hand the memory freed so far back to the system, where the C library keeps it for reuse (glibc).

    Making the clips and chimes frees far more than it keeps, and the
    encoders started next would count on top of what glibc holds on to:
    15 MB at the peak of a build.
    """
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL(None).malloc_trim(0)
        except (OSError, AttributeError):
            pass  # another C library: nothing to hand back this way
