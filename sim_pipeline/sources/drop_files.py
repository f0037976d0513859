"""A drop as a file on disk: which drop paths staging may open (a regular file inside the
landing folder, within the size cap), its bytes and its SHA-256, and the data lines of a file
too large to read."""

from __future__ import annotations

import hashlib
import stat
from pathlib import Path

from sim_pipeline.sources.reader import DropFileError

# Largest drop read (SIM_MAX_DROP_BYTES): a month of one provider's table at national volume is
# well under 1 GiB; a bigger file is a wrong export, not data.
DEFAULT_MAX_DROP_BYTES = 2 * 1024**3


def count_data_lines(path: Path, chunk_bytes: int = 1 << 20) -> list[int]:
    """`data_line_numbers` of a file read 1 MiB at a time (for a file over the size cap):
    the numbers of the non-empty physical lines after the first, in bounded memory."""
    numbers: list[int] = []
    number, content, carry = 1, False, b""
    with path.open("rb") as fh:
        while True:
            chunk = fh.read(chunk_bytes)
            data = carry + chunk
            if chunk and data.endswith(b"\r"):
                data, carry = data[:-1], b"\r"  # a CRLF may straddle two reads
            else:
                carry = b""
            parts = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n").split(b"\n")
            for part in parts[:-1]:  # each ends a line
                if (content or part) and number > 1:
                    numbers.append(number)
                number, content = number + 1, False
            content = content or bool(parts[-1])
            if not chunk:
                break
    if content and number > 1:
        numbers.append(number)
    return numbers


def check_drop_path(path: Path, landing_dir: Path, label: str, max_bytes: int | None) -> Path:
    """The file behind a drop path when staging may read it: a regular file inside the landing
    folder (a link may point only inside it), within ``max_bytes``. Otherwise `DropFileError`
    (nothing is opened, so a FIFO cannot hang the run)."""
    real = path.resolve()
    if path.is_symlink() and not real.is_relative_to(landing_dir.resolve()):
        raise DropFileError(
            label, "is a link to a file outside the landing folder; not read", "outside_landing"
        )
    mode = real.stat().st_mode
    if not stat.S_ISREG(mode):
        raise DropFileError(
            label, "is not a regular file (a FIFO, device or folder); not read", "not_regular_file"
        )
    size = real.stat().st_size
    if max_bytes is not None and size > max_bytes:
        raise DropFileError(
            label,
            f"is {size} bytes, over the cap of {max_bytes} (SIM_MAX_DROP_BYTES); not read",
            "file_too_large",
        )
    return real


def open_drop(path: Path, landing_dir: Path, label: str, max_bytes: int) -> bytes:
    """The bytes of a drop `check_drop_path` allows."""
    return check_drop_path(path, landing_dir, label, max_bytes).read_bytes()


def drop_sha256(path: Path, landing_dir: Path, max_bytes: int | None = None) -> str:
    """SHA-256 of a drop as staging sees it (read in 1 MiB pieces, so any size), or
    ``not-read:<rule>`` for a path staging will not open (a FIFO or device, a link out of the
    landing folder): what the ledger's ``file_sha256`` holds, so the landing reconciles against
    it. An over-size file is hashed (staging hashes it too) unless ``max_bytes`` is given."""
    try:
        check_drop_path(path, landing_dir, path.name, max_bytes=max_bytes)
    except DropFileError as exc:
        return f"not-read:{exc.rule}"
    except OSError:
        return "not-read:not_regular_file"
    digest = hashlib.sha256()
    with path.resolve().open("rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()
