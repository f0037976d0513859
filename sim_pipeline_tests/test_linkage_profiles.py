"""Profiles at national volume: the integer-code profile numbering gives the text key's."""

import numpy as np
import pandas as pd
import pytest

from sim_pipeline.identity import linkage as lk
from sim_pipeline.identity.linkage_model import BLOOM_COLUMNS, ENCODING_COLUMNS, TOKEN_COLUMNS


def _text_key_reference(enc: pd.DataFrame) -> np.ndarray:
    """The numbering as `profiles` made it before integer codes: one string per row, sorted."""
    enc = enc.copy()
    enc["person_sex"] = enc["person_sex"].where(enc["person_sex"] != "U")
    has_any = enc[TOKEN_COLUMNS + BLOOM_COLUMNS].notna().any(axis=1)
    strong = enc["nhs_number_token"].notna() | (
        enc["given_name_bf"].notna()
        & enc["family_name_bf"].notna()
        & enc["birth_date_token"].notna()
    )
    n = len(enc)
    key = pd.Series([""] * n, index=enc.index, dtype="string")
    for c in ENCODING_COLUMNS:
        key = key + "|" + enc[c].astype("string").fillna("")
    key = key.where(strong, "row:" + pd.Series(np.arange(n), index=enc.index).astype("string"))
    key = key.where(has_any, pd.NA)
    return pd.factorize(key, sort=True)[0].astype(np.int64)


def _encodings(n: int, seed: int, width: dict[str, int] | None = None) -> pd.DataFrame:
    """Encodings drawn from small pools (many equal rows, so many shared profiles), with nulls
    in every column (weak rows, rows without any encoding)."""
    rng = np.random.default_rng(seed)
    width = width or {}
    out = {}
    for c in ENCODING_COLUMNS:
        if c == "person_sex":
            pool = np.array(["M", "F", "U"], dtype=object)
        else:
            w = width.get(c, 256 if c in BLOOM_COLUMNS else 32)
            pool = np.array(
                ["".join(rng.choice(list("0123456789abcdef"), w)) for _ in range(3)], dtype=object
            )
        values = pool[rng.integers(0, len(pool), n)]
        values[rng.random(n) < 0.3] = None
        values[:20] = None  # rows without any encoding
        values[n // 2 : n // 2 + 60] = values[20:80]  # repeated rows: shared profiles
        out[c] = pd.array(values, dtype="string")
    enc = pd.DataFrame(out)
    # near-repeats: one column null where the repeated row has a value (where a null sorts)
    for i, c in enumerate(ENCODING_COLUMNS * 3):
        enc.iloc[n - 1 - i] = enc.iloc[n // 2 + i]
        enc.loc[n - 1 - i, c] = pd.NA
    return enc


def _ids(enc: pd.DataFrame, clear_names: bool = False) -> np.ndarray:
    table, ids = lk.profiles(enc, clear_names)
    assert len(table) == (ids.max() + 1 if (ids >= 0).any() else 0)
    return ids


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_profile_ids_number_profiles_as_the_text_key_did(seed):
    enc = _encodings(600, seed)
    ids = _ids(enc)
    assert np.array_equal(ids, _text_key_reference(enc))
    weak = (ids >= 0) & ~pd.Series(ids).duplicated(keep=False).to_numpy()
    assert weak.sum() > 10  # weak rows past "row:9": the text order of their positions
    assert (ids < 0).any() and pd.Series(ids[ids >= 0]).duplicated().any()


def test_profile_ids_take_the_fast_path_on_fixed_width_hex():
    enc = _encodings(300, 4)
    strong = np.ones(len(enc), dtype=bool)
    for c in ENCODING_COLUMNS:
        assert lk._ranked_codes(enc[c], c == ENCODING_COLUMNS[-1]) is not None
    assert lk._ranked_codes(pd.Series(["ab", "abc"], dtype="string"), False) is None
    assert lk._ranked_codes(pd.Series(["|b", "ab"], dtype="string"), False) is None
    assert lk._ranked_codes(pd.Series(["", ""], dtype="string"), False) is None
    has_any = np.ones(len(enc), dtype=bool)
    assert np.array_equal(
        lk.profile_ids(enc, strong, has_any), lk._text_key_ids(enc, strong, has_any)
    )


@pytest.mark.parametrize(
    "values",
    [
        ["Ann", "Annabel", "Bo", None],  # cleartext names (the benchmark's anchor): lengths vary
        ["|a", "ab", "a|", None],  # a value holding the separator
    ],
)
def test_profile_ids_fall_back_to_the_text_key_where_codes_cannot_order(values):
    enc = _encodings(200, 5)
    rng = np.random.default_rng(6)
    enc["given_name_bf"] = pd.array(
        np.array(values, dtype=object)[rng.integers(0, len(values), len(enc))], dtype="string"
    )
    assert np.array_equal(_ids(enc, clear_names=True), _text_key_reference(enc))
