"""When each synthetic drop "arrived": a deterministic, seeded modification time per file.

Real drops arrive over the days after a month closes; the coverage asset reads a landing file's
modification time as its arrival. A provider sends all its tables for a month together: the
drop of (provider, month) arrives on a day between ``FIRST_DAY`` and ``LAST_DAY`` of the month
after, between 08:00 and 18:00 Europe/London, and each table follows within the hour. Every
drop is therefore on time under the default deadline (day 20 of the month after; see
`sim_pipeline.quality.coverage.DueRule`).

Times come from a hash of (seed, provider, month, table), not from the generator's random
streams, so file contents are exactly what they were before arrival times existed.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pandas as pd

from sim_pipeline.landing.layout import Landing

FIRST_DAY = 3
LAST_DAY = 18
FIRST_HOUR = 8
HOURS = 10  # 08:00 to 18:00
TIMEZONE = "Europe/London"


def _unit(*parts: object) -> float:
    """A deterministic number in [0, 1) from ``parts``."""
    digest = hashlib.sha256("|".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def arrival_time(seed: int, provider: str, month: str, table: str) -> pd.Timestamp:
    """The arrival (UTC) of ``provider``'s drop of ``table`` for ``month`` (YYYY-MM)."""
    p = pd.Period(month, "M") + 1
    day = FIRST_DAY + int(_unit(seed, provider, month, "day") * (LAST_DAY - FIRST_DAY + 1))
    minute = int(_unit(seed, provider, month, "minute") * HOURS * 60)
    local = pd.Timestamp(p.year, p.month, day, FIRST_HOUR) + pd.Timedelta(minutes=minute)
    local += pd.Timedelta(seconds=int(_unit(seed, provider, month, table) * 3600))
    return local.tz_localize(TIMEZONE).tz_convert("UTC")


def drop_paths(out: Path, months: tuple[str, ...]) -> list[tuple[Path, str, str, str]]:
    """(path, provider, month, table) of every drop the generator writes that exists under
    ``out``."""
    return [
        (d.path, d.source, d.month, d.table.table)
        for d in Landing(out).expected(months)
        if d.path.is_file()
    ]


def stamp_arrivals(out: Path, seed: int, months: tuple[str, ...]) -> int:
    """Set every drop's modification time under ``out`` to its arrival; returns files stamped."""
    drops = drop_paths(out, months)
    for path, provider, month, table in drops:
        ns = arrival_time(seed, provider, month, table).value
        os.utime(path, ns=(ns, ns))
    return len(drops)
