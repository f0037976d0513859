"""Planned community mental-health care contacts (MHS201) for people known to their trust.

Contacts are planned care, not crisis use, so ``true_effect`` does not scale them:
``planned_contacts`` gives HIUs about ``CONTACT_RATE`` a month (a little more in months of high
intensity) and other people known to the trust ``GENERAL_CONTACT_RATE`` a year from their first
MHSDS record; mostly on weekdays in office hours, by telephone or video for about half from the
first lockdown (``REMOTE_FROM``); attended, not attended or cancelled. The draws come from their
own random stream and the contacts' keys (tag ``CONTACT_TAG``), so adding contacts changed no
other output for a seed; a contact planned on an inpatient day does not take place.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from sim_pipeline.synthetic.allocation import Programme
from sim_pipeline.synthetic.episodes import inpatient_mask
from sim_pipeline.synthetic.keyed import Keyed, keys
from sim_pipeline.synthetic.people import Population
from sim_pipeline.synthetic.timeline import (
    DAYS_IN_MONTH,
    MONTH_START,
    N_DAYS,
    N_MONTHS,
    NEVER,
    day_number,
)

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


_WEEKDAY_DAYS = np.nonzero((np.arange(N_DAYS) + 4) % 7 < 5)[0]  # 2016-01-01 was a Friday
_WEEKDAY_FIRST = np.searchsorted(_WEEKDAY_DAYS, MONTH_START)  # per month (+ sentinel)
CONS_MECHANISMS = ("01", "02", "04", "10")  # face to face, telephone, talk type, video
CONS_BEFORE = (0.78, 0.2, 0.02, 0.0)
CONS_REMOTE = (0.47, 0.38, 0.02, 0.13)


def contact_days(month: np.ndarray, u_day: np.ndarray, u_weekday: np.ndarray) -> np.ndarray:
    """A day in each month: a weekday with probability WEEKDAY_SHARE, otherwise any day."""
    any_day = MONTH_START[month] + (u_day * DAYS_IN_MONTH[month]).astype(np.int64)
    n_weekdays = _WEEKDAY_FIRST[month + 1] - _WEEKDAY_FIRST[month]
    weekday = _WEEKDAY_DAYS[_WEEKDAY_FIRST[month] + (u_day * n_weekdays).astype(np.int64)]
    return np.where(u_weekday < WEEKDAY_SHARE, weekday, any_day)


def planned_contacts(
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
    d_h = contact_days(m_h, u[0], u[1])
    dna_h = np.clip(HIU_DNA * ratio[p_h, m_h] ** DNA_POWER, DNA_MIN, DNA_MAX)

    g = np.arange(h, pop.n)
    g = g[known[g]]
    k = rng.poisson(GENERAL_CONTACT_RATE / 12, (len(g), N_MONTHS))
    rows, cols = np.nonzero(k)
    reps = k[rows, cols]
    p_g, m_g = g[np.repeat(rows, reps)], np.repeat(cols, reps)
    u = rng.random((2, len(p_g)))
    d_g = contact_days(m_g, u[0], u[1])
    keep_g = d_g >= first[p_g]  # from the first MHSDS record on

    person = np.concatenate([p_h, p_g[keep_g]]).astype(np.int64)
    day = np.concatenate([d_h, d_g[keep_g]]).astype(np.int64)
    p_dna = np.concatenate([dna_h, np.full(int(keep_g.sum()), GENERAL_DNA)])
    ok = known[person] & (day <= pop.death[person])
    person, day, p_dna = person[ok], day[ok], p_dna[ok]
    return contact_frame(kr, person, day, p_dna, spells)


def contact_frame(
    kr: Keyed, person: np.ndarray, day: np.ndarray, p_dna: np.ndarray, spells: pd.DataFrame
) -> pd.DataFrame:
    """Planned contacts of ``person`` on ``day`` with their keyed attributes: time, consultation
    mechanism, attendance (did not attend with probability ``p_dna``, 4% cancelled by each
    side) and ``held`` (False on an inpatient day of ``spells``)."""
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
