"""Landing rows for every provider table, with each source's own identifier noise.

Each ``render_*`` function returns one DataFrame per table: the contract's columns as text
('' = missing) plus bookkeeping columns ``_provider`` (folder), ``_month`` (file month index),
``_person`` (internal person number) and ``_sort`` (order inside the file). Bookkeeping columns
are never written to landing files.

Identifier noise per source (see the module docstring of ``sim_pipeline.synthetic``):
MHSDS nearly clean; police with typos, nicknames, DOB slips, upper-case CAD names and blank
postcodes; LAS with partial NHS numbers and ages instead of DOBs; ECDS with no names.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from sim_pipeline.sources import codes
from sim_pipeline.sources.base import BOROUGHS
from sim_pipeline.synthetic import noise
from sim_pipeline.synthetic.activity import Events
from sim_pipeline.synthetic.allocation import Programme
from sim_pipeline.synthetic.keyed import Keyed
from sim_pipeline.synthetic.names import PERCEIVED_ETHNICITY
from sim_pipeline.synthetic.people import GENERAL, Population
from sim_pipeline.synthetic.timeline import (
    N_DAYS,
    fmt_dates,
    fmt_datetimes,
    fmt_times,
    month_end,
    month_of,
    years_between,
)

META = ("_provider", "_month", "_person", "_sort")  # bookkeeping columns, never written
# About a quarter of given names have a known variant; police use it in ~38% of those rows,
# so roughly 10% of police rows carry a nickname or alternative spelling.
POLICE_P_NICK = 0.38


def landing_frame(cols: dict[str, np.ndarray], meta: dict[str, np.ndarray]) -> pd.DataFrame:
    df = pd.DataFrame({**{k: np.asarray(v, dtype=object) for k, v in cols.items()}, **meta})
    for c in cols:
        df[c] = df[c].astype(object).where(df[c].notna(), "").astype(str)
    return df


def seq_ids(rng: np.random.Generator, group: np.ndarray, lo: int, hi: int, step: int) -> np.ndarray:
    """Increasing numbers within each group value (rows must already be in time order)."""
    group = np.asarray(group)
    out = np.zeros(len(group), dtype=np.int64)
    for g in sorted(set(group.tolist())):
        sel = np.nonzero(group == g)[0]
        start = int(rng.integers(lo, hi))
        out[sel] = start + np.cumsum(rng.integers(1, step + 1, len(sel)))
    return out


def event_borough(kr: Keyed, key: np.ndarray, salt: int, home: np.ndarray) -> np.ndarray:
    """Where an incident happened: usually the home borough, sometimes elsewhere."""
    other = kr.pick(key, salt, BOROUGHS, [1] * len(BOROUGHS))
    return np.where(kr.u(key, salt + 1) < 0.9, home, other)


# ----------------------------------------------------------------------------------------------
# Names as other agencies record them


def noisy_names(
    rng: np.random.Generator,
    pop: Population,
    persons: np.ndarray,
    days: np.ndarray,
    *,
    p_nick: float,
    p_typo: float,
    p_blank: float = 0.0,
) -> tuple[np.ndarray, np.ndarray]:
    persons = np.asarray(persons, dtype=np.int64)
    n = len(persons)
    given = pop.given[persons].copy()
    family = pop.family_at(persons, days).copy()
    u = rng.random((4, n))
    nick = u[0] < p_nick
    if nick.any():
        given[nick], _ = noise.nickname(rng, given[nick])
    typo = u[1] < p_typo
    on_given = typo & (u[2] < 0.5)
    on_family = typo & ~(u[2] < 0.5)
    if on_given.any():
        given[on_given] = noise.typo(rng, given[on_given])
    if on_family.any():
        family[on_family] = noise.typo(rng, family[on_family])
    blank = u[3] < p_blank
    given[blank] = ""
    family[blank] = ""
    return given, family


def police_sex(rng: np.random.Generator, sex: np.ndarray) -> np.ndarray:
    out = np.asarray(sex, dtype=object).copy()
    out[rng.random(len(out)) < 0.005] = "U"
    return out


# ----------------------------------------------------------------------------------------------
# Mental-health trusts (MHSDS + programme register)


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
    rng: np.random.Generator, kr: Keyed, pop: Population, events: Events, prog: Programme
) -> dict[str, pd.DataFrame]:
    """MHS401, MHS501, MHS502, MHS001MPI and the programme register, month by month."""
    org = codes.MH_TRUSTS
    out: dict[str, pd.DataFrame] = {}
    activity: list[tuple[np.ndarray, np.ndarray]] = []  # (person, month) with MHSDS activity

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


# ----------------------------------------------------------------------------------------------
# Metropolitan Police


def render_police(
    rng: np.random.Generator, kr: Keyed, pop: Population, events: Events
) -> dict[str, pd.DataFrame]:
    """CAD incidents (one row per person involved) and the s136 return."""
    cad = events.cad
    key = cad["key"].to_numpy(dtype=np.uint64)
    person = cad["person"].to_numpy()
    day = cad["day"].to_numpy()
    secs = cad["secs"].to_numpy()
    attended = cad["attended"].to_numpy(dtype=bool)
    is136 = (cad["det_index"] >= 0).to_numpy()
    year = 2016 + month_of(day) // 12
    inc = seq_ids(rng, year, 100_000, 400_000, 40)
    incident = np.asarray([f"CAD-{y}-{k:07d}" for y, k in zip(year, inc, strict=True)], object)
    desp_lag = kr.integers(key, 100, 60, 25 * 60)
    arr_lag = kr.integers(key, 101, 4 * 60, 60 * 60)
    close_lag = kr.integers(key, 102, 20 * 60, 6 * 3600)
    lead = np.zeros(len(cad), dtype=np.int64)
    dets = events.detentions.set_index("det_index")
    lead[is136] = dets.loc[cad.loc[is136, "det_index"], "cad_lead"].to_numpy()
    # for a detention, officers were despatched and arrived before the s136 was used
    desp_lag = np.where(is136, (lead * (0.1 + 0.2 * kr.u(key, 114))).astype(np.int64), desp_lag)
    arr_lag = np.where(is136, (lead * (0.3 + 0.3 * kr.u(key, 115))).astype(np.int64), arr_lag)
    desp_shown = attended | (kr.u(key, 103) < 0.5)
    close = np.where(
        attended,
        desp_lag + arr_lag + close_lag + np.where(is136, lead + 3600, 0),
        kr.integers(key, 104, 5 * 60, 120 * 60),
    )
    hiu = pop.group[person] != GENERAL
    grade = np.where(
        is136,
        kr.pick(key, 105, ["I", "S"], [0.6, 0.4]),
        np.where(
            attended,
            kr.pick(key, 106, codes.CAD_GRADE, [0.35, 0.45, 0.15, 0.05]),
            kr.pick(key, 107, ["S", "E", "R"], [0.1, 0.5, 0.4]),
        ),
    )
    units = np.where(
        attended,
        kr.pick(key, 108, ["1", "2", "3"], [0.55, 0.35, 0.1]),
        kr.pick(key, 109, ["0", "1"], [0.6, 0.4]),
    )
    source = np.where(
        is136,
        kr.pick(key, 110, ["999", "PARTNER", "101"], [0.5, 0.3, 0.2]),
        kr.pick(key, 111, ["999", "101", "PARTNER"], [0.6, 0.25, 0.15]),
    )
    mh_flag = np.where(is136 | (kr.u(key, 112) < np.where(hiu, 0.9, 0.6)), "Y", "N")
    borough = event_borough(kr, key, 113, pop.borough[person])
    given, family = noisy_names(rng, pop, person, day, p_nick=POLICE_P_NICK, p_typo=0.08)
    pc, nfa = pop.postcode_at(person, day)
    pc = np.where(nfa | (rng.random(len(pc)) < 0.15), "", pc)
    frames = {}
    frames["cad_incidents"] = landing_frame(
        {
            "IncidentNumber": incident,
            "CallReceivedDateTime": fmt_datetimes(day, secs),
            "DespatchedDateTime": fmt_datetimes(day, secs + desp_lag, desp_shown),
            "ArrivedDateTime": fmt_datetimes(day, secs + desp_lag + arr_lag, attended),
            "ClosedDateTime": fmt_datetimes(day, secs + close),
            "CallSource": source,
            "Grade": grade,
            "Borough": borough,
            "UnitsAssigned": units,
            "MentalHealthFlag": mh_flag,
            "OfficersAttended": np.where(attended, "Y", "N"),
            "Outcome": cad["outcome"].to_numpy(),
            "PersonGivenName": np.char.upper(given.astype(str)).astype(object),
            "PersonFamilyName": np.char.upper(family.astype(str)).astype(object),
            "PersonBirthDate": noise.dob_strings(
                rng, pop.dob[person], p_missing=0.08, p_swap=0.03, p_digit=0.02
            ),
            "PersonSex": police_sex(rng, pop.sex[person]),
            "AddressPostcode": pc,
        },
        {"_provider": np.full(len(cad), codes.POLICE, dtype=object),
         "_month": month_of(day), "_person": person, "_sort": incident},
    )  # fmt: skip
    det_incident = dict(zip(cad.loc[is136, "det_index"].to_numpy(), incident[is136], strict=True))
    det_borough = dict(zip(cad.loc[is136, "det_index"].to_numpy(), borough[is136], strict=True))

    det = events.detentions
    det = det[det["police_recorded"]].sort_values(["day", "secs", "key"], kind="stable")
    det = det.reset_index(drop=True)
    person = det["person"].to_numpy()
    day = det["day"].to_numpy()
    key = det["key"].to_numpy(dtype=np.uint64)
    year = 2016 + month_of(day) // 12
    ref = seq_ids(rng, year, 100, 1_000, 8)
    s136_ref = np.asarray([f"S136-{y}-{k:05d}" for y, k in zip(year, ref, strict=True)], object)
    place = det["place"].to_numpy()
    given, family = noisy_names(rng, pop, person, day, p_nick=POLICE_P_NICK, p_typo=0.08)
    pc, nfa = pop.postcode_at(person, day)
    pc = np.where(nfa | (rng.random(len(pc)) < 0.15), "", pc)
    eth = np.asarray([PERCEIVED_ETHNICITY[e] for e in pop.ethnic[person]], dtype=object)
    eth[kr.u(key, 120) < 0.05] = ""
    inc_no = np.asarray([det_incident[d] for d in det["det_index"].to_numpy()], dtype=object)
    inc_no[kr.u(key, 121) < 0.04] = ""
    custody = np.where(
        place == "police_station",
        kr.integers(key, 122, 1, 25),
        -1,
    )
    custody_txt = np.where(custody >= 0, custody.astype(str), "")
    custody_txt = np.where((custody < 0) & (kr.u(key, 123) < 0.5), "0", custody_txt)
    arrested = np.where(det["arrested"].to_numpy(dtype=bool), "Y", "N")
    amb_req = np.where(
        (det["transport"] == "ambulance").to_numpy() | (kr.u(key, 125) < 0.2), "Y", "N"
    )
    frames["s136_return"] = landing_frame(
        {
            "S136Ref": s136_ref,
            "IncidentNumber": inc_no,
            "DetentionDateTime": fmt_datetimes(day, det["secs"].to_numpy()),
            "PersonGivenName": given,
            "PersonFamilyName": family,
            "PersonBirthDate": noise.dob_strings(
                rng, pop.dob[person], p_missing=0.08, p_swap=0.03, p_digit=0.02
            ),
            "Age": years_between(pop.dob[person], day).astype(str),
            "Sex": police_sex(rng, pop.sex[person]),
            "PerceivedEthnicity": eth,
            "Borough": np.asarray([det_borough[d] for d in det["det_index"]], dtype=object),
            "Transport": det["transport"].to_numpy(),
            "AmbulanceRequested": amb_req,
            "FirstPlaceOfSafety": place,
            "HoursInCustody": custody_txt,
            "ArrestedForOffence": arrested,
            "AddressPostcode": pc,
        },
        {"_provider": np.full(len(det), codes.POLICE, dtype=object),
         "_month": month_of(day), "_person": person, "_sort": s136_ref},
    )  # fmt: skip
    frames["_det_police"] = pd.DataFrame(
        {
            "det_index": list(det_incident),
            "IncidentNumber": list(det_incident.values()),
        }
    ).merge(
        pd.DataFrame({"det_index": det["det_index"].to_numpy(), "S136Ref": s136_ref}),
        on="det_index",
        how="left",
    )
    return frames


# ----------------------------------------------------------------------------------------------
# London Ambulance Service


def render_ambulance(
    rng: np.random.Generator, kr: Keyed, pop: Population, events: Events
) -> dict[str, pd.DataFrame]:
    """LAS incidents, one row per patient per incident."""
    amb = events.ambulance
    key = amb["key"].to_numpy(dtype=np.uint64)
    person = amb["person"].to_numpy()
    day = amb["day"].to_numpy()
    n = len(amb)
    outcome = amb["outcome"].to_numpy()
    ht = outcome == "hear_and_treat"
    year = 2016 + month_of(day) // 12
    inc = seq_ids(rng, year, 100_000, 500_000, 30)
    incident = np.asarray([f"LAS-{y}-{k:07d}" for y, k in zip(year, inc, strict=True)], object)
    given, family = noisy_names(rng, pop, person, day, p_nick=0.03, p_typo=0.06, p_blank=0.0)
    blank = rng.random(n) < np.where(ht, 0.15, 0.05)
    given[blank] = ""
    family[blank] = ""
    dob = noise.dob_strings(rng, pop.dob[person], p_missing=0.20)
    age = years_between(pop.dob[person], day)
    guess = rng.random(n) < 0.3
    age = np.where(guess, np.maximum(age + rng.integers(-3, 4, n), 0), age)
    age_shown = (dob == "") | (rng.random(n) < 0.4)
    nhs = np.where(rng.random(n) < np.where(ht, 0.24, 0.86), pop.nhs[person], "")
    home, nfa = pop.postcode_at(person, day)
    borough = event_borough(kr, key, 130, pop.borough[person])
    # ~70% of incidents are at home (only possible when the incident is in the home borough)
    at_home = (rng.random(n) < 0.78) & (borough == pop.borough[person])
    elsewhere = noise.random_postcodes(rng, borough)
    pc = np.where(at_home, np.where(nfa, "", home), elsewhere)
    frame = landing_frame(
        {
            "IncidentId": incident,
            "CallDateTime": fmt_datetimes(day, amb["secs"].to_numpy()),
            "Category": amb["category"].to_numpy(),
            "ResourcesDespatched": amb["resources"].to_numpy().astype(str),
            "Outcome": outcome,
            "Borough": borough,
            "PatientGivenName": given,
            "PatientFamilyName": family,
            "PatientBirthDate": dob,
            "PatientAge": np.where(age_shown, age.astype(str), ""),
            "PatientSex": police_sex(rng, pop.sex[person]),
            "NHSNumber": nhs,
            "IncidentPostcode": pc,
        },
        {"_provider": np.full(n, codes.AMBULANCE, dtype=object), "_month": month_of(day),
         "_person": person, "_sort": incident},
    )  # fmt: skip
    return {"ambulance_incidents": frame}


# ----------------------------------------------------------------------------------------------
# Community mental-health care contacts (MHS201)

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
