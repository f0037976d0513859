"""Who each person is at each month, for the evaluation's exact-match strata.

Owns sex per person, age band per person and month (the nearest earlier record's, else the next
one's) and death month per person, read from the person dimension or the generator's truth
(``demographics``); the sex and age-band stratum the difference-in-differences bracket matches
exactly on (``strata``) and its numeric form for the primary design's prognostic model
(``strata_numeric``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from sim_pipeline.evaluation.panel import month_index
from sim_pipeline.identity.normalise import AGE_BANDS
from sim_pipeline.identity.person_dimension import most_frequent


def demographics(people: pd.DataFrame, keys: list[str], months: list[str]) -> dict:
    """Sex per person, age band per person-month (the nearest earlier record's, else the next
    one's), and death month per person (10**6 if none)."""
    kidx = pd.Series(np.arange(len(keys)), index=keys)
    n_m = len(months)
    sex = np.full(len(keys), "U", dtype=object)
    death = np.full(len(keys), 10**6, dtype=np.int64)
    age = np.full((len(keys), n_m), None, dtype=object)
    p = people[people["person_key"].isin(kidx.index)] if len(people) else people
    if len(p) and "sex" in p.columns:
        sx = p[["person_key", "sex"]].dropna()
        sx = sx[sx["sex"].astype(str) != "U"].astype({"sex": str})
        mode = most_frequent(sx, ["person_key"], "sex")
        sex[kidx[mode.index].to_numpy()] = mode.to_numpy()
    if len(p) and "death_month" in p.columns:
        d = p[["person_key", "death_month"]].dropna().groupby("person_key")["death_month"].min()
        death[kidx[d.index].to_numpy()] = month_index(months, d)
    if len(p) and "birth_year" in p.columns:  # the generator's truth: band from birth year
        by = p[["person_key", "birth_year"]].dropna().drop_duplicates("person_key")
        years = np.array([int(m[:4]) for m in months])
        ages = years[None, :] - by["birth_year"].astype(int).to_numpy()[:, None]
        bands = np.full(ages.shape, None, dtype=object)
        for lo, hi, band in AGE_BANDS:
            bands[(ages >= lo) & (ages <= hi)] = band
        age[kidx[by["person_key"]].to_numpy(), :] = bands
    elif len(p) and "age_band" in p.columns:
        a = p.dropna(subset=["age_band"]).astype({"age_band": str})
        if "month" in a.columns:
            a = a[a["month"].isin(set(months))].astype({"month": str})
            mode = most_frequent(a, ["person_key", "month"], "age_band")
            pi = kidx[mode.index.get_level_values(0)].to_numpy()
            mi = month_index(months, pd.Series(mode.index.get_level_values(1)))
            age[pi, mi] = mode.to_numpy()
            age = _fill_along_months(age)
        else:
            mode = most_frequent(a, ["person_key"], "age_band")
            age[kidx[mode.index].to_numpy(), :] = mode.to_numpy()[:, None]
    age = np.where(pd.isna(age), "unknown", age).astype(object)
    return {"sex": sex, "age": age, "death": death}


def _fill_along_months(values: np.ndarray) -> np.ndarray:
    """Each person's missing (None) months from their nearest earlier value, else the next
    one's (forward then backward fill along axis 1, on integer codes)."""
    labels, codes = np.unique(values[values != None].astype(str), return_inverse=True)  # noqa: E711
    code = np.full(values.shape, -1, dtype=np.int64)
    code[values != None] = codes  # noqa: E711
    cols = np.arange(values.shape[1])[None, :]
    for flip in (False, True):
        c = code[:, ::-1] if flip else code
        last = np.maximum.accumulate(np.where(c >= 0, cols, -1), axis=1)
        filled = np.take_along_axis(c, np.maximum(last, 0), axis=1)
        filled = np.where(last >= 0, filled, -1)
        code = filled[:, ::-1] if flip else filled
    out = np.full(values.shape, None, dtype=object)
    out[code >= 0] = labels[code[code >= 0]]
    return out


def strata(demo: dict, person: np.ndarray, month: np.ndarray) -> np.ndarray:
    m = np.clip(month, 0, demo["age"].shape[1] - 1)
    return np.array(
        [f"{s}|{a}" for s, a in zip(demo["sex"][person], demo["age"][person, m], strict=True)],
        dtype=object,
    )


def strata_numeric(demo: dict) -> np.ndarray:
    """(male, age band position) per person and month, for the prognostic model."""
    order = {band: i for i, (_, _, band) in enumerate(AGE_BANDS)}
    age = np.vectorize(lambda a: order.get(a, -1), otypes=[float])(demo["age"])
    male = (demo["sex"] == "M").astype(float)
    return np.stack([np.broadcast_to(male[:, None], age.shape), age], axis=2)
