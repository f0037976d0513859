"""Work done once per distinct value: identifier columns repeat (a person's NHS number, date of
birth and postcode recur in every record, names and postcode districts across people), so the
privacy boundary normalises, tokenises and encodes each distinct value once and spreads the
results back to the rows (`pd.factorize`, then a positional take). Pure and vectorised."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd


def distinct(values: pd.Series) -> tuple[np.ndarray, pd.Series]:
    """Each row's code (-1 where missing) and the distinct non-missing values as text (a Series
    indexed 0..k-1, in order of first appearance)."""
    codes, uniques = pd.factorize(values.astype("string"), use_na_sentinel=True)
    return codes, pd.Series(uniques, dtype="string")


def spread(per_value: pd.Series, codes: np.ndarray, index: pd.Index) -> pd.Series:
    """``per_value`` (one entry per distinct value, positional) back on the rows: code -1 gives
    a missing value of the same type."""
    padded = pd.concat(
        [per_value.reset_index(drop=True), pd.Series([None], dtype=per_value.dtype)],
        ignore_index=True,
    )
    return padded.take(codes).set_axis(index)  # -1: the padded missing value


def per_distinct(values: pd.Series, fn: Callable[[pd.Series], pd.Series]) -> pd.Series:
    """``fn`` applied to the distinct non-missing values only, spread back to ``values``' rows."""
    codes, uniques = distinct(values)
    return spread(fn(uniques), codes, values.index)


def per_distinct_frame(values: pd.Series, fn: Callable[[pd.Series], pd.DataFrame]) -> pd.DataFrame:
    """As `per_distinct` for a function giving several columns per value."""
    codes, uniques = distinct(values)
    result = fn(uniques)
    return pd.DataFrame({c: spread(result[c], codes, values.index) for c in result.columns})
