"""Countable events: one row per event, by the metric definitions in
reference/metrics-costs-evaluation.md. Plain functions over the staged tables and the person index.

Every event belongs to the reporting month of the drop it came in (the staged partition), which is
also the month of its date in every extract we know of; events dated outside their reporting month
are counted in `EventStats.outside_month` so an analyst sees them.

* A&E attendances: ECDS rows, less provider duplicates (``Der_Dupe_Flag`` = 1) and less repeats of
  one person at one site at one arrival date and time.
* Ambulance resources despatched: ``ResourcesDespatched`` per incident (an incident can send
  several).
* Mental-health bed days (NHS Digital MHS24): for each ward stay reported in month M,
  ``min(end, month end + 1) - max(start, month start)`` days; an open stay runs to the month end,
  and the discharge day is not a bed day.
* Police deployments: CAD incidents where officers attended.
* s136 detentions: the police s136 return and MHSDS ``LegalStatusCode`` 20 describe one
  detention from two sides. A detention counts once: on the police side when the police saw it,
  else on the MHSDS side (the period's start date). An MHSDS period is the police detention's
  other side when it is the same person and starts within `S136_MATCH_DAYS` of it.

Harm measures (balancing outcomes of the evaluation; counted, never costed):

* ``ae_self_harm``: the A&E attendances above (same de-duplication) coded as self-harm: chief
  complaint 248062006 or injury intent 276853009 (NHS England urgent-care MH dashboard).
* ``arrests``: CAD incidents with Outcome ARREST or CHARGED, plus s136 returns with
  ArrestedForOffence = Y (the CAD incident a detention came from has Outcome S136, so no arrest
  counts twice). ``charges``: CAD incidents with Outcome CHARGED.
* ``s136_police_station``: police s136 returns whose first place of safety was a police station
  (a detention MHSDS alone recorded has no place of safety to read).
* ``community_contacts`` / ``community_dna``: MHS201 care contacts attended (AttendOrDNACode 5, 6)
  and not attended (3, 7): disengagement from community mental-health care.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from sim_pipeline.identity.person_index import with_person_keys
from sim_pipeline.measures.metrics import MEASURES
from sim_pipeline.measures.tables import Events
from sim_pipeline.sources import SOURCE_TABLES, codes
from sim_pipeline.warehouse.model import columns

EVENT_COLUMNS = columns(Events)
S136_MATCH_DAYS = 1
S136_CODE = "20"
# What each metric's events are read from: (staged table, column) pairs, as the functions below
# read them (the date, the quantity, the codes that select or de-duplicate). One declaration:
# the events asset's inputs and its column lineage both come from it.
METRIC_INPUTS: dict[str, tuple[tuple[str, str], ...]] = {
    "ae_attendances": (
        ("staged_ecds", "Arrival_Date"),
        ("staged_ecds", "Arrival_Time"),
        ("staged_ecds", "Der_Provider_Site_Code"),
        ("staged_ecds", "Der_Dupe_Flag"),
    ),
    "ae_self_harm": (
        ("staged_ecds", "Arrival_Date"),
        ("staged_ecds", "EC_Chief_Complaint_SNOMED_CT"),
        ("staged_ecds", "EC_Injury_Intent_SNOMED_CT"),
    ),
    "ambulance_resources": (
        ("staged_ambulance_incidents", "CallDateTime"),
        ("staged_ambulance_incidents", "ResourcesDespatched"),
    ),
    "mh_bed_days": (
        ("staged_mhs502_ward_stay", "StartDateWardStay"),
        ("staged_mhs502_ward_stay", "EndDateWardStay"),
    ),
    "police_deployments": (
        ("staged_police_cad_incidents", "CallReceivedDateTime"),
        ("staged_police_cad_incidents", "OfficersAttended"),
    ),
    "arrests": (
        ("staged_police_cad_incidents", "CallReceivedDateTime"),
        ("staged_police_cad_incidents", "Outcome"),
        ("staged_police_s136_return", "DetentionDateTime"),
        ("staged_police_s136_return", "ArrestedForOffence"),
    ),
    "charges": (
        ("staged_police_cad_incidents", "CallReceivedDateTime"),
        ("staged_police_cad_incidents", "Outcome"),
    ),
    "s136_detentions": (
        ("staged_police_s136_return", "DetentionDateTime"),
        ("staged_mhs401_mh_act_period", "LegalStatusCode"),
        ("staged_mhs401_mh_act_period", "StartDateMHActLegalStatusClass"),
        ("staged_mhs401_mh_act_period", "month"),
    ),
    "s136_police_station": (
        ("staged_police_s136_return", "DetentionDateTime"),
        ("staged_police_s136_return", "FirstPlaceOfSafety"),
    ),
    "community_contacts": (
        ("staged_mhs201_care_contact", "CareContDate"),
        ("staged_mhs201_care_contact", "AttendOrDNACode"),
    ),
    "community_dna": (
        ("staged_mhs201_care_contact", "CareContDate"),
        ("staged_mhs201_care_contact", "AttendOrDNACode"),
    ),
}
# Every staged table the events read, once (the asset's inputs).
STAGED_INPUTS: tuple[str, ...] = tuple(
    sorted({table for pairs in METRIC_INPUTS.values() for table, _column in pairs})
)
# Every staged row's own columns the events read besides those: its key and its month.
ROW_COLUMNS = ("source", "record_ref", "month")


def read_columns(table: str) -> list[str]:
    """The columns of staged ``table`` the events are built from (`METRIC_INPUTS` and each
    row's key and month): all the events asset reads of it (a staged row's other columns, its
    encodings above all, are most of its bytes)."""
    declared = {c for pairs in METRIC_INPUTS.values() for t, c in pairs if t == table}
    return [*ROW_COLUMNS, *sorted(declared - set(ROW_COLUMNS))]


# Staged asset name -> the provider table name the person index records.
TABLE_NAMES = {t.asset_name: t.table for t in SOURCE_TABLES if t.asset_name in STAGED_INPUTS}


@dataclass
class EventStats:
    """What the event rules did, for the asset's metadata and checks."""

    rows_in: dict[str, int] = field(default_factory=dict)
    removed: dict[str, int] = field(default_factory=dict)
    s136_sides: dict[str, int] = field(default_factory=dict)
    outside_month: int = 0
    unindexed: int = 0


def _date(values: pd.Series) -> pd.Series:
    """Dates (or timestamps) as midnight timestamps; unparseable values become NaT."""
    return pd.to_datetime(values.astype("string").str.slice(0, 10), errors="coerce")


def _with_person(
    df: pd.DataFrame, table: str, index: pd.DataFrame, stats: EventStats
) -> pd.DataFrame:
    """Attach person_key by (source, table_name, record_ref); rows the index lacks are counted
    (the person_index check guarantees there are none) and dropped."""
    out = with_person_keys(df, index, table_name=TABLE_NAMES[table])
    missing = int(out["person_key"].isna().sum())
    stats.unindexed += missing
    return out[out["person_key"].notna()]


def _events(
    df: pd.DataFrame, table: str, metric: str, date: pd.Series, qty: pd.Series | int
) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "person_key": df["person_key"].astype("string").to_numpy(),
            "source": df["source"].astype("string").to_numpy(),
            "table_name": TABLE_NAMES[table],
            "record_ref": df["record_ref"].astype("string").to_numpy(),
            "metric": metric,
            "event_date": pd.to_datetime(date).to_numpy(),
            "month": df["month"].astype("string").to_numpy(),
            "quantity": np.asarray(qty if not np.isscalar(qty) else np.full(len(df), qty)),
        }
    )


def ae_events(ecds: pd.DataFrame, index: pd.DataFrame, stats: EventStats) -> pd.DataFrame:
    table = "staged_ecds"
    stats.rows_in[table] = len(ecds)
    flagged = ecds["Der_Dupe_Flag"].astype("string").fillna("") == "1"
    stats.removed["ae_der_dupe_flag"] = int(flagged.sum())
    df = _with_person(ecds[~flagged], table, index, stats)
    date = _date(df["Arrival_Date"])
    same = ["person_key", "Der_Provider_Site_Code", "Arrival_Date", "Arrival_Time"]
    repeat = df.assign(Arrival_Date=date).duplicated(same, keep="first")
    stats.removed["ae_same_person_site_arrival"] = int(repeat.sum())
    df, date = df[~repeat], date[~repeat]
    complaint = df["EC_Chief_Complaint_SNOMED_CT"].astype("string").fillna("")
    intent = df["EC_Injury_Intent_SNOMED_CT"].astype("string").fillna("")
    harm = (complaint == codes.SELF_HARM_COMPLAINT) | (intent == codes.SELF_INFLICTED_INTENT)
    return pd.concat(
        [
            _events(df, table, "ae_attendances", date, 1),
            _events(df[harm], table, "ae_self_harm", date[harm], 1),
        ],
        ignore_index=True,
    )


def ambulance_events(
    incidents: pd.DataFrame, index: pd.DataFrame, stats: EventStats
) -> pd.DataFrame:
    table = "staged_ambulance_incidents"
    stats.rows_in[table] = len(incidents)
    df = _with_person(incidents, table, index, stats)
    qty = pd.to_numeric(df["ResourcesDespatched"], errors="coerce").fillna(0).astype("int64")
    keep = qty > 0
    stats.removed["ambulance_no_resource_sent"] = int((~keep).sum())
    df = df[keep]
    return _events(df, table, "ambulance_resources", _date(df["CallDateTime"]), qty[keep])


def _first_day_in_month(start: pd.Series, month: pd.Series) -> pd.Series:
    """The stay's first day inside its reporting month (the later of start and month start)."""
    month_start = pd.to_datetime(month.astype("string") + "-01")
    s = _date(start)
    return s.where(s > month_start, month_start)


def bed_days_in_month(start: pd.Series, end: pd.Series, month: pd.Series) -> pd.Series:
    """MHS24: bed days of each stay in its reporting month (``month`` as YYYY-MM). A missing end
    counts as the day after the month end; the discharge day is not a bed day."""
    after = pd.to_datetime(month.astype("string") + "-01") + pd.offsets.MonthBegin(1)
    e = _date(end).fillna(after)
    days = (e.where(e < after, after) - _first_day_in_month(start, month)).dt.days
    return days.fillna(0).clip(lower=0).astype("int64")


def bed_day_events(
    ward_stays: pd.DataFrame, index: pd.DataFrame, stats: EventStats
) -> pd.DataFrame:
    table = "staged_mhs502_ward_stay"
    stats.rows_in[table] = len(ward_stays)
    df = _with_person(ward_stays, table, index, stats)
    days = bed_days_in_month(df["StartDateWardStay"], df["EndDateWardStay"], df["month"])
    keep = days > 0
    stats.removed["ward_stay_no_bed_day_in_month"] = int((~keep).sum())
    df = df[keep]
    first_day = _first_day_in_month(df["StartDateWardStay"], df["month"])
    return _events(df, table, "mh_bed_days", first_day, days[keep])


def police_events(cad: pd.DataFrame, index: pd.DataFrame, stats: EventStats) -> pd.DataFrame:
    table = "staged_police_cad_incidents"
    stats.rows_in[table] = len(cad)
    attended = cad["OfficersAttended"].astype("string").fillna("") == "Y"
    stats.removed["police_officers_did_not_attend"] = int((~attended).sum())
    df = _with_person(cad, table, index, stats)
    date = _date(df["CallReceivedDateTime"])
    attended = df["OfficersAttended"].astype("string").fillna("") == "Y"
    outcome = df["Outcome"].astype("string").fillna("")
    arrest = outcome.isin(codes.CAD_ARREST_OUTCOMES)
    charged = outcome == "CHARGED"
    return pd.concat(
        [
            _events(df[attended], table, "police_deployments", date[attended], 1),
            _events(df[arrest], table, "arrests", date[arrest], 1),
            _events(df[charged], table, "charges", date[charged], 1),
        ],
        ignore_index=True,
    )


def s136_events(
    police: pd.DataFrame,
    mhsds: pd.DataFrame,
    index: pd.DataFrame,
    months: list[str],
    stats: EventStats,
    police_before: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """s136 detentions in ``months``, each once. ``police`` holds the s136 returns of those
    months; ``mhsds`` the MHS401 rows of those months; ``police_before`` the returns of the month
    before the first (a detention late on the last day of a month whose place-of-safety period
    starts the next day). MHS401 reports a period in every month it is open: only a period's
    start month counts it."""
    ptable, mtable = "staged_police_s136_return", "staged_mhs401_mh_act_period"
    stats.rows_in[ptable] = len(police)
    stats.rows_in[mtable] = len(mhsds)
    pol = _with_person(police, ptable, index, stats)
    pol_date = _date(pol["DetentionDateTime"])
    code = mhsds["LegalStatusCode"].astype("string").fillna("")
    mh = mhsds[code == S136_CODE]
    mh = _with_person(mh, mtable, index, stats)
    mh_start = _date(mh["StartDateMHActLegalStatusClass"])
    starts_here = mh_start.dt.strftime("%Y-%m") == mh["month"].astype("string")
    stats.removed["s136_period_reported_again_after_its_start_month"] = int((~starts_here).sum())
    mh, mh_start = mh[starts_here], mh_start[starts_here]

    # Police detentions the MHSDS side may match: this run's, plus the month before.
    seen = [
        pd.DataFrame({"person_key": pol["person_key"], "day": pol_date, "i": np.arange(len(pol))})
    ]
    if police_before is not None and len(police_before):
        before = _with_person(police_before, ptable, index, EventStats())
        seen.append(
            pd.DataFrame(
                {
                    "person_key": before["person_key"],
                    "day": _date(before["DetentionDateTime"]),
                    "i": -1,
                }
            )
        )
    seen_df = pd.concat(seen, ignore_index=True).dropna(subset=["day"])
    # One-to-one matching, closest first: each police detention explains at most one period.
    cand = pd.DataFrame(
        {
            "person_key": mh["person_key"].to_numpy(),
            "start": mh_start.to_numpy(),
            "j": np.arange(len(mh)),
        }
    ).merge(seen_df, on="person_key")
    cand["gap"] = (cand["start"] - cand["day"]).dt.days.abs()
    cand = cand[cand["gap"] <= S136_MATCH_DAYS].sort_values(["gap", "j", "i"], kind="stable")
    matched_j: set[int] = set()
    used_police: set[tuple[str, int, pd.Timestamp]] = set()
    for row in cand.itertuples(index=False):
        police_id = (row.person_key, row.i, row.day)
        if row.j in matched_j or (row.i >= 0 and police_id in used_police):
            continue
        matched_j.add(int(row.j))
        if row.i >= 0:
            used_police.add(police_id)
    mh_only = ~np.isin(np.arange(len(mh)), sorted(matched_j))
    stats.s136_sides = {
        "seen_by_both": len(matched_j),
        "police_only": len(pol) - len(used_police),
        "mhsds_only": int(mh_only.sum()),
    }
    arrested = pol["ArrestedForOffence"].astype("string").fillna("") == "Y"
    station = pol["FirstPlaceOfSafety"].astype("string").fillna("") == "police_station"
    return pd.concat(
        [
            _events(pol, ptable, "s136_detentions", pol_date, 1),
            _events(mh[mh_only], mtable, "s136_detentions", mh_start[mh_only], 1),
            _events(pol[arrested], ptable, "arrests", pol_date[arrested], 1),
            _events(pol[station], ptable, "s136_police_station", pol_date[station], 1),
        ],
        ignore_index=True,
    )


def community_events(
    contacts: pd.DataFrame, index: pd.DataFrame, stats: EventStats
) -> pd.DataFrame:
    """Community care contacts attended and not attended (cancelled ones count in neither)."""
    table = "staged_mhs201_care_contact"
    stats.rows_in[table] = len(contacts)
    df = _with_person(contacts, table, index, stats)
    code = df["AttendOrDNACode"].astype("string").fillna("")
    date = _date(df["CareContDate"])
    seen, dna = code.isin(codes.ATTENDED_CODES), code.isin(codes.DNA_CODES)
    stats.removed["care_contact_cancelled"] = int((~(seen | dna)).sum())
    return pd.concat(
        [
            _events(df[seen], table, "community_contacts", date[seen], 1),
            _events(df[dna], table, "community_dna", date[dna], 1),
        ],
        ignore_index=True,
    )


def build_events(
    staged: Mapping[str, pd.DataFrame],
    index: pd.DataFrame,
    months: list[str],
    police_s136_before: pd.DataFrame | None = None,
) -> tuple[pd.DataFrame, EventStats]:
    """All events of ``months`` from the staged tables of those months (asset name -> frame)."""
    stats = EventStats()
    index = index[["source", "table_name", "record_ref", "person_key"]].astype("string")
    parts = [
        ae_events(staged["staged_ecds"], index, stats),
        ambulance_events(staged["staged_ambulance_incidents"], index, stats),
        bed_day_events(staged["staged_mhs502_ward_stay"], index, stats),
        police_events(staged["staged_police_cad_incidents"], index, stats),
        s136_events(
            staged["staged_police_s136_return"],
            staged["staged_mhs401_mh_act_period"],
            index,
            months,
            stats,
            police_s136_before,
        ),
        community_events(staged["staged_mhs201_care_contact"], index, stats),
    ]
    events = pd.concat(parts, ignore_index=True)[EVENT_COLUMNS]
    events = events[events["month"].isin(months)]
    if events["event_date"].isna().any():
        stats.removed["event_without_a_date"] = int(events["event_date"].isna().sum())
        events = events[events["event_date"].notna()]
    stats.outside_month = int(
        (pd.to_datetime(events["event_date"]).dt.strftime("%Y-%m") != events["month"]).sum()
    )
    events["quantity"] = events["quantity"].astype("int64")
    events["event_date"] = pd.to_datetime(events["event_date"]).dt.date
    order = ["month", "metric", "person_key", "source", "table_name", "record_ref", "event_date"]
    return events.sort_values(order, kind="stable").reset_index(drop=True), stats


def monthly_totals(events: pd.DataFrame) -> pd.DataFrame:
    """Quantity per month and measure (every measure present, zeros included)."""
    if events.empty:
        return pd.DataFrame(columns=["month", *MEASURES])
    t = events.pivot_table(
        index="month", columns="metric", values="quantity", aggfunc="sum", fill_value=0
    )
    return t.reindex(columns=list(MEASURES), fill_value=0).reset_index()
