"""voiceguide: turn a scripted routine into one MP3 that talks you through it.

The Python API (see api.py) is reachable from here: ``voiceguide.load``,
``adjust``, ``plan_session``, ``build_session``. It is imported on first use, so that
``import voiceguide.mp3`` loads the MP3 writer and nothing of the stages before it.
"""

from __future__ import annotations

# Not imported from typing, which takes milliseconds to load: the command line's front comes through here before
# it takes Ctrl-C in hand (see voiceguide.cli), and type checkers know the name.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__version__ = "0.1.0"

_API = ("load", "load_profile", "adjust", "plan_session", "build_session", "Session", "Built", "DEFAULT_LOUDNESS", "DEFAULT_BITRATE")
__all__ = ["__version__", *_API, "Environment"]


def __getattr__(name: str) -> Any:
    if name in _API:
        from voiceguide import api

        return getattr(api, name)
    if name == "Environment":
        from voiceguide.environment import Environment

        return Environment
    raise AttributeError(f"module 'voiceguide' has no attribute {name!r}")
