"""The synthetic calendar: days are integers counted from 2016-01-01, months are 0..64.

The extract covers 2016-01-01 .. 2021-05-31 (65 calendar months). Every helper works on numpy
arrays so event tables of any size are formatted without Python loops.
"""

from __future__ import annotations

import numpy as np

START = np.datetime64("2016-01-01", "D")
END = np.datetime64("2021-05-31", "D")
N_DAYS = int((END - START).astype(np.int64)) + 1
MONTHS = np.arange(np.datetime64("2016-01", "M"), np.datetime64("2021-06", "M"))
N_MONTHS = len(MONTHS)
MONTH_LABELS: tuple[str, ...] = tuple(str(m) for m in MONTHS)
# First day of each month (and a sentinel = N_DAYS), as day numbers.
MONTH_START = np.append((MONTHS.astype("datetime64[D]") - START).astype(np.int64), N_DAYS)
DAYS_IN_MONTH = np.diff(MONTH_START)
DAY_MONTH = np.repeat(np.arange(N_MONTHS), DAYS_IN_MONTH)
SECONDS_PER_DAY = 86_400
NEVER = 10**7  # a day number far beyond the window ("no such date")


def month_index(label: str) -> int:
    """0-based month number of a 'YYYY-MM' label inside the window."""
    return MONTH_LABELS.index(label)


def day_number(date: str) -> int:
    """Day number of a 'YYYY-MM-DD' date (may fall outside the window)."""
    return int((np.datetime64(date, "D") - START).astype(np.int64))


def month_of(days: np.ndarray) -> np.ndarray:
    """Month number of each day number (days inside the window)."""
    return np.searchsorted(MONTH_START, np.asarray(days), side="right") - 1


def month_end(month: np.ndarray | int) -> np.ndarray:
    """Last day number of each month."""
    return MONTH_START[np.asarray(month) + 1] - 1


def fmt_dates(days: np.ndarray, present: np.ndarray | None = None) -> np.ndarray:
    """'YYYY-MM-DD' strings (object array); '' where ``present`` is False."""
    days = np.asarray(days, dtype=np.int64)
    out = np.datetime_as_string(START + days.astype("timedelta64[D]"), unit="D").astype(object)
    if present is not None:
        out[~np.asarray(present, dtype=bool)] = ""
    return out


def normalise(days: np.ndarray, secs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Carry whole days out of a seconds-of-day value that may exceed one day."""
    secs = np.asarray(secs, dtype=np.int64)
    return np.asarray(days, dtype=np.int64) + secs // SECONDS_PER_DAY, secs % SECONDS_PER_DAY


def fmt_times(secs: np.ndarray, present: np.ndarray | None = None) -> np.ndarray:
    """'HH:MM:SS' strings for seconds of the day."""
    secs = np.asarray(secs, dtype=np.int64) % SECONDS_PER_DAY
    stamp = np.datetime64("2000-01-01T00:00:00", "s") + secs.astype("timedelta64[s]")
    out = np.array([s[11:19] for s in np.datetime_as_string(stamp, unit="s")], dtype=object)
    if present is not None:
        out[~np.asarray(present, dtype=bool)] = ""
    return out


def fmt_datetimes(
    days: np.ndarray, secs: np.ndarray, present: np.ndarray | None = None
) -> np.ndarray:
    """'YYYY-MM-DD HH:MM:SS' strings (seconds may run past midnight: carried into the day)."""
    d, s = normalise(days, secs)
    stamp = (START + d.astype("timedelta64[D]")).astype("datetime64[s]") + s.astype(
        "timedelta64[s]"
    )
    raw = np.datetime_as_string(stamp, unit="s")
    out = np.char.replace(raw, "T", " ").astype(object)
    if present is not None:
        out[~np.asarray(present, dtype=bool)] = ""
    return out


def years_between(birth_days: np.ndarray, days: np.ndarray) -> np.ndarray:
    """Completed years of age on ``days`` for people born on ``birth_days`` (calendar exact)."""
    b = START + np.asarray(birth_days, dtype=np.int64).astype("timedelta64[D]")
    d = START + np.asarray(days, dtype=np.int64).astype("timedelta64[D]")
    by = b.astype("datetime64[Y]").astype(np.int64)
    dy = d.astype("datetime64[Y]").astype(np.int64)
    # compare month/day rather than day-of-year so leap years do not shift birthdays
    bm = b.astype("datetime64[M]").astype(np.int64) % 12
    dm = d.astype("datetime64[M]").astype(np.int64) % 12
    bd = (b - b.astype("datetime64[M]").astype("datetime64[D]")).astype(np.int64)
    dd = (d - d.astype("datetime64[M]").astype("datetime64[D]")).astype(np.int64)
    before = (dm < bm) | ((dm == bm) & (dd < bd))
    return dy - by - before.astype(np.int64)
