"""The activity model (latent crisis intensity, programme allocation, the TRUE events) and its run.

High-intensity users (referred and comparison alike, from one distribution) have a latent
monthly intensity ``exp(x_t + c_t)``: ``x`` is a mean-reverting AR(1) around a personal mean and
``c`` holds crisis jumps that decay geometrically. Referred people are allocated month by month
from their history only (``allocation.allocate``: a hazard in the rise of their crisis contacts
over the three months before, against their usual level), so allocation comes near a peak and
their use falls afterwards even with no programme effect (regression to the mean), without the
allocation knowing anything of the months that follow. While a member is engaged (engagement
date to discharge date inclusive) every daily event rate is multiplied by ``true_effect``.

Daily event counts for HIUs are Poisson draws made by inverting the CDF with uniforms drawn in a
fixed order, and every attribute of an event (time, outcome, length of stay ...) comes from a
counter-based generator keyed by the event, not from a stream position. So for one seed, runs
with different ``true_effect`` share every event outside engagement periods, and inside them a
smaller effect never yields more candidate events on a day (counts are monotone in the rate);
``simulate_events(..., counterfactual=True)`` also returns the same world without the effect.
Rates are set before allocation from the referred group's mean intensity over the allocation
period (x ``CALIBRATION_PEAK``); members then average, per person-month over the 12 months
before allocation, A&E 1.37-1.42, ambulance resources 1.18-1.27, MH bed days 2.9-3.3, police
deployments 1.04-1.05, s136 detentions 0.24 (seeds 5 and 6, 2,000 people; 73% and 76%
engage): about 70% of the levels the old generator was tuned to, which it reached by selecting
members at latent peaks the records could not show.

Primary processes and what they imply:

* ``s136`` detention -> CAD incident (attended, outcome S136) + s136 return (unless MHSDS-only,
  5%) + MHS401 code 20 period at the person's trust (unless police-only, 8%); 22% are followed
  by an admission (s2 or s3); transport by ambulance adds an LAS incident; a first place of
  safety at A&E adds an A&E attendance.
* ``adm`` admission -> spell, 1-2 ward stays, MH Act periods (01 informal, 02 s2 then 03, 03).
* ``amb`` incident -> LAS row; see-and-convey-to-ED adds an A&E attendance that day (95%).
* ``ae`` self-presentation -> ECDS row; 1% are sent twice by the provider (Der_Dupe_Flag=1).
* ``police`` / ``police_na`` -> CAD rows with and without officers attending; 15% of attended
  incidents end in an arrest, and 35% of those (a keyed draw on the incident) record a charge
  (Outcome CHARGED instead of ARREST). 5% of police-recorded detentions are also arrests for an
  offence (ArrestedForOffence on the s136 return).

Community care contacts (MHS201) are planned, not crisis use, and are NOT multiplied by
``true_effect``: see ``contacts.planned_contacts``. They come from their own random stream and
keyed attributes, so adding them changed no other output for a seed.

Admissions and detentions never overlap an open spell, and other events on inpatient days are
mostly (88%) suppressed; community contacts never take place on inpatient days. Nothing happens
after a person's death day; spells end on it.

This module owns the run, ``simulate_events`` (the steps in order and the rates' calibration,
``CALIBRATION_PEAK``), and its result ``Events``. The parts live in their own modules of
``sim_pipeline.synthetic``: ``keyed`` (counter-based draws and event keys), ``latent`` (latent
intensity, the primary processes' rates and their daily candidate events), ``allocation``
(allocation, engagement and discharges: ``Programme``), ``episodes`` (s136 detentions, hospital
spells, ward stays, MH Act periods and inpatient days), ``crisis`` (the crisis events every
service records, and the crisis contacts allocation sees) and ``contacts`` (planned community
care contacts).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np
import pandas as pd

from sim_pipeline.synthetic.allocation import Programme, allocate
from sim_pipeline.synthetic.contacts import planned_contacts
from sim_pipeline.synthetic.crisis import crisis_events, recorded_crisis
from sim_pipeline.synthetic.keyed import Keyed
from sim_pipeline.synthetic.latent import (
    BURN_IN,
    HIU_RATES,
    PROCESSES,
    PROPENSITY_OF,
    general_candidates,
    hiu_candidates,
    simulate_intensity,
)
from sim_pipeline.synthetic.names import PROGRAMME_GO_LIVE, PROGRAMME_LAST_ALLOCATION
from sim_pipeline.synthetic.people import GENERAL, PROGRAMME, Population
from sim_pipeline.synthetic.timeline import NEVER, month_index

CALIBRATION_PEAK = 1.6  # members' pre-allocation level over the referred group's mean level


@dataclass
class Events:
    """True events (one row per event; ``person`` is the internal person number).

    Every table carries ``key``: a uint64 identifying the event across runs with one seed.
    """

    detentions: pd.DataFrame
    spells: pd.DataFrame
    ward_stays: pd.DataFrame
    mha: pd.DataFrame
    ambulance: pd.DataFrame
    ae: pd.DataFrame  # includes Der_Dupe_Flag=1 provider copies (column ``dupe`` = 1)
    cad: pd.DataFrame
    # Planned community care contacts while alive; ``held`` is False for those that fell on an
    # inpatient day (they did not take place and are never written).
    contacts: pd.DataFrame
    # members' mean latent intensity over the 12 months before allocation, over the level the
    # rates were set at (CALIBRATION_PEAK is the typical value)
    calibration: float


def simulate_events(
    rngs: dict[str, np.random.Generator],
    kr: Keyed,
    pop: Population,
    true_effect: float,
    *,
    counterfactual: bool = False,
) -> tuple[Programme, Events, np.ndarray, Events | None]:
    """Latent intensity -> null-world candidates -> allocation -> true events.

    Returns (programme, events, intensity, counterfactual events). Allocation is decided on
    the crisis contacts of the world without the programme's effect (the effect only starts
    at engagement, after allocation, so the history allocation sees is the same in both
    worlds). With ``counterfactual`` the same world with ``true_effect`` 1.0 is simulated too
    (the same draws): the members' follow-up without the programme, exactly.
    """
    hiu = np.nonzero(pop.group != GENERAL)[0]
    if not np.array_equal(hiu, np.arange(len(hiu))):
        raise ValueError("high-intensity users must be numbered first")
    h = len(hiu)
    r = rngs["latent"]
    is_prog = pop.group[hiu] == PROGRAMME
    # referred people come from the same population of high-intensity users as everyone else:
    # who is allocated is decided by their history (``allocate``), not by a hidden trait
    mu = np.where(
        is_prog,
        np.clip(r.normal(0.0, 0.5, h), -1.5, 1.5),
        np.clip(r.normal(0.0, 0.5, h), -1.5, 1.5),
    )
    intensity = simulate_intensity(r, mu)
    sd = 0.35
    prop = np.exp(r.normal(-sd * sd / 2, sd, (3, h)))
    window = intensity[:, BURN_IN:]
    # rates are set before allocation: the referred group's mean intensity over the allocation
    # period, scaled so that members' 12 months before allocation come out near the targets
    live = slice(
        month_index(min(PROGRAMME_GO_LIVE.values())), month_index(PROGRAMME_LAST_ALLOCATION) + 1
    )
    level = float(window[is_prog, live].mean()) * CALIBRATION_PEAK
    rates = {k: HIU_RATES[k] / level * prop[PROPENSITY_OF[k]] for k in PROCESSES}
    never = np.full(h, NEVER, dtype=np.int64)
    saved = copy.deepcopy(rngs["hiu_events"])
    cand_null = hiu_candidates(
        rngs["hiu_events"], window, rates, pop.death[:h], never, np.full(h, -1), 1.0
    )
    general = np.arange(h, pop.n)
    cand_g = general_candidates(rngs["general_events"], general, pop.death[general])
    # the world without the effect up to the crisis records: the history allocation sees is
    # what the records show (the effect starts at engagement, after allocation)
    crisis_null = crisis_events(kr, pop, cand_null, cand_g)
    programme = allocate(rngs["allocation"], pop, intensity, recorded_crisis(crisis_null, h))
    pre = [
        window[p, max(0, a - 12) : a].mean()
        for p, a in zip(programme.person, programme.alloc_month, strict=True)
    ]
    calib = float(np.mean(pre)) / level if len(pre) else float("nan")
    eff_start = never.copy()
    eff_end = np.full(h, -1, dtype=np.int64)
    eng = programme.engaged
    eff_start[programme.person[eng]] = programme.engage_day[eng]
    eff_end[programme.person[eng]] = programme.discharge_day[eng]
    if true_effect == 1.0:
        crisis = crisis_null
    else:
        cand_h = hiu_candidates(
            saved, window, rates, pop.death[:h], eff_start, eff_end, true_effect
        )
        crisis = crisis_events(kr, pop, cand_h, cand_g)
    community = copy.deepcopy(rngs["community"])
    events = _events(kr, pop, crisis, rngs["community"], window, programme, calib)
    cf = None
    if counterfactual:
        cf = (
            events
            if true_effect == 1.0
            else _events(kr, pop, crisis_null, community, window, programme, calib)
        )
    return programme, events, window, cf


def _events(
    kr: Keyed,
    pop: Population,
    crisis: dict[str, pd.DataFrame],
    community: np.random.Generator,
    window: np.ndarray,
    programme: Programme,
    calib: float,
) -> Events:
    """The crisis events plus the planned community contacts (which skip inpatient days)."""
    contacts = planned_contacts(
        community, kr, pop, window, programme, crisis["spells"], crisis["mha"]
    )
    return Events(**crisis, contacts=contacts, calibration=calib)
