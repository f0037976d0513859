"""NHS number validation (modulus 11 check digit), vectorised over pandas Series."""

from __future__ import annotations

import numpy as np
import pandas as pd

_WEIGHTS = np.arange(10, 1, -1)  # 10..2 for digits 1-9


def normalise_nhs_number(values: pd.Series) -> pd.Series:
    """Strip spaces and dashes; anything that is then not 10 digits becomes NA."""
    s = values.astype("string").str.replace(r"[\s-]", "", regex=True)
    return s.where(s.str.fullmatch(r"[0-9]{10}").fillna(False).astype(bool))


def check_digit(first_nine: str) -> int | None:
    """The check digit for nine digits, or None when the remainder makes the number invalid."""
    total = sum(int(d) * w for d, w in zip(first_nine, range(10, 1, -1), strict=True))
    check = 11 - total % 11
    if check == 11:
        return 0
    if check == 10:
        return None
    return check


def is_valid_nhs_number(values: pd.Series) -> pd.Series:
    """True where the value is 10 digits (spaces allowed) with a correct modulus-11 check digit.

    NA stays NA (callers decide whether missing is allowed).
    """
    raw = values.astype("string")
    s = raw.str.replace(r"[\s-]", "", regex=True)
    ok_shape = s.str.fullmatch(r"[0-9]{10}").fillna(False).astype(bool).to_numpy()
    result = np.zeros(len(s), dtype=bool)
    if ok_shape.any():
        # ten ASCII digits each (the shape above): one byte buffer, one row of digits a value
        joined = "".join(s[ok_shape].tolist()).encode("ascii")
        digits = (np.frombuffer(joined, dtype=np.uint8).reshape(-1, 10) - 48).astype(np.int64)
        total = digits[:, :9] @ _WEIGHTS
        check = 11 - total % 11
        check = np.where(check == 11, 0, check)
        result[ok_shape] = (check != 10) & (check == digits[:, 9])
    out = pd.Series(result, index=values.index, dtype="boolean")
    return out.mask(raw.isna())
