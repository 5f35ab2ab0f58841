"""The speech stage: clips.py makes and keeps a clip of every line spoken; engines/ are what speak them.

Nothing is imported here: a speech worker (engines/pyttsx3_worker.py) is a
module of this package, and starting one loads only what it needs.
"""
