"""Ground truth derived from the TRUE events (never from the noisy landing rows).

``person_month`` holds one row per person-month with any non-zero count; person-months with all
counts zero are omitted. Definitions:

* ``ae_attendances``: true attendances (Der_Dupe_Flag=1 provider copies and exact duplicate rows
  are not attendances), by arrival date;
* ``ambulance_resources``: sum of resources despatched, by call date;
* ``mh_bed_days``: NHS Digital MHS24 rule per ward stay,
  ``min(end, month_end + 1) - max(start, month_start)``, open stays running to the month end;
* ``police_deployments``: CAD incidents where officers attended, by call date;
* ``s136_detentions``: one per true detention (whichever side recorded it), by detention date.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from sim_pipeline.synthetic.activity import Events
from sim_pipeline.synthetic.timeline import MONTH_START, N_DAYS, N_MONTHS, month_of

METRICS = (
    "ae_attendances",
    "ambulance_resources",
    "mh_bed_days",
    "police_deployments",
    "s136_detentions",
)


def bed_days(start: np.ndarray, end: np.ndarray, person: np.ndarray) -> pd.DataFrame:
    """MHS24 bed days per (person, month) from ward stays (end >= N_DAYS means still open)."""
    start = np.asarray(start, dtype=np.int64)
    end = np.asarray(end, dtype=np.int64)
    m0 = month_of(start)
    m1 = month_of(np.minimum(end, N_DAYS - 1))
    n = m1 - m0 + 1
    rep = np.repeat(np.arange(len(start)), n)
    month = m0[rep] + (np.arange(len(rep)) - np.repeat(np.cumsum(n) - n, n))
    ms = MONTH_START[month]
    me_plus = MONTH_START[month + 1]
    days = np.minimum(end[rep], me_plus) - np.maximum(start[rep], ms)
    df = pd.DataFrame({"person": np.asarray(person)[rep], "month": month, "v": days})
    return df[df["v"] > 0]


def person_month(events: Events) -> pd.DataFrame:
    """Counts per internal person number and month index (non-zero rows only)."""
    parts = []
    ae = events.ae[events.ae["dupe"] == 0]
    parts.append(_count(ae["person"], ae["day"], None, "ae_attendances"))
    amb = events.ambulance
    parts.append(_count(amb["person"], amb["day"], amb["resources"], "ambulance_resources"))
    ws = events.ward_stays
    bd = bed_days(ws["start"], ws["end"], ws["person"])
    parts.append(bd.groupby(["person", "month"])["v"].sum().rename("mh_bed_days"))
    cad = events.cad[events.cad["attended"]]
    parts.append(_count(cad["person"], cad["day"], None, "police_deployments"))
    det = events.detentions
    parts.append(_count(det["person"], det["day"], None, "s136_detentions"))
    out = pd.concat(parts, axis=1).fillna(0).astype(np.int64)
    out = out[(out[list(METRICS)] > 0).any(axis=1)]
    return out.reset_index().sort_values(["person", "month"]).reset_index(drop=True)


def _count(person, day, weight, name: str) -> pd.Series:
    day = np.asarray(day, dtype=np.int64)
    keep = (day >= 0) & (day < N_DAYS)
    df = pd.DataFrame(
        {
            "person": np.asarray(person)[keep],
            "month": month_of(day[keep]),
            "v": 1 if weight is None else np.asarray(weight)[keep],
        }
    )
    s = df.groupby(["person", "month"])["v"].sum().rename(name)
    assert s.index.get_level_values("month").max() < N_MONTHS if len(s) else True
    return s
