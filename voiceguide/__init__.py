"""voiceguide: turn a scripted routine into one MP3 that talks you through it."""

__version__ = "0.1.0"
