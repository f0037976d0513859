"""Metropolitan Police landing rows: CAD incidents and the s136 return.

One CAD row per person involved in an incident (with and without officers attending), and one
s136 return per detention the police recorded, linked to its CAD incident. Police identifiers
are noisy: name typos (8%), nicknames, upper-case CAD names, missing, swapped or mistyped birth
dates and blank postcodes (15%, always while of no fixed abode); no NHS numbers. Row format:
``sim_pipeline.synthetic.render``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from sim_pipeline.sources import codes
from sim_pipeline.synthetic import noise
from sim_pipeline.synthetic.activity import Events
from sim_pipeline.synthetic.keyed import Keyed
from sim_pipeline.synthetic.names import PERCEIVED_ETHNICITY
from sim_pipeline.synthetic.people import GENERAL, Population
from sim_pipeline.synthetic.render import (
    event_borough,
    landing_frame,
    noisy_names,
    police_sex,
    seq_ids,
)
from sim_pipeline.synthetic.timeline import fmt_datetimes, month_of, years_between

# About a quarter of given names have a known variant; police use it in ~38% of those rows,
# so roughly 10% of police rows carry a nickname or alternative spelling.
POLICE_P_NICK = 0.38


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
