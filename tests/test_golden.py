"""The same MP3 bytes as recorded: a change that moves code must not move a single byte of a session.

Each example is built in a fresh cache and its SHA-256 compared with the one
recorded for this tool chain (tests/golden/record.py). Changes meant to change
the sound record anew, in the same commit.
"""

from __future__ import annotations

import json

import pytest
from golden_builds import HASHES, builds, identity, sha256_of_build

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def recorded() -> dict[str, str]:
    chain = identity()
    known = json.loads(HASHES.read_text())
    if chain["key"] not in known:
        pytest.skip(f"no MP3 hashes recorded for this tool chain {chain['tools']}: run tests/golden/record.py")
    return known[chain["key"]]["mp3"]


@pytest.mark.parametrize("name", sorted(builds()))
def test_same_bytes_as_recorded(name: str, recorded: dict[str, str], tmp_path) -> None:
    assert name in recorded, f"{name} has no recorded hash: run tests/golden/record.py"
    assert sha256_of_build(builds()[name], tmp_path) == recorded[name]
