"""Which landing drops are new or changed since the last look (used by the landing sensor).

The state of the landing folder is a mapping ``file label -> FileState`` (size, modification
time, content hash). A file is re-hashed only when its size or mtime changed, and it counts as
changed only when its content hash differs, so touching a file or re-copying identical content
never triggers ingest again.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from sim_pipeline.landing.layout import Landing
from sim_pipeline.sources import SOURCE_TABLES, SourceTable

HASH_CHARS = 20  # of the SHA-256 hex digest; enough to tell versions of one file apart


@dataclass(frozen=True)
class FileState:
    size: int
    mtime_ns: int
    sha: str

    def to_json(self) -> list[object]:
        return [self.size, self.mtime_ns, self.sha]


def scan_landing(
    landing_dir: Path,
    months: list[str],
    previous: dict[str, FileState] | None = None,
    tables: Iterable[SourceTable] = SOURCE_TABLES,
) -> dict[str, FileState]:
    """State of every expected drop of ``tables`` present for ``months`` (YYYY-MM), keyed by
    file label."""
    previous = previous or {}
    landing = Landing(landing_dir)
    state: dict[str, FileState] = {}
    for drop in landing.present(months, tables):
        try:
            st = drop.path.stat()
        except OSError:  # a dangling link: staging rejects it
            st = drop.path.lstat()
        old = previous.get(drop.label)
        if old and old.size == st.st_size and old.mtime_ns == st.st_mtime_ns:
            state[drop.label] = old
        else:
            state[drop.label] = FileState(
                st.st_size, st.st_mtime_ns, landing.sha256(drop)[:HASH_CHARS]
            )
    return state


def changed_drops(
    previous: dict[str, FileState], current: dict[str, FileState]
) -> dict[str, dict[str, list[str]]]:
    """{month: {asset_name: [changed file labels]}} for new files and files with new content."""
    by_table = {t.file_name(): t.asset_name for t in SOURCE_TABLES}
    out: dict[str, dict[str, list[str]]] = {}
    for label, st in sorted(current.items()):
        old = previous.get(label)
        if old is not None and old.sha == st.sha:
            continue
        _source, month, file_name = Landing.parse(label)
        out.setdefault(month, {}).setdefault(by_table[file_name], []).append(label)
    return out


def encode_cursor(state: dict[str, FileState]) -> str:
    return json.dumps({k: v.to_json() for k, v in sorted(state.items())}, separators=(",", ":"))


def decode_cursor(cursor: str | None) -> dict[str, FileState]:
    if not cursor:
        return {}
    return {k: FileState(int(v[0]), int(v[1]), str(v[2])) for k, v in json.loads(cursor).items()}


def run_key(month: str, labels: list[str], current: dict[str, FileState]) -> str:
    """Stable id of one request: the month plus the exact versions of its changed files."""
    versions = ",".join(f"{label}@{current[label].sha}" for label in sorted(labels))
    return f"{month}:{hashlib.sha256(versions.encode()).hexdigest()[:16]}"


# File states seen by this process, per landing folder: a file whose size and modification time
# are unchanged is not hashed again by the next observation.
_SEEN: dict[str, dict[str, FileState]] = {}


def drop_versions(landing_dir: Path, table: SourceTable, months: list[str]) -> dict[str, str]:
    """{month: version} of one table's drops: a hash of each present drop's label and content
    hash, so a new, changed or removed provider file gives the month a new version and a
    touched or re-copied one does not. Months without any drop of the table are left out."""
    known = _SEEN.setdefault(str(landing_dir), {})
    state = scan_landing(landing_dir, months, known, tables=[table])
    known.update(state)
    by_month: dict[str, list[str]] = {}
    for label, st in sorted(state.items()):
        by_month.setdefault(Landing.parse(label)[1], []).append(f"{label}@{st.sha}")
    return {
        m: hashlib.sha256("\n".join(parts).encode()).hexdigest()[:HASH_CHARS]
        for m, parts in by_month.items()
    }


def file_version(path: Path) -> str | None:
    """A reference file's content hash (HASH_CHARS hex), None when it is missing."""
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()[:HASH_CHARS]
    except FileNotFoundError:
        return None
