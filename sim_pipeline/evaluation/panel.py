"""The evaluation's person-month panel, shared by ``comparison.evaluate`` and the primary design.

Owns the panel frame the evaluation asset builds (person_month_metrics joined to the total cost
of person_month_costs: ``evaluation_panel``), its dense form (outcome x person x month arrays
with cumulative sums for window totals: ``Panel``) and month labels as positions among the
data's months (``month_index``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd


def evaluation_panel(metrics: pd.DataFrame, costs: pd.DataFrame) -> pd.DataFrame:
    """person_month_metrics joined to the total cost of person_month_costs (absent = 0)."""
    value_cols = [c for c in metrics.columns if c not in ("person_key", "month")]
    panel = metrics.merge(
        costs[["person_key", "month", "total_cost"]], on=["person_key", "month"], how="outer"
    )
    panel[[*value_cols, "total_cost"]] = panel[[*value_cols, "total_cost"]].fillna(0)
    return panel


class Panel:
    """Dense arrays (outcome, person, month) with cumulative sums for window totals."""

    def __init__(self, panel: pd.DataFrame, keys: Sequence[str], months: Sequence[str]):
        self.keys = list(keys)
        self.months = list(months)
        self.kidx = {k: i for i, k in enumerate(self.keys)}
        self.midx = {m: i for i, m in enumerate(self.months)}
        self.columns = [c for c in panel.columns if c not in ("person_key", "month")]
        p = panel[panel["person_key"].isin(self.kidx) & panel["month"].isin(self.midx)]
        pi = p["person_key"].map(self.kidx).to_numpy()
        mi = p["month"].map(self.midx).to_numpy()
        self.values = np.zeros((len(self.columns), len(self.keys), len(self.months)))
        for j, c in enumerate(self.columns):
            np.add.at(self.values[j], (pi, mi), p[c].to_numpy(dtype=float))
        zero = np.zeros(self.values.shape[:2] + (1,))
        self.cum = np.concatenate([zero, np.cumsum(self.values, axis=2)], axis=2)

    def col(self, name: str) -> int:
        return self.columns.index(name)

    def window_sum(self, j: int, person: np.ndarray, first: np.ndarray, last: np.ndarray):
        """Sum of outcome j over months first..last (indices, clipped; empty -> 0)."""
        n = len(self.months)
        f = np.clip(first, 0, n)
        e = np.clip(last + 1, 0, n)
        e = np.maximum(e, f)
        return self.cum[j, person, e] - self.cum[j, person, f], e - f


def month_index(months: Sequence[str], values: pd.Series) -> np.ndarray:
    """Month labels to positions in ``months`` (months before the data are negative)."""
    text = pd.Series(values, dtype=object).astype(str).str.slice(0, 7)
    if text.empty:
        return np.zeros(0, dtype=np.int64)
    if not text.str.fullmatch(r"\d{4}-\d{2}").all():
        bad = text[~text.str.fullmatch(r"\d{4}-\d{2}")].iloc[0]
        raise ValueError(f"not a month (YYYY-MM): {bad!r}")
    y0, m0 = int(months[0][:4]), int(months[0][5:7])
    ym = text.str.slice(0, 4).astype(np.int64) * 12 + text.str.slice(5, 7).astype(np.int64)
    return (ym - (y0 * 12 + m0)).to_numpy(dtype=np.int64)
