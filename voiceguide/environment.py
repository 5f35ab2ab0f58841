"""What a run of voiceguide is given from outside: its folders, its error stream, whether a person watches it,
and which copies of ffmpeg and espeak-ng to run.

The command line builds one from the process (Environment.from_os); tests and
scripts build their own. No other module reads the process's environment
variables or the user's home folder.
"""

from __future__ import annotations

import functools
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from voiceguide.cache import Cache
    from voiceguide.tools import Tools

CACHE_ENV = "VOICEGUIDE_CACHE_DIR"
BUNDLED_ENV = "VOICEGUIDE_BUNDLED"  # 1: run the ffmpeg and espeak-ng shipped in wheels, even where the system has its own


@dataclass(frozen=True)
class Environment:
    cache_dir: Path  # every stored thing (see cache.py) lives under it
    output_dir: Path = Path("output")  # where sessions go when no path is given
    bundled: bool = False
    stderr: TextIO = field(default_factory=lambda: sys.stderr)
    is_terminal: bool = False  # stderr is a person's terminal: a progress bar is welcome there

    @classmethod
    def from_os(cls, cache_dir: Path | None = None) -> Environment:
        """The environment of this process: ``cache_dir``, or $VOICEGUIDE_CACHE_DIR, or the user's cache folder."""
        configured = cache_dir or (Path(os.environ[CACHE_ENV]) if os.environ.get(CACHE_ENV) else None)
        if configured is None:
            import platformdirs

            configured = Path(platformdirs.user_cache_dir("voiceguide", appauthor=False))
        return cls(cache_dir=configured, bundled=os.environ.get(BUNDLED_ENV, "") not in ("", "0"),
                   stderr=sys.stderr, is_terminal=sys.stderr.isatty())

    @functools.cached_property
    def cache(self) -> Cache:
        from voiceguide.cache import Cache

        # A cache that cannot be written is said once, here; the run goes on without it.
        return Cache(self.cache_dir, note=lambda text: print(text, file=self.stderr, flush=True))

    @functools.cached_property
    def tools(self) -> Tools:
        from voiceguide.tools import Tools

        return Tools(self.bundled, self.cache)

    def child_env(self) -> dict[str, str]:
        """The environment variables for a helper process of ours (a speech worker), so it runs the same tools."""
        return {**os.environ, BUNDLED_ENV: "1" if self.bundled else "0", CACHE_ENV: str(self.cache_dir)}
