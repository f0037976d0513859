"""The activity model: latent crisis intensity, programme allocation, and the TRUE events.

High-intensity users (referred and comparison alike, from one distribution) have a latent
monthly intensity ``exp(x_t + c_t)``: ``x`` is a mean-reverting AR(1) around a personal mean and
``c`` holds crisis jumps that decay geometrically. Referred people are allocated month by month
from their history only (``allocation.allocate``: a hazard in the rise of their crisis contacts
over the three months before, against their usual level), so allocation comes near a peak and
their use falls afterwards even with no programme effect (regression to the mean), without the
allocation knowing anything of the months that follow. While a member is engaged (engagement date to
discharge date inclusive) every daily event rate is multiplied by ``true_effect``.

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
``true_effect``: see ``_contacts``. They come from their own random stream and keyed attributes,
so adding them changed no other output for a seed.

Admissions and detentions never overlap an open spell, and other events on inpatient days are
mostly (88%) suppressed; community contacts never take place on inpatient days. Nothing happens
after a person's death day; spells end on it.

Parts of the model live in their own modules of ``sim_pipeline.synthetic``: ``keyed``
(counter-based draws and event keys), ``latent`` (latent intensity, the primary processes'
rates and their daily candidate events), ``allocation`` (allocation, engagement and
discharges: ``Programme``), ``episodes`` (s136 detentions, hospital spells, ward stays, MH
Act periods and inpatient days) and ``crisis`` (the crisis events every service records,
and the crisis contacts allocation sees).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np
import pandas as pd

from sim_pipeline.synthetic.allocation import Programme, allocate
from sim_pipeline.synthetic.crisis import crisis_events, recorded_crisis
from sim_pipeline.synthetic.episodes import inpatient_mask
from sim_pipeline.synthetic.keyed import Keyed, keys
from sim_pipeline.synthetic.latent import (
    BURN_IN,
    HIU_RATES,
    PROCESSES,
    PROPENSITY_OF,
    general_candidates,
    hiu_candidates,
    simulate_intensity,
)
from sim_pipeline.synthetic.names import (
    PROGRAMME_GO_LIVE,
    PROGRAMME_LAST_ALLOCATION,
)
from sim_pipeline.synthetic.people import GENERAL, PROGRAMME, Population
from sim_pipeline.synthetic.timeline import (
    DAYS_IN_MONTH,
    MONTH_START,
    N_DAYS,
    N_MONTHS,
    NEVER,
    day_number,
    month_index,
)

CALIBRATION_PEAK = 1.6  # members' pre-allocation level over the referred group's mean level


# Community mental-health care contacts (MHS201): planned appointments, not crisis use, so the
# programme's effect (``true_effect``) does not apply to them.
CONTACT_RATE = 2.5  # planned contacts a month for a HIU at their usual (median) intensity
CONTACT_POWER, CONTACT_MAX = 0.2, 1.6  # rate x (intensity / usual) ** 0.2, at most x 1.6
GENERAL_CONTACT_RATE = 1.0  # a year, general population known to the trust, from first record
HIU_DNA, GENERAL_DNA = 0.20, 0.10  # did-not-attend probability (HIU: at usual intensity)
DNA_POWER, DNA_MIN, DNA_MAX = 0.35, 0.08, 0.5  # HIU: 0.2 x (intensity / usual) ** 0.35, clipped
CANCEL_BY_PATIENT, CANCEL_BY_PROVIDER = 0.04, 0.04
WEEKDAY_SHARE = 0.92  # contacts on a weekday (community teams work office hours)
REMOTE_FROM = "2020-03-23"  # first lockdown: telephone and video replace half the visits
CONTACT_TAG = 15  # low bits of a contact's key (event processes use 0..5)


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


_WEEKDAY_DAYS = np.nonzero((np.arange(N_DAYS) + 4) % 7 < 5)[0]  # 2016-01-01 was a Friday
_WEEKDAY_FIRST = np.searchsorted(_WEEKDAY_DAYS, MONTH_START)  # per month (+ sentinel)
CONS_MECHANISMS = ("01", "02", "04", "10")  # face to face, telephone, talk type, video
CONS_BEFORE = (0.78, 0.2, 0.02, 0.0)
CONS_REMOTE = (0.47, 0.38, 0.02, 0.13)


def _contact_days(month: np.ndarray, u_day: np.ndarray, u_weekday: np.ndarray) -> np.ndarray:
    """A day in each month: a weekday with probability WEEKDAY_SHARE, otherwise any day."""
    any_day = MONTH_START[month] + (u_day * DAYS_IN_MONTH[month]).astype(np.int64)
    n_weekdays = _WEEKDAY_FIRST[month + 1] - _WEEKDAY_FIRST[month]
    weekday = _WEEKDAY_DAYS[_WEEKDAY_FIRST[month] + (u_day * n_weekdays).astype(np.int64)]
    return np.where(u_weekday < WEEKDAY_SHARE, weekday, any_day)


def _contacts(
    rng: np.random.Generator,
    kr: Keyed,
    pop: Population,
    window: np.ndarray,
    programme: Programme,
    spells: pd.DataFrame,
    mha: pd.DataFrame,
) -> pd.DataFrame:
    """Planned community care contacts (MHS201) for people known to their trust.

    Known = a programme member or anyone with an MHSDS MH Act period or hospital spell starting
    in the window, so every contact's LocalPatientId is in MHS001MPI (in some month). HIUs have
    ``CONTACT_RATE`` contacts a month at their median intensity, ``(intensity / median) ** 0.2``
    times that in other months (at most 1.6x); the general population ``GENERAL_CONTACT_RATE`` a
    year from their first MHSDS record. The did-not-attend probability is 20% for HIUs at their
    median intensity, rising (and falling) with ``(intensity / median) ** 0.35`` within 8-50%,
    and 10% for the general population; 4% are cancelled by the patient and 4% by the trust.

    Nothing here depends on ``true_effect``: the draws come from their own stream in a fixed
    order and the attributes from the contact's key. The effect can only reach contacts through
    ``held`` (False on an inpatient day, when the contact does not take place).
    """
    h = window.shape[0]
    first = np.full(pop.n, NEVER, dtype=np.int64)
    for table in (mha, spells):
        np.minimum.at(first, table["person"].to_numpy(dtype=np.int64), table["start"].to_numpy())
    known = first < N_DAYS
    known[programme.person] = True

    usual = np.median(window, axis=1)
    ratio = window / usual[:, None]
    lam = CONTACT_RATE * np.minimum(ratio**CONTACT_POWER, CONTACT_MAX)
    k = rng.poisson(lam)
    rows, cols = np.nonzero(k)
    reps = k[rows, cols]
    p_h, m_h = np.repeat(rows, reps), np.repeat(cols, reps)
    u = rng.random((2, len(p_h)))
    d_h = _contact_days(m_h, u[0], u[1])
    dna_h = np.clip(HIU_DNA * ratio[p_h, m_h] ** DNA_POWER, DNA_MIN, DNA_MAX)

    g = np.arange(h, pop.n)
    g = g[known[g]]
    k = rng.poisson(GENERAL_CONTACT_RATE / 12, (len(g), N_MONTHS))
    rows, cols = np.nonzero(k)
    reps = k[rows, cols]
    p_g, m_g = g[np.repeat(rows, reps)], np.repeat(cols, reps)
    u = rng.random((2, len(p_g)))
    d_g = _contact_days(m_g, u[0], u[1])
    keep_g = d_g >= first[p_g]  # from the first MHSDS record on

    person = np.concatenate([p_h, p_g[keep_g]]).astype(np.int64)
    day = np.concatenate([d_h, d_g[keep_g]]).astype(np.int64)
    p_dna = np.concatenate([dna_h, np.full(int(keep_g.sum()), GENERAL_DNA)])
    ok = known[person] & (day <= pop.death[person])
    person, day, p_dna = person[ok], day[ok], p_dna[ok]
    key = keys(CONTACT_TAG, person, day)

    secs = 9 * 3600 + 900 * kr.integers(key, 201, 0, 33)  # quarter hours 09:00-17:00
    remote = day >= day_number(REMOTE_FROM)
    mech = np.where(
        remote,
        kr.pick(key, 202, CONS_MECHANISMS, CONS_REMOTE),
        kr.pick(key, 202, CONS_MECHANISMS, CONS_BEFORE),
    )
    v = kr.u(key, 203)
    cancelled_patient = (v >= p_dna) & (v < p_dna + CANCEL_BY_PATIENT)
    cancelled_trust = (v >= p_dna + CANCEL_BY_PATIENT) & (
        v < p_dna + CANCEL_BY_PATIENT + CANCEL_BY_PROVIDER
    )
    attend = np.where(
        v < p_dna,
        kr.pick(key, 204, ["3", "7"], [0.85, 0.15]),
        np.where(
            cancelled_patient,
            "2",
            np.where(cancelled_trust, "4", kr.pick(key, 205, ["5", "6"], [0.9, 0.1])),
        ),
    )
    contacts = pd.DataFrame(
        {"person": person, "day": day, "secs": secs, "mechanism": mech, "attend": attend,
         "held": ~inpatient_mask(spells, person, day), "key": key}
    )  # fmt: skip
    return contacts.sort_values(["person", "day", "key"], kind="stable").reset_index(drop=True)


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
    contacts = _contacts(community, kr, pop, window, programme, crisis["spells"], crisis["mha"])
    return Events(**crisis, contacts=contacts, calibration=calib)
