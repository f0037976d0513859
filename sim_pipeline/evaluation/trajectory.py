"""The trajectory: mean monthly cost by month from the index, members against comparisons.

Owns the difference-in-differences bracket's trajectory rows (``trajectory``: programme members
and their matched comparisons, months -12..+24 from the index, months alive and in the data)
and what no correct trajectory table can show (``trajectory_problems``, the check of the
evaluation asset). The primary design's event study is written beside it by
``comparison.evaluate``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

TRAJECTORY_MONTHS = range(-12, 25)


def trajectory(analysis, pop, pan, cost, t_person, t_index, death, c_person, c_index):
    rows = []
    n_m = len(pan.months)
    for group, person, index in (
        ("programme", t_person, t_index),
        ("comparison", c_person, c_index),
    ):
        for k in TRAJECTORY_MONTHS:
            m = index + k
            ok = (m >= 0) & (m < n_m) & (m <= death[person])
            n = int(ok.sum())
            mean = float(pan.values[cost, person[ok], m[ok]].mean()) if n else np.nan
            rows.append([analysis, pop, group, k, n, mean])
    return rows


def trajectory_problems(traj: pd.DataFrame) -> list[str]:
    """What no correct trajectory can show (one line per problem): a negative mean cost, a mean
    without people behind it (or people without a mean), a month from index outside the window,
    or a group and month given twice. Months no one reached yet carry no people and no mean."""
    problems: list[str] = []
    key = ["analysis", "population", "group", "months_from_index"]
    if traj.duplicated(key).any():
        problems.append(f"{int(traj.duplicated(key).sum())} group-months given twice")
    mean, people = traj["mean_total_cost"], traj["n_people"].fillna(0)
    if (mean < 0).any():
        problems.append(f"{int((mean < 0).sum())} negative mean costs")
    if (mean.notna() & (people < 1)).any():
        problems.append(f"{int((mean.notna() & (people < 1)).sum())} means over no people")
    if (mean.isna() & (people >= 1)).any():
        problems.append(f"{int((mean.isna() & (people >= 1)).sum())} missing means")
    if (people < 0).any():
        problems.append(f"{int((people < 0).sum())} negative head counts")
    outside = ~traj["months_from_index"].between(-48, 48)
    if outside.any():
        problems.append(f"{int(outside.sum())} rows outside -48..+48 months from index")
    return problems
