"""A&E (ECDS) landing rows and the clinical coding of each attendance.

``render_ecds`` writes one row per attendance at each A&E provider (no names; NHS numbers for
93%, 0.3% of them someone else's; the pseudo-postcode for no fixed abode) plus the
Der_Dupe_Flag=1 provider copies. An attendance's coding (mental-health or self-harm
presentation, chief complaint, injury intent) comes from its key, so ``ae_coded_self_harm``
tells the truth exactly what the rows say. Row format: ``sim_pipeline.synthetic.render``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from sim_pipeline.sources import codes
from sim_pipeline.synthetic.activity import Events
from sim_pipeline.synthetic.keyed import Keyed
from sim_pipeline.synthetic.people import GENERAL, Population
from sim_pipeline.synthetic.render import landing_frame, seq_ids
from sim_pipeline.synthetic.timeline import fmt_dates, fmt_times, month_of, years_between

GENERAL_COMPLAINTS = (
    "21522001",  # abdominal pain
    "29857009",  # chest pain
    "25064002",  # headache
    "267036007",  # dyspnoea
    "404640003",  # dizziness
    "422587007",  # nausea
    "161891005",  # backache
    "125605004",  # fracture of bone
    "271807003",  # eruption of skin
    "386661006",  # fever
)
MH_DIAGNOSES = ("35489007", "197480006", "69322001", "55680006", "7200002", "191736004")
ACCIDENTAL_INTENT = "418019003"
DISCHARGE_DESTINATIONS = ("306689006", "306706006", "306705005")  # home, ward, police custody


def _ecds_coding(
    kr: Keyed, pop: Population, ae: pd.DataFrame
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Clinical coding of attendances: (mental-health presentation, self-harm presentation,
    chief complaint, injury intent), all drawn from each attendance's key."""
    key = ae["key"].to_numpy(dtype=np.uint64)
    hiu = pop.group[ae["person"].to_numpy()] != GENERAL
    route = ae["route"].to_numpy()
    u = kr.u(key, 140)
    mh_share = np.where(route == "s136", 0.9, np.where(hiu, 0.55, 0.05))
    sh_share = np.where(hiu, 0.12, 0.02)
    mh = u < mh_share
    self_harm = (u >= mh_share) & (u < mh_share + sh_share)
    complaint = np.where(
        mh,
        kr.pick(key, 141, codes.MH_CHIEF_COMPLAINTS, [3, 2, 2, 2, 1]),
        np.where(
            self_harm,
            codes.SELF_HARM_COMPLAINT,
            kr.pick(key, 142, GENERAL_COMPLAINTS, [1] * len(GENERAL_COMPLAINTS)),
        ),
    )
    complaint[kr.u(key, 143) < 0.02] = ""
    v = kr.u(key, 144)
    intent = np.where(
        self_harm & (v < 0.7) | (mh & hiu & (v < 0.06)),
        codes.SELF_INFLICTED_INTENT,
        np.where(~mh & ~self_harm & (v < 0.1), ACCIDENTAL_INTENT, ""),
    )
    return mh, self_harm, complaint, intent


def ae_coded_self_harm(kr: Keyed, pop: Population, ae: pd.DataFrame) -> np.ndarray:
    """Per row of ``events.ae``: coded as self-harm (chief complaint 248062006 or injury intent
    276853009), exactly as ``render_ecds`` writes it (a provider copy is coded like its
    original)."""
    if not len(ae):
        return np.zeros(0, dtype=bool)
    _, _, complaint, intent = _ecds_coding(kr, pop, ae)
    return (complaint == codes.SELF_HARM_COMPLAINT) | (intent == codes.SELF_INFLICTED_INTENT)


def render_ecds(
    rng: np.random.Generator, kr: Keyed, pop: Population, events: Events
) -> dict[str, pd.DataFrame]:
    """ECDS attendances at each A&E provider, plus Der_Dupe_Flag=1 provider copies."""
    ae = events.ae
    orig = ae[ae["dupe"] == 0].reset_index(drop=True)
    key = orig["key"].to_numpy(dtype=np.uint64)
    person = orig["person"].to_numpy()
    day = orig["day"].to_numpy()
    n = len(orig)
    route = orig["route"].to_numpy()
    mh, self_harm, complaint, intent = _ecds_coding(kr, pop, orig)
    first = kr.pick(key, 145, range(len(MH_DIAGNOSES)), [3, 3, 2, 2, 2, 1]).astype(np.int64)
    other = (first + kr.integers(key, 147, 1, len(MH_DIAGNOSES))) % len(MH_DIAGNOSES)
    codes_ = np.asarray(MH_DIAGNOSES, dtype=object)
    second = (mh | self_harm) & (kr.u(key, 146) < 0.3)
    diag = np.where(
        mh | self_harm,
        np.where(second, codes_[first] + "," + codes_[other], codes_[first]),
        "",
    )
    dest = kr.pick(key, 148, DISCHARGE_DESTINATIONS, [0.78, 0.18, 0.04])
    dest[kr.u(key, 149) < 0.05] = ""
    depart = np.minimum(
        10 + np.floor(np.exp(5.3 + 0.6 * _normal(kr.u(key, 150)))).astype(np.int64), 4320
    )
    dept = np.where(
        np.isin(route, ["ambulance", "s136"]),
        "01",
        kr.pick(key, 151, codes.EC_DEPARTMENT_TYPE, [0.93, 0.005, 0.06, 0.005]),
    )
    provider = orig["provider"].to_numpy()
    org = np.asarray([codes.AE_PROVIDERS[p][0] for p in provider], dtype=object)
    site = np.asarray([codes.AE_PROVIDERS[p][1] for p in provider], dtype=object)
    rid = np.zeros(n, dtype=np.int64)
    # one Generated_Record_ID sequence per provider; duplicates take the next numbers
    nhs_u = rng.random(n)
    nhs = np.where(nhs_u < 0.93, pop.nhs[person], "")
    wrong = nhs_u < 0.003
    if wrong.any():
        nhs[wrong] = pop.nhs[rng.integers(0, pop.n, int(wrong.sum()))]
    dob = fmt_dates(pop.dob[person], rng.random(n) < 0.99)
    pc = pop.nhs_postcode_at(person, day)
    pc[rng.random(n) >= 0.95] = ""
    sex = np.where(pop.sex[person] == "M", "1", "2").astype(object)
    sex[rng.random(n) < 0.003] = "9"
    eth = pop.ethnic[person].copy()
    eth[rng.random(n) < 0.06] = ""
    cols = {
        "Generated_Record_ID": rid,
        "Der_Provider_Code": org,
        "Der_Provider_Site_Code": site,
        "Arrival_Date": fmt_dates(day),
        "Arrival_Time": fmt_times(orig["secs"].to_numpy()),
        "EC_Departure_Time_Since_Arrival": np.where(kr.u(key, 152) < 0.02, "", depart.astype(str)),
        "EC_Department_Type": dept,
        "EC_Arrival_Mode_SNOMED_CT": orig["mode"].to_numpy(),
        "EC_Attendance_Source_SNOMED_CT": np.full(n, "", dtype=object),
        "EC_Chief_Complaint_SNOMED_CT": complaint,
        "EC_Injury_Intent_SNOMED_CT": intent,
        "Der_EC_Diagnosis_All": diag,
        "Discharge_Destination_SNOMED_CT": dest,
        "Age_At_Arrival": years_between(pop.dob[person], day).astype(str),
        "Sex": sex,
        "Ethnic_Category": eth,
        "Der_Dupe_Flag": np.full(n, "0", dtype=object),
        "NHS_Number": nhs,
        "Person_Birth_Date": dob,
        "Postcode_Usual_Address": pc,
    }
    base = landing_frame(
        cols,
        {"_provider": provider, "_month": month_of(day), "_person": person,
         "_sort": np.zeros(n, dtype=np.int64)},
    )  # fmt: skip
    base["_key"] = key
    if not base["_key"].is_unique:  # pragma: no cover - 64-bit keys; a clash would be a bug
        raise RuntimeError("two A&E attendances share an event key")
    dupes = ae[ae["dupe"] == 1]
    copy = base.set_index("_key").loc[dupes["key"].to_numpy(dtype=np.uint64)].reset_index()
    copy["Der_Dupe_Flag"] = "1"
    copy["_dupe"] = 1
    base["_dupe"] = 0
    rows = pd.concat([base, copy], ignore_index=True)
    rows = rows.sort_values(
        ["_provider", "Arrival_Date", "Arrival_Time", "_key", "_dupe"], kind="stable"
    ).reset_index(drop=True)
    ids = seq_ids(rng, rows["_provider"].to_numpy(), 10**10, 3 * 10**10, 400)
    rows["Generated_Record_ID"] = ids.astype(str)
    rows["_sort"] = ids
    return {"ecds": rows.drop(columns=["_key", "_dupe"])}


def _normal(u: np.ndarray) -> np.ndarray:
    """Approximate standard normal quantile (a scaled logit: close enough for visit lengths)."""
    u = np.clip(u, 1e-9, 1 - 1e-9)
    return np.log(u / (1 - u)) * 0.5513
