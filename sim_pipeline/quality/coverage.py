"""Coverage and timeliness of provider drops: expected, received, late, missing, resubmitted, and
volume anomalies, one row per (source, table_name, month). Plain functions, no Dagster.

Inputs:

* the expected drops: every `SourceTable` x its providers x each month;
* the landing folder (`landing_drops`: `Landing.inventory` plus each file's
  modification time, which is taken as its arrival time);
* the ingest ledger (`file`, `file_sha256`, `rows_read`, ...);
* `landing_file_versions`, a persistent record of every distinct content (SHA-256) ever seen
  for a landing file (`record_versions` appends to it idempotently).

Assumptions, all configurable:

* `DueRule`: there is no contractual deadline in the reference material. The drop for month M
  is taken to be due at 00:00 Europe/London on day 20 of month M+1 (so by the end of the 19th),
  which is when `monthly_ingest_schedule` (06:00 on the 20th, "after the providers' drop
  deadline") expects every drop to be there.
* `VolumeRule`: a drop's rows_read is compared with the median of the previous 6 received months
  of the same provider table (the current month excluded); below 0.5x it is `low`, above 2x
  `high`. It is judged only with at least 3 prior months and a trailing median of at least 30
  rows. Smaller counts halve or double by chance and ordinary growth: a programme register
  of a handful of people grows 2-8x in its first months, and for a Poisson count a halving
  has probability 1 in 200 at a mean of 20 but 1 in 1,000 at 30 (on the 800-person test set,
  a minimum of 20 flagged two ward-stay drops of 9-10 rows against a median of 20-21).
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from sim_pipeline.landing.layout import Landing
from sim_pipeline.quality.tables import DropCoverage, LandingFileVersions
from sim_pipeline.warehouse.model import columns

STATUSES = ("received", "late", "missing", "not_yet_due", "unexpected")

COVERAGE_COLUMNS = columns(DropCoverage)
VERSION_COLUMNS = columns(LandingFileVersions)
# what is read from ingest_ledger (other columns may come and go)
LEDGER_READ_COLUMNS = ["file", "source", "table_name", "month", "file_sha256", "rows_read"]
LANDING_COLUMNS = ["file", "source", "table_name", "month", "landing_sha256", "modified_at"]


def utc_text(ts: pd.Timestamp | dt.datetime) -> str:
    """A timestamp as ISO 8601 UTC text to the second, e.g. ``2019-02-14T09:31:07Z``."""
    t = pd.Timestamp(ts)
    t = t.tz_localize("UTC") if t.tzinfo is None else t.tz_convert("UTC")
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class DueRule:
    """When a month's drop is due: ``day`` of the month ``months_after`` M, at ``hour``:00 local
    time in ``timezone`` (default: 00:00 Europe/London on the 20th of M+1)."""

    day: int = 20
    hour: int = 0
    months_after: int = 1
    timezone: str = "Europe/London"

    def __post_init__(self) -> None:
        if not 1 <= self.day <= 28:
            raise ValueError("due day must be 1..28 (a day every month has)")
        if not 0 <= self.hour <= 23:
            raise ValueError("due hour must be 0..23")
        if self.months_after < 0:
            raise ValueError("months_after must be >= 0")

    def due_at(self, month: str) -> pd.Timestamp:
        """The deadline of month ``month``'s drop (UTC)."""
        p = pd.Period(month, "M") + self.months_after
        local = pd.Timestamp(p.year, p.month, self.day, self.hour).tz_localize(self.timezone)
        return local.tz_convert("UTC")

    def describe(self) -> str:
        after = {0: "the same month", 1: "the month after"}.get(
            self.months_after, f"{self.months_after} months after"
        )
        return (
            f"a month's drop is due by {self.hour:02d}:00 {self.timezone} on day {self.day} of "
            f"{after}"
        )


@dataclass(frozen=True)
class VolumeRule:
    """A drop's rows against the median of its provider table's previous ``window`` received
    months (at least ``min_history`` of them, median at least ``min_median_rows``)."""

    window: int = 6
    min_history: int = 3
    low: float = 0.5
    high: float = 2.0
    min_median_rows: float = 30

    def describe(self) -> str:
        return (
            f"rows_read below {self.low}x or above {self.high}x the median of the previous "
            f"{self.window} received months of the same provider table (judged with at least "
            f"{self.min_history} prior months and a median of at least {self.min_median_rows:g} "
            "rows)"
        )


# ----------------------------------------------------------------------------- inputs


def expected_drops(months: list[str]) -> pd.DataFrame:
    """Every drop the contracts expect: each table x each provider that sends it x each month."""
    rows = [(d.source, d.table.table, d.month, d.label) for d in Landing(Path()).expected(months)]
    return pd.DataFrame(rows, columns=["source", "table_name", "month", "file"])


def landing_drops(landing_dir: Path, months: list[str]) -> pd.DataFrame:
    """`Landing.inventory` plus each file's modification time (its arrival, UTC text)."""
    inv = Landing(landing_dir).inventory(months)
    inv["modified_at"] = [
        utc_text(dt.datetime.fromtimestamp((landing_dir / f).stat().st_mtime, dt.UTC))
        for f in inv["file"]
    ]
    return inv[LANDING_COLUMNS].reset_index(drop=True)


def unexpected_files(landing_dir: Path, months: list[str]) -> pd.DataFrame:
    """CSV files under ``<source>/<month>/`` that no contract expects (nobody ingests them),
    with their modification time."""
    rows = []
    for source, month, label, path in Landing(landing_dir).unexpected(months):
        mtime = dt.datetime.fromtimestamp(path.stat().st_mtime, dt.UTC)
        rows.append((source, path.stem, month, label, utc_text(mtime)))
    return pd.DataFrame(rows, columns=["source", "table_name", "month", "file", "modified_at"])


def _ledger_frame(ledger: pd.DataFrame) -> pd.DataFrame:
    if ledger is None or ledger.empty:
        return pd.DataFrame(columns=LEDGER_READ_COLUMNS)
    return ledger[LEDGER_READ_COLUMNS].drop_duplicates("file", keep="last").reset_index(drop=True)


# ----------------------------------------------------------------------------- versions


def record_versions(
    previous: pd.DataFrame, landing: pd.DataFrame, ledger: pd.DataFrame, seen_at: str
) -> tuple[pd.DataFrame, int]:
    """(the whole `landing_file_versions` table after this look, number of versions added).

    A version is a (file, SHA-256) pair, from the landing folder now or from the ingest ledger
    (a version ingested earlier, perhaps since replaced or removed from landing). A version
    already recorded is never recorded again and keeps its first_seen_at; its unknown
    modified_at / rows are filled in once known and never changed. Repeating a look with
    nothing new gives the same table.
    """
    prev = (
        pd.DataFrame(columns=VERSION_COLUMNS)
        if previous is None or previous.empty
        else previous[VERSION_COLUMNS].copy()
    )
    led = _ledger_frame(ledger)
    from_landing = landing.rename(columns={"landing_sha256": "file_sha256"})[
        ["file", "source", "table_name", "month", "file_sha256", "modified_at"]
    ]
    from_ledger = led[["file", "source", "table_name", "month", "file_sha256"]].assign(
        modified_at=None
    )
    seen = pd.concat([from_landing, from_ledger], ignore_index=True)
    seen = seen.drop_duplicates(["file", "file_sha256"], keep="first")  # landing first: has mtime
    rows_by_version = {
        (f, s): int(n)
        for f, s, n in led[["file", "file_sha256", "rows_read"]].itertuples(index=False)
        if pd.notna(n)
    }
    mtime_by_version = {
        (f, s): m
        for f, s, m in seen[["file", "file_sha256", "modified_at"]].itertuples(index=False)
        if isinstance(m, str)
    }
    known = set(zip(prev["file"], prev["file_sha256"], strict=True))
    is_new = [k not in known for k in zip(seen["file"], seen["file_sha256"], strict=True)]
    new = seen[np.array(is_new, dtype=bool)]
    new = new.assign(first_seen_at=seen_at, rows=None)
    out = pd.concat([prev, new[VERSION_COLUMNS]], ignore_index=True)
    keys = list(zip(out["file"], out["file_sha256"], strict=True))
    out["modified_at"] = [
        m if isinstance(m, str) else mtime_by_version.get(k)
        for m, k in zip(out["modified_at"], keys, strict=True)
    ]
    out["rows"] = pd.array(
        [
            r if pd.notna(r) else rows_by_version.get(k)
            for r, k in zip(out["rows"], keys, strict=True)
        ],
        dtype="Int64",
    )
    out = out.sort_values(["file", "first_seen_at", "modified_at", "file_sha256"], kind="stable")
    return out.reset_index(drop=True)[VERSION_COLUMNS], len(new)


# ----------------------------------------------------------------------------- coverage


def _trailing_median(coverage: pd.DataFrame, rule: VolumeRule) -> pd.Series:
    """Median rows_read of the previous ``rule.window`` received months of each provider table
    (current month excluded); NaN with fewer than ``rule.min_history`` of them."""
    have = coverage[coverage["rows_read"].notna()].sort_values("month")
    med = have.groupby(["source", "table_name"], sort=False)["rows_read"].transform(
        lambda s: (
            s.astype(float).shift(1).rolling(rule.window, min_periods=rule.min_history).median()
        )
    )
    return med.reindex(coverage.index)


def build_coverage(
    months: list[str],
    landing: pd.DataFrame,
    ledger: pd.DataFrame,
    versions: pd.DataFrame,
    as_of: pd.Timestamp | dt.datetime,
    due: DueRule = DueRule(),
    volume: VolumeRule = VolumeRule(),
    unexpected: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """One row per expected (source, table_name, month) drop, plus one per unexpected file.

    * received: the file is in the landing folder now, or the ledger has ingested it;
    * arrived_at: modification time of the earliest version seen (UTC), so a later resubmission
      does not make an on-time drop late; late = arrived after due_at; days_late (0 on time);
    * versions: distinct contents seen (landing_file_versions); resubmitted = more than one;
    * current_version_ingested: the ledger holds the landing file's current content;
    * rows_read (from the ledger), trailing_median_rows, volume_ratio, volume_anomaly (low/high);
    * status: received | late | missing (not received, past due) | not_yet_due | unexpected.
    """
    as_of = pd.Timestamp(as_of)
    as_of = as_of.tz_localize("UTC") if as_of.tzinfo is None else as_of.tz_convert("UTC")
    cov = expected_drops(months)
    cov.insert(4, "expected", True)
    if unexpected is not None and len(unexpected):
        extra = unexpected[["source", "table_name", "month", "file"]].assign(expected=False)
        cov = pd.concat([cov, extra], ignore_index=True)
        landing = pd.concat([landing, unexpected], ignore_index=True)
    led = _ledger_frame(ledger).set_index("file")
    land = landing.set_index("file") if len(landing) else pd.DataFrame(columns=LANDING_COLUMNS[1:])
    vers = (
        versions
        if versions is not None and len(versions)
        else pd.DataFrame(columns=VERSION_COLUMNS)
    )
    n_versions = vers.groupby("file")["file_sha256"].nunique()
    first_arrival = vers.dropna(subset=["modified_at"]).groupby("file")["modified_at"].min()

    files = cov["file"]
    in_landing = files.isin(land.index)
    in_ledger = files.isin(led.index)
    cov["received"] = in_landing | in_ledger | ~cov["expected"]
    arrived = files.map(first_arrival)
    arrived = arrived.where(arrived.notna(), files.map(land["modified_at"]) if len(land) else None)
    cov["arrived_at"] = arrived.where(cov["received"], None).astype(object)
    due_by_month = {m: due.due_at(m) for m in sorted(set(cov["month"]))}
    due_ts = cov["month"].map(due_by_month)
    cov["due_at"] = [utc_text(t) for t in due_ts]
    arrived_ts = pd.to_datetime(cov["arrived_at"], utc=True, errors="coerce")
    delay_days = (arrived_ts - pd.to_datetime(due_ts, utc=True)).dt.total_seconds() / 86400
    timed = arrived_ts.notna() & cov["expected"]  # an unexpected file has no deadline
    late = (delay_days > 0) & timed
    cov["late"] = pd.array(np.where(timed, late, None), dtype="boolean")
    cov["days_late"] = delay_days.clip(lower=0).round(2).where(timed)
    # a file ingested before this table recorded versions still counts as one version
    cov["versions"] = files.map(n_versions).fillna(cov["received"].astype(int)).astype(int)
    cov["resubmitted"] = cov["versions"] > 1
    current = files.map(land["landing_sha256"]) if len(land) else pd.Series(None, index=cov.index)
    ingested = files.map(led["file_sha256"]) if len(led) else pd.Series(None, index=cov.index)
    cov["current_version_ingested"] = pd.array(
        np.where(
            ~cov["received"] | ~cov["expected"],
            None,
            ingested.notna() & (current.isna() | (current == ingested)),
        ),
        dtype="boolean",
    )
    rows_read = files.map(led["rows_read"]) if len(led) else pd.Series(pd.NA, index=cov.index)
    cov["rows_read"] = pd.array(rows_read.where(cov["expected"], pd.NA), dtype="Int64")
    med = _trailing_median(cov[cov["expected"]], volume).reindex(cov.index)
    cov["trailing_median_rows"] = med
    judged = med.notna() & (med >= volume.min_median_rows) & cov["rows_read"].notna()
    ratio = cov["rows_read"].astype(float) / med.where(med > 0)
    cov["volume_ratio"] = ratio.round(3).where(judged)
    anomaly = np.where(ratio < volume.low, "low", np.where(ratio > volume.high, "high", None))
    cov["volume_anomaly"] = pd.Series(anomaly, index=cov.index, dtype=object).where(judged, None)
    status = np.select(
        [
            ~cov["expected"],
            cov["received"] & late.to_numpy(),
            cov["received"],
            due_ts.to_numpy() <= as_of,
        ],
        ["unexpected", "late", "received", "missing"],
        default="not_yet_due",
    )
    cov["status"] = status
    cov = cov.sort_values(
        ["expected", "source", "table_name", "month"], ascending=[False, True, True, True]
    )
    return cov.reset_index(drop=True)[COVERAGE_COLUMNS]


# ----------------------------------------------------------------------------- findings


def last_month_with_data(coverage: pd.DataFrame) -> str | None:
    got = coverage.loc[coverage["expected"] & coverage["received"], "month"]
    return str(got.max()) if len(got) else None


def missing_drops(coverage: pd.DataFrame) -> pd.DataFrame:
    """Expected drops past due and not received, up to the last month with any drop received
    (the `drops_complete` check). Later months are reported in the table but not failed: with
    open-ended partitions a month nobody has sent yet is the edge of the data, not a gap."""
    missing = coverage["status"] == "missing"
    last = last_month_with_data(coverage)
    if last is None:  # nothing arrived at all: every overdue drop is missing
        return coverage[missing]
    return coverage[missing & (coverage["month"] <= last)]


def late_drops(coverage: pd.DataFrame) -> pd.DataFrame:
    return coverage[coverage["status"] == "late"]


def volume_anomalies(coverage: pd.DataFrame) -> pd.DataFrame:
    return coverage[coverage["volume_anomaly"].notna()]


def unprocessed_resubmissions(coverage: pd.DataFrame) -> pd.DataFrame:
    """Resubmitted drops whose current landing content has not been ingested."""
    return coverage[coverage["resubmitted"] & (coverage["current_version_ingested"] == False)]  # noqa: E712


# ----------------------------------------------------------------------------- views


def cell_label(row: pd.Series) -> str:
    """A short label for one drop in the provider x month matrix."""
    base = {
        "received": "✓",
        "late": f"late {math.ceil(row['days_late'])}d" if pd.notna(row["days_late"]) else "late",
        "missing": "missing",
        "not_yet_due": "not due",
        "unexpected": "unexpected",
    }[row["status"]]
    tags = []
    if row["resubmitted"]:
        tags.append("resubmitted")
    if isinstance(row["volume_anomaly"], str):
        tags.append(f"{row['volume_anomaly']}-volume")
    return ", ".join([base, *tags])


def coverage_matrix(coverage: pd.DataFrame, last_n: int = 12) -> pd.DataFrame:
    """Rows source/table, columns the latest ``last_n`` expected months, cells `cell_label`."""
    exp = coverage[coverage["expected"]]
    if exp.empty:
        return pd.DataFrame(columns=["drop"])
    months = sorted(exp["month"].unique())[-last_n:]
    sub = exp[exp["month"].isin(months)].copy()
    sub["drop"] = sub["source"] + "/" + sub["table_name"]
    sub["cell"] = sub.apply(cell_label, axis=1)
    wide = sub.pivot(index="drop", columns="month", values="cell").reindex(columns=months)
    return wide.reset_index().rename_axis(columns=None)


def provider_summary(coverage: pd.DataFrame) -> pd.DataFrame:
    """Per provider table over all months: drops expected, received, late, missing, not yet due,
    resubmitted, volume anomalies, and the median arrival relative to the deadline (days)."""
    exp = coverage[coverage["expected"]].copy()
    cols = [
        "source",
        "table_name",
        "expected",
        "received",
        "late",
        "missing",
        "not_yet_due",
        "resubmitted",
        "volume_anomalies",
        "median_days_before_due",
    ]
    if exp.empty:
        return pd.DataFrame(columns=cols)
    arrived = pd.to_datetime(exp["arrived_at"], utc=True, errors="coerce")
    due = pd.to_datetime(exp["due_at"], utc=True)
    exp["_before"] = (due - arrived).dt.total_seconds() / 86400
    g = exp.groupby(["source", "table_name"])
    out = pd.DataFrame(
        {
            "expected": g.size(),
            "received": g["received"].sum(),
            "late": g["status"].apply(lambda s: int((s == "late").sum())),
            "missing": g["status"].apply(lambda s: int((s == "missing").sum())),
            "not_yet_due": g["status"].apply(lambda s: int((s == "not_yet_due").sum())),
            "resubmitted": g["resubmitted"].sum(),
            "volume_anomalies": g["volume_anomaly"].count(),
            "median_days_before_due": g["_before"].median().round(1),
        }
    )
    return out.reset_index()[cols]
