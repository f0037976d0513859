"""The synthetic landing's manifest: the public demo key is used only on drops `synth` wrote.

`sim_pipeline.synthetic.generate` writes ``synthetic-manifest.json`` at the landing folder's
root: the generator's arguments and the SHA-256 of every drop it wrote. Demo mode (the public
demo key) is allowed only on a landing folder whose every drop (``*/*/*.csv``) is listed there
with the same hash; a subset is fine (a project may take some months), anything else is not: a
drop changed, added or dropped in from real data, or no manifest at all. `sim-pipeline run`,
`backfill` and `ui`, and the pipeline's own key loading, refuse demo mode otherwise and say why.

What it is and is not: a guard against the demo key meeting real data by accident (a real
landing folder with no key set, a synthetic folder someone copied real drops into). It is not a
defence against an operator who means to misuse the demo key: the manifest is public and anyone
can write one; such an operator could equally publish their own key.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable
from pathlib import Path

MANIFEST_NAME = "synthetic-manifest.json"
GENERATOR = "sim_pipeline.synthetic"
DROP_GLOB = "*/*/*.csv"


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def write_manifest(landing: Path, drops: Iterable[Path], arguments: dict[str, object]) -> Path:
    """Record the drops the generator just wrote under ``landing`` with their hashes."""
    files = {p.relative_to(landing).as_posix(): _sha256(p) for p in sorted(drops)}
    path = landing / MANIFEST_NAME
    body = {"generator": GENERATOR, "arguments": arguments, "files": files}
    path.write_text(json.dumps(body, indent=1, sort_keys=True) + "\n")
    return path


# (landing, manifest stat, drops' (name, size, mtime, inode)) -> reason or None: the hashes
# are computed once per process while nothing changes (the pipeline loads its key per step)
_VERIFIED: dict[tuple[object, ...], str | None] = {}


def not_synthetic_reason(landing: Path) -> str | None:
    """None when every drop under ``landing`` is one the generator wrote (by its manifest);
    otherwise why not, naming a file (a landing-relative path, never its content)."""
    manifest = landing / MANIFEST_NAME
    try:
        mstat = manifest.stat()
    except OSError:
        return f"{landing} has no {MANIFEST_NAME} (it was not written by `sim-pipeline synth`)"
    drops = sorted(landing.glob(DROP_GLOB))
    stamp: list[tuple[str, int, int, int]] = []
    for p in drops:
        st = os.stat(p)
        stamp.append((p.relative_to(landing).as_posix(), st.st_size, st.st_mtime_ns, st.st_ino))
    memo_key = (str(landing), mstat.st_size, mstat.st_mtime_ns, mstat.st_ino, tuple(stamp))
    if memo_key in _VERIFIED:
        return _VERIFIED[memo_key]
    reason = _check(landing, manifest, [name for name, *_ in stamp])
    _VERIFIED[memo_key] = reason
    return reason


def _check(landing: Path, manifest: Path, drops: list[str]) -> str | None:
    try:
        body = json.loads(manifest.read_text())
        files = body["files"]
        ok = body.get("generator") == GENERATOR and isinstance(files, dict)
    except (OSError, ValueError, KeyError, TypeError):
        ok = False
    if not ok:
        return f"{manifest} is not a manifest written by `sim-pipeline synth`"
    for name in drops:
        expected = files.get(name)
        if expected is None:
            return f"{name} is not in {MANIFEST_NAME} (not a drop `sim-pipeline synth` wrote)"
        if _sha256(landing / name) != expected:
            return f"{name} differs from the drop `sim-pipeline synth` wrote (its hash changed)"
    return None
