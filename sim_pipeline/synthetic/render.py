"""Landing rows: the frame every provider renderer returns and the helpers they share.

The renderers (``render_mhsds``, ``render_police``, ``render_ambulance`` and ``render_ecds``)
return one DataFrame per table, made by ``landing_frame``: the contract's columns as text
('' = missing) plus bookkeeping columns ``_provider`` (folder), ``_month`` (file month index),
``_person`` (internal person number) and ``_sort`` (order inside the file). Bookkeeping columns
are never written to landing files.

Identifier noise per source (see the module docstring of ``sim_pipeline.synthetic``):
MHSDS nearly clean; police with typos, nicknames, DOB slips, upper-case CAD names and blank
postcodes; LAS with partial NHS numbers and ages instead of DOBs; ECDS with no names. Shared
here: ids increasing in time (``seq_ids``), where an incident happened (``event_borough``), and
names and sex as agencies outside the trusts record them (``noisy_names``, ``police_sex``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from sim_pipeline.sources.base import BOROUGHS
from sim_pipeline.synthetic import noise
from sim_pipeline.synthetic.keyed import Keyed
from sim_pipeline.synthetic.people import Population

META = ("_provider", "_month", "_person", "_sort")  # bookkeeping columns, never written


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
