"""The builds whose MP3 bytes are recorded (tests/golden/mp3-hashes.json), and what those bytes depend on.

The bytes depend on the tool chain as well as on voiceguide: the espeak-ng
library, the ffmpeg that encodes, Piper and onnxruntime, numpy. Hashes are
kept per tool chain; a chain with no record cannot be compared.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HASHES = ROOT / "tests" / "golden" / "mp3-hashes.json"


def builds() -> dict[str, list[str]]:
    """Name → the arguments of `voiceguide build` (the routine first)."""
    found = {path.stem: [str(path)] for path in sorted((ROOT / "scripts").glob("*.yaml"))}
    sciatica = str(ROOT / "scripts" / "sciatica-self-massage.yaml")
    found["sciatica-held-longer"] = [sciatica, "--hold", "tennis-balls=90s", "--hold-scale", "0.5"]
    found["rain"] = [str(ROOT / "tests" / "golden" / "rain.yaml")]
    if _version("piper-tts") is not None:
        found["sciatica-piper"] = [sciatica, "--engine", "piper"]
    return found


def sha256_of_build(args: list[str], folder: Path) -> str:
    """Build in a fresh cache under ``folder`` and return the MP3's SHA-256."""
    cache = folder / f"cache-{hashlib.sha256(json.dumps(args).encode()).hexdigest()[:8]}"
    target = folder / "session.mp3"
    env = dict(os.environ, VOICEGUIDE_CACHE_DIR=str(cache))
    done = subprocess.run([sys.executable, "-m", "voiceguide", "build", *args, "--quiet", "--cache-dir", str(cache),
                           "-o", str(target)], env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"build {args} failed: {done.stderr}")
    return hashlib.sha256(target.read_bytes()).hexdigest()


def identity() -> dict:
    """The tool chain of this machine as it decides the bytes, and a short key for it."""
    code = ("from voiceguide.environment import Environment; tools = Environment.from_os().tools;"
            "tools.load_espeak(); print(tools.encoder);"
            "print([l.split()[-1] for l in open('/proc/self/maps') if 'libespeak-ng' in l][0])")
    with tempfile.TemporaryDirectory() as cache:
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                              env=dict(os.environ, VOICEGUIDE_CACHE_DIR=cache))
    ffmpeg, espeak = done.stdout.split()
    tools = {
        "ffmpeg": _file_digest(ffmpeg),
        "espeak-ng": _file_digest(espeak),
        "numpy": _version("numpy"),
        "piper-tts": _version("piper-tts"),
        "onnxruntime": _version("onnxruntime"),
    }
    key = hashlib.sha256(json.dumps(tools, sort_keys=True).encode()).hexdigest()[:16]
    return {"key": key, "tools": tools}


def _file_digest(path: str) -> str:
    real = os.path.realpath(path)
    digest = hashlib.sha256()
    with open(real, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:16]


def _version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None
