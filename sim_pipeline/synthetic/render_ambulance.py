"""London Ambulance Service landing rows: one row per patient per incident.

LAS rows hold NHS numbers for 24% of hear-and-treat and 86% of face-to-face calls, a date of
birth for 80% and an age (sometimes a guess) instead or as well, names with a few typos and
nicknames (blank for some), and the incident's postcode: home for most, elsewhere in the
incident's borough otherwise. Row format: ``sim_pipeline.synthetic.render``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from sim_pipeline.sources import codes
from sim_pipeline.synthetic import noise
from sim_pipeline.synthetic.activity import Events
from sim_pipeline.synthetic.keyed import Keyed
from sim_pipeline.synthetic.people import Population
from sim_pipeline.synthetic.render import (
    event_borough,
    landing_frame,
    noisy_names,
    police_sex,
    seq_ids,
)
from sim_pipeline.synthetic.timeline import fmt_datetimes, month_of, years_between


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
