"""Which landing drops are new or changed since the last look (used by the landing sensor).

The state of the landing folder is a mapping ``file label -> FileState`` (size, modification
time, content hash). A file is re-hashed only when its size or mtime changed, and it counts as
changed only when its content hash differs, so touching a file or re-copying identical content
never triggers ingest again.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from sim_pipeline.sources import SOURCE_TABLES
from sim_pipeline.sources.reader import drop_sha256

HASH_CHARS = 20  # of the SHA-256 hex digest; enough to tell versions of one file apart


@dataclass(frozen=True)
class FileState:
    size: int
    mtime_ns: int
    sha: str

    def to_json(self) -> list[object]:
        return [self.size, self.mtime_ns, self.sha]


def _hash(path: Path, landing_dir: Path) -> str:
    """The drop's hash as staging will see it (`drop_sha256`: a FIFO or a link out of the
    landing folder is never opened)."""
    return drop_sha256(path, landing_dir)[:HASH_CHARS]


def scan_landing(
    landing_dir: Path, months: list[str], previous: dict[str, FileState] | None = None
) -> dict[str, FileState]:
    """State of every expected drop present for ``months`` (YYYY-MM), keyed by file label."""
    previous = previous or {}
    state: dict[str, FileState] = {}
    month_set = set(months)
    for table in SOURCE_TABLES:
        for source in table.providers:
            base = landing_dir / source
            if not base.is_dir():
                continue
            for month_dir in sorted(base.iterdir()):
                if month_dir.name not in month_set:
                    continue
                path = month_dir / table.file_name()
                if not (path.exists() or path.is_symlink()) or path.is_dir():
                    continue
                label = f"{source}/{month_dir.name}/{table.file_name()}"
                try:
                    st = path.stat()
                except OSError:  # a dangling link: staging rejects it
                    st = path.lstat()
                old = previous.get(label)
                if old and old.size == st.st_size and old.mtime_ns == st.st_mtime_ns:
                    state[label] = old
                else:
                    state[label] = FileState(st.st_size, st.st_mtime_ns, _hash(path, landing_dir))
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
        _source, month, file_name = label.split("/")
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
