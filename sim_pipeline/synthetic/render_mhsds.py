"""Mental-health trusts' landing rows: the MHSDS tables and the programme register.

``render_mhsds`` writes MHS401 (MH Act periods), MHS501 (hospital spells), MHS502 (ward
stays), the programme register (a monthly snapshot of everyone allocated so far) and MHS001MPI
(one row per patient with activity at the trust in the month), with nearly clean identifiers;
``render_care_contacts`` writes MHS201 community care contacts, every field from the contacts'
keys. Row format: ``sim_pipeline.synthetic.render``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from sim_pipeline.sources import codes
from sim_pipeline.synthetic.activity import Events
from sim_pipeline.synthetic.allocation import Programme
from sim_pipeline.synthetic.keyed import Keyed
from sim_pipeline.synthetic.people import Population
from sim_pipeline.synthetic.render import landing_frame, seq_ids
from sim_pipeline.synthetic.timeline import N_DAYS, fmt_dates, fmt_times, month_end, month_of


def _expand(start: np.ndarray, end: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Months a record is active in: (row index, month, whether the end date is shown)."""
    start = np.asarray(start, dtype=np.int64)
    end = np.asarray(end, dtype=np.int64)
    m0 = month_of(start)
    m1 = month_of(np.minimum(end, N_DAYS - 1))
    n = np.maximum(m1 - m0 + 1, 0)
    rep = np.repeat(np.arange(len(start)), n)
    month = m0[rep] + (np.arange(len(rep)) - np.repeat(np.cumsum(n) - n, n))
    show_end = (end[rep] < N_DAYS) & (month == m1[rep])
    return rep, month, show_end


def _trust_ids(
    rng: np.random.Generator, trust: np.ndarray, prefix: str, width: int = 8
) -> np.ndarray:
    nums = seq_ids(rng, trust, 10_000, 900_000, 3)
    return np.asarray([f"{prefix}-{k:0{width}d}" for k in nums], dtype=object)


def render_mhsds(
    rng: np.random.Generator,
    kr: Keyed,
    pop: Population,
    events: Events,
    prog: Programme,
    extra_activity: tuple[np.ndarray, np.ndarray] | None = None,
) -> dict[str, pd.DataFrame]:
    """MHS401, MHS501, MHS502, MHS001MPI and the programme register, month by month
    (``extra_activity``: more (person, month) pairs that need an MHS001MPI row, e.g. care
    contacts of people with no other MHSDS record)."""
    org = codes.MH_TRUSTS
    out: dict[str, pd.DataFrame] = {}
    activity: list[tuple[np.ndarray, np.ndarray]] = []  # (person, month) with MHSDS activity
    if extra_activity is not None:
        activity.append(extra_activity)

    # MHS401 Mental Health Act periods
    mha = events.mha[events.mha["start"] < N_DAYS].sort_values(["start", "key"], kind="stable")
    mha = mha.reset_index(drop=True)
    person = mha["person"].to_numpy()
    trust = pop.trust[person]
    mha_id = _trust_ids(rng, trust, "MHA")
    rep, month, show = _expand(mha["start"], mha["end"])
    p = person[rep]
    secs = mha["secs"].to_numpy()[rep]
    out["MHS401MHActPeriod"] = landing_frame(
        {
            "OrgIDProv": [org[t] for t in trust[rep]],
            "MHActLegalStatusClassPeriodId": mha_id[rep],
            "LocalPatientId": pop.lpid[p],
            "StartDateMHActLegalStatusClass": fmt_dates(mha["start"].to_numpy()[rep]),
            "StartTimeMHActLegalStatusClass": fmt_times(np.maximum(secs, 0), secs >= 0),
            "EndDateMHActLegalStatusClass": fmt_dates(
                np.minimum(mha["end"].to_numpy()[rep], N_DAYS - 1), show
            ),
            "LegalStatusCode": mha["code"].to_numpy()[rep],
        },
        {"_provider": trust[rep], "_month": month, "_person": p, "_sort": mha_id[rep]},
    )
    activity.append((p, month))
    s136_ids = pd.Series(mha_id, index=mha.index)[mha["det_index"] >= 0]
    det_to_mha = dict(
        zip(mha.loc[s136_ids.index, "det_index"].to_numpy(), s136_ids.to_numpy(), strict=True)
    )

    # MHS501 hospital provider spells
    sp = events.spells
    sp = sp[sp["start"] < N_DAYS]
    order = np.lexsort((sp["key"].to_numpy(), sp["start"].to_numpy()))
    sp_sorted = sp.iloc[order]
    person = sp_sorted["person"].to_numpy()
    trust = pop.trust[person]
    hps = np.empty(len(sp), dtype=object)
    sr = np.empty(len(sp), dtype=object)
    hps_sorted = _trust_ids(rng, trust, "HPS")
    sr_sorted = _trust_ids(rng, trust, "SR")
    hps[order] = hps_sorted
    sr[order] = sr_sorted
    spell_pos = {idx: k for k, idx in enumerate(sp.index)}
    rep, month, show = _expand(sp_sorted["start"], sp_sorted["end"])
    p = person[rep]
    out["MHS501HospProvSpell"] = landing_frame(
        {
            "OrgIDProv": [org[t] for t in trust[rep]],
            "HospProvSpellID": hps_sorted[rep],
            "ServiceRequestId": sr_sorted[rep],
            "LocalPatientId": pop.lpid[p],
            "StartDateHospProvSpell": fmt_dates(sp_sorted["start"].to_numpy()[rep]),
            "DischDateHospProvSpell": fmt_dates(
                np.minimum(sp_sorted["end"].to_numpy()[rep], N_DAYS - 1), show
            ),
        },
        {"_provider": trust[rep], "_month": month, "_person": p, "_sort": hps_sorted[rep]},
    )
    activity.append((p, month))

    # MHS502 ward stays (one or two per spell)
    ws = events.ward_stays
    ws = ws[ws["start"] < N_DAYS]
    ws = ws[ws["spell"].isin(sp.index)]
    ws = ws.sort_values(["start", "key", "seq"], kind="stable").reset_index(drop=True)
    person = ws["person"].to_numpy()
    trust = pop.trust[person]
    ws_id = _trust_ids(rng, trust, "WS")
    spell_hps = hps[[spell_pos[s] for s in ws["spell"].to_numpy()]]
    rep, month, show = _expand(ws["start"], ws["end"])
    p = person[rep]
    out["MHS502WardStay"] = landing_frame(
        {
            "OrgIDProv": [org[t] for t in trust[rep]],
            "WardStayId": ws_id[rep],
            "HospProvSpellID": spell_hps[rep],
            "StartDateWardStay": fmt_dates(ws["start"].to_numpy()[rep]),
            "EndDateWardStay": fmt_dates(np.minimum(ws["end"].to_numpy()[rep], N_DAYS - 1), show),
            "WardType": np.full(len(rep), "02", dtype=object),
            "HospitalBedTypeMH": ws["bed"].to_numpy()[rep],
        },
        {"_provider": trust[rep], "_month": month, "_person": p, "_sort": ws_id[rep]},
    )
    activity.append((p, month))

    # Programme register: monthly snapshot of everyone the trust has allocated so far
    rows = []
    last = N_DAYS - 1
    for i in np.argsort(prog.register_id, kind="stable"):
        pp = prog.person[i]
        first_m = int(month_of(prog.alloc_day[i]))
        dis_m = int(month_of(min(prog.discharge_day[i], last)))
        for m in range(first_m, int(month_of(last)) + 1):
            rows.append((i, pp, m))
            if m <= dis_m:
                activity.append((np.array([pp]), np.array([m])))
    reg = np.array(rows, dtype=np.int64).reshape(-1, 3)
    i, p, month = reg[:, 0], reg[:, 1], reg[:, 2]
    me = month_end(month)
    eng_day = prog.engage_day[i]
    dis_day = prog.discharge_day[i]
    dis_shown = dis_day <= me
    trust = pop.trust[p]
    out["programme_register"] = landing_frame(
        {
            "OrgIDProv": [org[t] for t in trust],
            "RegisterId": prog.register_id[i],
            "LocalPatientId": pop.lpid[p],
            "NHSNumber": pop.mh_nhs[p],
            "PersonGivenName": pop.mh_given[p],
            "PersonFamilyName": np.where(
                me >= pop.mh_marriage_day[p], pop.new_family[p], pop.mh_family[p]
            ),
            "PersonBirthDate": pop.mh_dob[p],
            "Borough": pop.borough[p],
            "AllocationDate": fmt_dates(prog.alloc_day[i]),
            "EngagementDate": fmt_dates(np.minimum(eng_day, last), eng_day <= me),
            "DischargeDate": fmt_dates(np.minimum(dis_day, last), dis_shown),
            "DischargeReason": np.where(dis_shown, prog.reason[i], ""),
        },
        {"_provider": trust, "_month": month, "_person": p, "_sort": prog.register_id[i]},
    )

    # MHS001MPI: one row per patient with any activity at the trust in the month
    ap = np.concatenate([a for a, _ in activity])
    am = np.concatenate([b for _, b in activity])
    pm = np.unique(np.stack([ap, am], axis=1), axis=0)
    p, month = pm[:, 0], pm[:, 1]
    me = month_end(month)
    trust = pop.trust[p]
    ref_day = np.minimum(me, pop.death[p])
    dead = pop.death[p] <= me
    pc = pop.nhs_postcode_at(p, ref_day)
    pc[rng.random(len(pc)) < 0.01] = ""
    out["MHS001MPI"] = landing_frame(
        {
            "OrgIDProv": [org[t] for t in trust],
            "LocalPatientId": pop.lpid[p],
            "NHSNumber": pop.mh_nhs[p],
            "NHSNumberStatus": pop.mh_nhs_status[p],
            "PersonGivenName": pop.mh_given[p],
            "PersonFamilyName": np.where(
                me >= pop.mh_marriage_day[p], pop.new_family[p], pop.mh_family[p]
            ),
            "PersonBirthDate": pop.mh_dob[p],
            "Postcode": pc,
            "Gender": np.where(pop.sex[p] == "M", "1", "2"),
            "EthnicCategory": pop.mh_ethnic[p],
            "PersDeathDate": fmt_dates(np.minimum(pop.death[p], N_DAYS - 1), dead),
        },
        {"_provider": trust, "_month": month, "_person": p, "_sort": pop.lpid[p]},
    )
    out["_det_to_mha"] = pd.DataFrame(
        {"det_index": list(det_to_mha), "mha_id": list(det_to_mha.values())}
    )
    return out


CONTACT_TIME_BLANK = 0.02


def render_care_contacts(kr: Keyed, pop: Population, events: Events) -> dict[str, pd.DataFrame]:
    """MHS201 rows for every PLANNED contact, with ``_held`` False for those that did not take
    place (an inpatient day). Ids and every field come from the contacts' keys and their order
    among all planned contacts, so whether one contact took place never changes another row;
    the caller draws errors for all rows and then drops the ``_held`` False ones."""
    c = events.contacts.sort_values(["day", "secs", "key"], kind="stable").reset_index(drop=True)
    key = c["key"].to_numpy(dtype=np.uint64)
    person = c["person"].to_numpy(dtype=np.int64)
    day = c["day"].to_numpy(dtype=np.int64)
    trust = pop.trust[person]
    # contact ids: increasing with time within each trust, gaps of 1-3
    ordinal = pd.Series(trust).groupby(trust, sort=False).cumcount().to_numpy()
    cc_num = 1_000_000 + 3 * ordinal + kr.integers(key, 206, 0, 3)
    cc_id = np.asarray([f"CC-{k:08d}" for k in cc_num], dtype=object)
    # one community referral per person, numbered in a keyed random order within each trust
    people = np.unique(person)
    rank = (
        pd.Series(kr.u(people.astype(np.uint64), 208))
        .groupby(pop.trust[people])
        .rank(method="first")
        .to_numpy(dtype=np.int64)
    )
    sr_num = 50_000_000 + 4 * rank + kr.integers(people.astype(np.uint64), 209, 0, 4)
    sr_of = dict(zip(people.tolist(), sr_num.tolist(), strict=True))
    sr = np.asarray([f"SR-{sr_of[p]:08d}" for p in person.tolist()], dtype=object)
    secs = c["secs"].to_numpy(dtype=np.int64)
    frame = landing_frame(
        {
            "OrgIDProv": [codes.MH_TRUSTS[t] for t in trust],
            "CareContactId": cc_id,
            "ServiceRequestId": sr,
            "LocalPatientId": pop.lpid[person],
            "CareContDate": fmt_dates(day),
            "CareContTime": fmt_times(secs, kr.u(key, 207) >= CONTACT_TIME_BLANK),
            "ConsMechanismMH": c["mechanism"].to_numpy(),
            "AttendOrDNACode": c["attend"].to_numpy(),
        },
        {"_provider": trust, "_month": month_of(day), "_person": person, "_sort": cc_id},
    )
    frame["_held"] = c["held"].to_numpy(dtype=bool)
    return {"MHS201CareContact": frame}
