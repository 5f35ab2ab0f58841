"""Record the MP3 bytes every example builds to, for the tool chain of this machine.

    python tests/golden/record.py            # add or replace this tool chain's hashes

Run it only when a change is meant to change the sound (and say so in the
commit); test_golden.py then holds every later change to the same bytes.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from golden_builds import HASHES, builds, identity, sha256_of_build  # noqa: E402


def main() -> None:
    import tempfile

    known = json.loads(HASHES.read_text()) if HASHES.exists() else {}
    chain = identity()
    with tempfile.TemporaryDirectory() as folder:
        found = {name: sha256_of_build(args, Path(folder)) for name, args in builds().items()}
    known[chain["key"]] = {"tools": chain["tools"], "mp3": found}
    HASHES.write_text(json.dumps(known, indent=2, sort_keys=True) + "\n")
    for name, digest in found.items():
        print(f"{digest[:16]}  {name}")


if __name__ == "__main__":
    main()
