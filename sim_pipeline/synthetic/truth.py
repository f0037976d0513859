"""Ground truth derived from the TRUE events (never from the noisy landing rows).

``person_month`` holds one row per person-month with any non-zero count (over every column
below, old and new); person-months with all counts zero are omitted. Every count is by the
event's own date (A&E arrival, call, detention, contact date). Definitions:

* ``ae_attendances``: true attendances (Der_Dupe_Flag=1 provider copies and exact duplicate rows
  are not attendances), by arrival date;
* ``ambulance_resources``: sum of resources despatched, by call date;
* ``mh_bed_days``: NHS Digital MHS24 rule per ward stay,
  ``min(end, month_end + 1) - max(start, month_start)``, open stays running to the month end;
* ``police_deployments``: CAD incidents where officers attended, by call date;
* ``s136_detentions``: one per true detention (whichever side recorded it), by detention date.

Harm measures (issue #7):

* ``ae_self_harm``: the attendances counted in ``ae_attendances`` (same de-duplication) that
  are CODED as self-harm: EC_Chief_Complaint_SNOMED_CT 248062006 or EC_Injury_Intent_SNOMED_CT
  276853009, as the department wrote them (``render_ecds.ae_coded_self_harm``). An attendance whose
  complaint was left blank counts only if its intent is self-inflicted;
* ``arrests``: CAD incidents with Outcome ARREST or CHARGED, by call date, PLUS s136 detentions
  whose s136 return says ArrestedForOffence=Y, by detention date. The CAD incident a detention
  was raised from always has Outcome S136, so no arrest is counted twice. Only detentions the
  police recorded carry an arrest (the generator never arrests at the 5% of detentions that
  are in MHSDS only). From staged data: de-duplicated CAD rows with Outcome in
  ``codes.CAD_ARREST_OUTCOMES`` + de-duplicated s136 returns with ArrestedForOffence = Y;
* ``charges``: CAD incidents with Outcome CHARGED, by call date (so charges <= arrests in every
  person-month);
* ``s136_police_station``: true detentions whose first place of safety was a police station,
  by detention date, whichever side recorded the detention (FirstPlaceOfSafety is only on the
  s136 return, so a detention recorded in MHSDS only is counted here but not visible there);
* ``community_contacts``: community care contacts (MHS201) that took place and were attended,
  AttendOrDNACode 5 or 6 (``codes.ATTENDED_CODES``), by contact date;
* ``community_dna``: contacts the person did not attend, AttendOrDNACode 3 or 7
  (``codes.DNA_CODES``), by contact date. Cancelled contacts (2, 4) are in neither count.
  Contacts planned on an inpatient day do not take place and are not in the data at all.

Deaths are in ``people.csv`` (``death_date``), not here.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from sim_pipeline.measures.metrics import HARM_MEASURES
from sim_pipeline.sources import codes
from sim_pipeline.synthetic.activity import Events
from sim_pipeline.synthetic.timeline import MONTH_START, N_DAYS, N_MONTHS, month_of

METRICS = (
    "ae_attendances",
    "ambulance_resources",
    "mh_bed_days",
    "police_deployments",
    "s136_detentions",
)
HARM_METRICS = HARM_MEASURES  # the same harm measures the pipeline counts (names only)
COLUMNS = METRICS + HARM_METRICS


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


def person_month(events: Events, ae_self_harm: np.ndarray) -> pd.DataFrame:
    """Counts per internal person number and month index (non-zero rows only).

    ``ae_self_harm`` flags the rows of ``events.ae`` coded as self-harm.
    """
    parts = []
    true_ae = (events.ae["dupe"] == 0).to_numpy()
    ae = events.ae[true_ae]
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

    sh = events.ae[true_ae & np.asarray(ae_self_harm, dtype=bool)]
    parts.append(_count(sh["person"], sh["day"], None, "ae_self_harm"))
    arrest = events.cad[events.cad["outcome"].isin(codes.CAD_ARREST_OUTCOMES)]
    det_arrest = det[det["arrested"]]
    parts.append(
        _count(
            np.concatenate([arrest["person"].to_numpy(), det_arrest["person"].to_numpy()]),
            np.concatenate([arrest["day"].to_numpy(), det_arrest["day"].to_numpy()]),
            None,
            "arrests",
        )
    )
    charged = events.cad[events.cad["outcome"] == "CHARGED"]
    parts.append(_count(charged["person"], charged["day"], None, "charges"))
    station = det[det["place"] == "police_station"]
    parts.append(_count(station["person"], station["day"], None, "s136_police_station"))
    cc = events.contacts[events.contacts["held"]]
    seen = cc[cc["attend"].isin(codes.ATTENDED_CODES)]
    parts.append(_count(seen["person"], seen["day"], None, "community_contacts"))
    dna = cc[cc["attend"].isin(codes.DNA_CODES)]
    parts.append(_count(dna["person"], dna["day"], None, "community_dna"))

    out = pd.concat(parts, axis=1).reindex(columns=list(COLUMNS)).fillna(0).astype(np.int64)
    out = out[(out > 0).any(axis=1)]
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
