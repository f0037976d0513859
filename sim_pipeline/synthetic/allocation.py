"""The programme: who is allocated and when, who engages, and when members are discharged.

``allocate`` works month by month from history only: ``allocation_hazard`` is a monthly hazard
in the rise of a referred person's crisis contacts over the three months before against their
usual level, while their borough has places left (``PROGRAMME_BOROUGH_COUNTS``). Engagement is
more likely while the latent intensity is falling; months on the programme run 1..25 with mean
13, and members still on it at 2021-05-31 are discharged that day (``programme_closed``).
``Programme`` holds the result, one row per allocated person.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sim_pipeline.synthetic.latent import BURN_IN
from sim_pipeline.synthetic.names import (
    PROGRAMME_BOROUGH_COUNTS,
    PROGRAMME_GO_LIVE,
    PROGRAMME_LAST_ALLOCATION,
)
from sim_pipeline.synthetic.people import COMPARISON, PROGRAMME, Population
from sim_pipeline.synthetic.timeline import (
    DAYS_IN_MONTH,
    MONTH_START,
    N_DAYS,
    N_MONTHS,
    NEVER,
    month_end,
    month_index,
    month_of,
)

# Allocation (``allocate``): a monthly hazard in the recent rise of crisis contacts.
ALLOC_BASE_HAZARD = 0.01  # a month, at a person's usual level
ALLOC_PEAK_POWER = 6.0  # hazard x (recent / usual) ** 6: referrals come near a peak
ALLOC_HAZARD_MAX = 0.5
USUAL_MONTHS = 24


ENGAGE_SHARE = 79 / 108  # about 73% engage (SIM's own figures: 79 of 108)
ENGAGE_FALL = 1.5  # log-odds per unit fall of log latent intensity in the month after
ENGAGE_LEVEL = 0.5  # log-odds per unit of the usual log level above the members' mean
MONTHS_ON_MIN, MONTHS_ON_MAX, MONTHS_ON_MEAN = 1, 25, 13.0


def _pick(rng: np.random.Generator, options, probs, n: int) -> np.ndarray:
    p = np.asarray(probs, dtype=float)
    return np.asarray(options, dtype=object)[rng.choice(len(options), size=n, p=p / p.sum())]


@dataclass
class Programme:
    """The 108 allocated people (row i describes person ``person[i]``)."""

    person: np.ndarray
    alloc_month: np.ndarray
    alloc_day: np.ndarray
    engaged: np.ndarray
    engage_day: np.ndarray  # NEVER when not engaged
    discharge_day: np.ndarray  # NEVER when still open
    reason: np.ndarray  # '' when open
    months_on: np.ndarray  # 0 when not engaged
    trailing3: np.ndarray  # trailing 3-month mean intensity at allocation
    register_id: np.ndarray


def _trailing3(intensity: np.ndarray) -> np.ndarray:
    """Mean intensity over the three months before each month (NaN for the first three)."""
    cs = np.concatenate([np.zeros((len(intensity), 1)), np.cumsum(intensity, axis=1)], axis=1)
    tr = np.full(intensity.shape, np.nan)
    tr[:, 3:] = (cs[:, 3:-1] - cs[:, :-4]) / 3
    return tr


def _months_on_programme(rng: np.random.Generator, cap: np.ndarray) -> np.ndarray:
    """Months on the programme per engaged person: 1..25, one at 1, one at 25, mean 13."""
    n = len(cap)
    upper = np.minimum(cap, MONTHS_ON_MAX)
    m = np.minimum(rng.integers(MONTHS_ON_MIN, MONTHS_ON_MAX + 1, n), upper)
    # one member at 25 months and one at 1 (SIM's reported range) when the calendar allows
    can25 = np.nonzero(upper == MONTHS_ON_MAX)[0]
    fixed: list[int] = []
    if len(can25) and n >= 2:
        f25 = int(can25[rng.integers(len(can25))])
        rest = np.setdiff1d(np.arange(n), [f25])
        f1 = int(rest[rng.integers(len(rest))])
        m[f25], m[f1] = MONTHS_ON_MAX, MONTHS_ON_MIN
        fixed = [f1, f25]
    free = np.setdiff1d(np.arange(n), fixed)
    target = int(round(MONTHS_ON_MEAN * n))
    for _ in range(100_000):
        total = int(m.sum())
        if total == target:
            break
        if total < target:
            elig = free[m[free] < upper[free]]
            step = 1
        else:
            elig = free[m[free] > MONTHS_ON_MIN]
            step = -1
        if not len(elig):
            break
        m[elig[rng.integers(len(elig))]] += step
    return m


def allocation_hazard(counts: np.ndarray, month: int) -> np.ndarray:
    """Monthly probability of allocation from history only: the crisis contacts of the three
    months before ``month`` against the person's usual level (the 24 months before those)."""
    cs = np.concatenate([np.zeros((len(counts), 1)), np.cumsum(counts, axis=1)], axis=1)
    recent = (cs[:, month] - cs[:, month - 3]) / 3
    u0 = max(0, month - 3 - USUAL_MONTHS)
    usual = (cs[:, month - 3] - cs[:, u0]) / max(month - 3 - u0, 1)
    ratio = (recent + 1.0) / (usual + 1.0)
    return np.clip(ALLOC_BASE_HAZARD * ratio**ALLOC_PEAK_POWER, 0.0, ALLOC_HAZARD_MAX)


def allocate(
    rng: np.random.Generator, pop: Population, intensity: np.ndarray, counts: np.ndarray
) -> Programme:
    """Allocation month by month from what exists at the time, then engagement and discharges.

    Every referred person (group ``programme``) whose borough is live, who is alive for the
    whole month and not yet allocated is allocated in a month with probability
    ``allocation_hazard`` (history up to the month before: a recent rise in crisis contacts),
    while the borough has places left (``PROGRAMME_BOROUGH_COUNTS``); when more people are
    drawn than places, the places go in a random order. In the last allocation month the
    remaining places go to the remaining referred people, at random. Nothing after the month
    is used: being allocated says nothing about the months that follow beyond what the past
    already says. Referred people never allocated are relabelled ``comparison_hiu``.

    Engagement (days 0-60 after allocation) is more likely when the person's latent intensity
    is falling at the time (month after allocation against the allocation month) and less
    likely for people with a high usual level: the selection per-protocol comparisons carry
    in life. The programme's effect applies while engaged only, so ITT divided by the share
    engaged is the effect on those who engage (CACE).
    """
    referred = np.nonzero(pop.group == PROGRAMME)[0]
    last = month_index(PROGRAMME_LAST_ALLOCATION)
    first = np.array([month_index(PROGRAMME_GO_LIVE[pop.borough[p]]) for p in referred])
    places = dict(PROGRAMME_BOROUGH_COUNTS)
    borough = pop.borough[referred]
    draws = rng.random((len(referred), N_MONTHS))
    order_u = rng.random((N_MONTHS, len(referred)))
    alloc_month = np.full(len(referred), -1, dtype=np.int64)
    alive_month = pop.death[referred][:, None] > month_end(np.arange(N_MONTHS))[None, :]
    for m in range(int(first.min()), last + 1):
        open_ = (alloc_month < 0) & (first <= m) & alive_month[:, m]
        if m < last:
            hazard = allocation_hazard(counts[referred], m)
            chosen = open_ & (draws[:, m] < hazard)
        else:
            chosen = open_
        for b in sorted(places):
            idx = np.nonzero(chosen & (borough == b))[0]
            idx = idx[np.argsort(order_u[m, idx], kind="stable")][: places[b]]
            alloc_month[idx] = m
            places[b] -= len(idx)
    taken = np.nonzero(alloc_month >= 0)[0]
    never = referred[alloc_month < 0]
    pop.group[never] = COMPARISON
    person = referred[taken]
    alloc_month = alloc_month[taken]
    n = len(person)
    trailing3 = _trailing3(intensity[person])[np.arange(n), BURN_IN + alloc_month]
    span = DAYS_IN_MONTH[alloc_month]
    alloc_day = MONTH_START[alloc_month] + (rng.random(n) * span).astype(np.int64)
    death_day = pop.death[person]
    # engagement: latent state at the time (falling intensity) and the usual level
    log_i = np.log(intensity[person][:, BURN_IN:])
    now = log_i[np.arange(n), alloc_month]
    after = log_i[np.arange(n), np.minimum(alloc_month + 1, N_MONTHS - 1)]
    level = np.array([log_i[i, : max(alloc_month[i], 1)].mean() for i in range(n)])
    logit = (
        np.log(ENGAGE_SHARE / (1 - ENGAGE_SHARE))
        - ENGAGE_FALL * (after - now)
        - ENGAGE_LEVEL * (level - level.mean())
    )
    engaged = rng.random(n) < 1 / (1 + np.exp(-logit))
    engage_day = np.where(engaged, alloc_day + rng.integers(0, 61, n), NEVER)
    engaged &= engage_day < np.minimum(death_day, N_DAYS)  # nobody engages after death
    engage_day = np.where(engaged, engage_day, NEVER)

    months_on = np.zeros(n, dtype=np.int64)
    discharge = np.full(n, NEVER, dtype=np.int64)
    reason = np.full(n, "", dtype=object)
    eng_idx = np.nonzero(engaged)[0]
    eng_month = month_of(engage_day[eng_idx])
    death_month = np.where(
        death_day[eng_idx] < N_DAYS, month_of(np.minimum(death_day[eng_idx], N_DAYS - 1)), NEVER
    )
    cap_month = np.minimum(N_MONTHS - 1, death_month)
    cap = cap_month - eng_month + 1
    m = _months_on_programme(rng, cap) if len(eng_idx) else np.zeros(0, dtype=np.int64)
    months_on[eng_idx] = m
    ordinary = _pick(
        rng,
        ["goals_met", "disengaged", "transferred", "moved_away"],
        [0.5, 0.25, 0.12, 0.13],
        len(eng_idx),
    )
    u_day = rng.random(len(eng_idx))
    for k, i in enumerate(eng_idx):
        dm = eng_month[k] + m[k] - 1
        if m[k] == cap[k] and death_month[k] == dm:
            discharge[i], reason[i] = death_day[i], "died"
        elif m[k] == cap[k]:
            discharge[i], reason[i] = N_DAYS - 1, "programme_closed"
        else:
            lo = max(int(MONTH_START[dm]), int(engage_day[i]))
            hi = min(int(month_end(dm)), int(death_day[i]) - 1)
            discharge[i] = lo + int(u_day[k] * max(hi - lo + 1, 1))
            reason[i] = ordinary[k]
    # allocated but never engaged: most drop out within weeks; the rest stay until closure
    non = np.nonzero(~engaged)[0]
    drop = rng.random(len(non)) < 0.65
    drop_day = alloc_day[non] + rng.integers(21, 113, len(non))
    for k, i in enumerate(non):
        if drop[k] and drop_day[k] < min(death_day[i], N_DAYS):
            discharge[i], reason[i] = drop_day[k], "disengaged"
        elif death_day[i] < N_DAYS:
            discharge[i], reason[i] = death_day[i], "died"
        else:
            discharge[i], reason[i] = N_DAYS - 1, "programme_closed"
    order = np.lexsort((person, alloc_day))
    register_id = np.empty(n, dtype=object)
    register_id[order] = [f"REG-{k + 1:05d}" for k in range(n)]
    return Programme(
        person=person,
        alloc_month=alloc_month,
        alloc_day=alloc_day,
        engaged=engaged,
        engage_day=engage_day,
        discharge_day=discharge,
        reason=reason,
        months_on=months_on,
        trailing3=trailing3,
        register_id=register_id,
    )
