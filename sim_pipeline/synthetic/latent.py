"""Latent crisis intensity and the daily candidate events it drives.

High-intensity users have a latent monthly intensity (``simulate_intensity``: a mean-reverting
AR(1) around a personal mean plus crisis jumps that decay geometrically). Each primary process
(``PROCESSES``: s136 detentions, admissions, police incidents with and without officers
attending, ambulance incidents, A&E self-presentations) has a monthly rate for HIUs
(``HIU_RATES``, scaled by a personal propensity) and a yearly one for the general population
(``GENERAL_RATES``, with gamma frailty). ``hiu_candidates`` makes daily Poisson counts from
intensity x rate by inverting the CDF with uniforms drawn in a fixed order
(``poisson_from_uniform``: counts are monotone in the rate); ``general_candidates`` draws the
general population's rare events. A candidate's key is ``event_keys``.
"""

from __future__ import annotations

import numpy as np

from sim_pipeline.synthetic.keyed import keys
from sim_pipeline.synthetic.timeline import DAY_MONTH, DAYS_IN_MONTH, N_DAYS, N_MONTHS

# Latent process (monthly).
BURN_IN = 36
PHI = 0.75
INNOVATION_SD = 0.42
JUMP_PROB = 0.08
JUMP_BASE, JUMP_MEAN, JUMP_MAX = 0.6, 0.5, 1.6  # log-scale crisis jump: base + Exp, capped
JUMP_DECAY = 0.55
CRISIS_MAX = 2.0  # at most exp(2) ~ 7x a person's usual level from crises
X_SD_CAP = 3.0  # the AR(1) part stays within 3 stationary SDs of the personal mean
PEAK_CAP = 1.6  # and the whole intensity within exp(1.6) ~ 5x the person's usual level
MU_MAX = 1.0  # personal mean: at most exp(1.0) ~ 2.7x a typical high-intensity user

# Monthly rate of each primary process for a programme member at their average level over the
# 12 months before allocation (tuned so the derived metrics hit the targets in the docstring).
HIU_RATES = {
    "s136": 0.46,
    "adm": 0.17,
    "police": 1.55,
    "police_na": 0.35,
    "amb": 1.75,
    "ae": 1.55,
}
PROCESSES = tuple(HIU_RATES)
# Yearly rates in the general population (mean; individual frailty is gamma with shape 0.5).
GENERAL_RATES = {
    "s136": 0.0008,
    "adm": 0.002,
    "police": 0.01,
    "police_na": 0.004,
    "amb": 0.07,
    "ae": 0.20,
}
# Which personal propensity scales each process.
PROPENSITY_OF = {
    "s136": 1,
    "police": 1,
    "police_na": 1,
    "adm": 2,
    "amb": 0,
    "ae": 0,
}


PROC_ID = {p: i for i, p in enumerate(PROCESSES)}


def event_keys(proc: str, person: np.ndarray, day: np.ndarray) -> np.ndarray:
    """Key of each candidate event: process, person, day and occurrence on that day."""
    return keys(PROC_ID[proc], person, day)


def poisson_from_uniform(u: np.ndarray, lam: np.ndarray) -> np.ndarray:
    """Poisson counts by inverting the CDF at ``u`` (monotone in ``lam`` for fixed ``u``)."""
    shape = u.shape
    u = u.ravel()
    lam = lam.ravel()
    k = np.zeros(u.size, dtype=np.int64)
    p = np.exp(-lam)
    cdf = p.copy()
    idx = np.nonzero(u > cdf)[0]
    j = 0
    while idx.size and j < 60:
        j += 1
        pj = p[idx] * lam[idx] / j
        p[idx] = pj
        cdf[idx] += pj
        k[idx] += 1
        idx = idx[u[idx] > cdf[idx]]
    return k.reshape(shape)


def simulate_intensity(rng: np.random.Generator, mu: np.ndarray) -> np.ndarray:
    """Latent monthly intensity, shape (people, BURN_IN + N_MONTHS)."""
    h = len(mu)
    t_all = BURN_IN + N_MONTHS
    eps = rng.normal(0.0, INNOVATION_SD, (h, t_all))
    jump = (rng.random((h, t_all)) < JUMP_PROB) * np.minimum(
        JUMP_BASE + rng.exponential(JUMP_MEAN, (h, t_all)), JUMP_MAX
    )
    sd = INNOVATION_SD / np.sqrt(1 - PHI**2)
    x = mu + rng.normal(0.0, sd, h)
    c = np.zeros(h)
    out = np.empty((h, t_all))
    for t in range(t_all):
        x = np.clip(mu + PHI * (x - mu) + eps[:, t], mu - X_SD_CAP * sd, mu + X_SD_CAP * sd)
        c = np.minimum(JUMP_DECAY * c + jump[:, t], CRISIS_MAX)
        out[:, t] = np.minimum(x + c, mu + PEAK_CAP)
    return np.exp(out)


Candidates = dict[str, tuple[np.ndarray, np.ndarray]]


def hiu_candidates(
    rng: np.random.Generator,
    window: np.ndarray,
    rates: dict[str, np.ndarray],
    death: np.ndarray,
    eff_start: np.ndarray,
    eff_end: np.ndarray,
    true_effect: float,
    chunk: int = 256,
) -> Candidates:
    """Daily Poisson candidates for every HIU and process: (person, day) arrays.

    The uniforms are drawn in a fixed order whatever the rates, so runs that differ only in
    ``true_effect`` share every candidate outside engagement periods.
    """
    h = window.shape[0]
    day = np.arange(N_DAYS)
    found: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {p: [] for p in PROCESSES}
    for c0 in range(0, h, chunk):
        c1 = min(h, c0 + chunk)
        base = window[c0:c1][:, DAY_MONTH] / DAYS_IN_MONTH[DAY_MONTH]
        alive = day[None, :] <= death[c0:c1, None]
        engaged = (day[None, :] >= eff_start[c0:c1, None]) & (day[None, :] <= eff_end[c0:c1, None])
        base = base * alive * np.where(engaged, true_effect, 1.0)
        for proc in PROCESSES:
            u = rng.random(base.shape)
            k = poisson_from_uniform(u, base * rates[proc][c0:c1, None])
            rows, cols = np.nonzero(k)
            reps = k[rows, cols]
            found[proc].append((np.repeat(rows + c0, reps), np.repeat(cols, reps)))
    return {
        p: (
            np.concatenate([a for a, _ in found[p]]).astype(np.int64),
            np.concatenate([b for _, b in found[p]]).astype(np.int64),
        )
        for p in PROCESSES
    }


def general_candidates(
    rng: np.random.Generator, people: np.ndarray, death: np.ndarray
) -> Candidates:
    """Low-rate events for the general population (gamma frailty, uniform days while alive)."""
    last = np.minimum(death, N_DAYS - 1)
    years = (last + 1) / 365.2425
    out = {}
    frailty = rng.gamma(0.5, 2.0, (3, len(people)))
    for proc in PROCESSES:
        lam = GENERAL_RATES[proc] * frailty[PROPENSITY_OF[proc]] * years
        k = rng.poisson(lam)
        who = np.repeat(np.arange(len(people)), k)
        days = (rng.random(len(who)) * (last[who] + 1)).astype(np.int64)
        out[proc] = (people[who], days)
    return out
