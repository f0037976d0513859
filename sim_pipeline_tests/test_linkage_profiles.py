"""Profiles and scored pairs at national volume: the integer-code profile numbering gives the
text key's numbering, incremental scoring's pairs come out oriented and sorted, and the
linkage read keeps text Arrow-backed."""

import duckdb
import numpy as np
import pandas as pd
import pytest

from sim_pipeline.identity import linkage as lk
from sim_pipeline.identity.incremental import _scored_pairs
from sim_pipeline.identity.linkage_model import BLOOM_COLUMNS, ENCODING_COLUMNS, TOKEN_COLUMNS
from sim_pipeline.identity.person_index import linkage_rows
from sim_pipeline.sources import BY_ASSET
from sim_pipeline.warehouse import Warehouse


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


def test_scored_pairs_come_oriented_sorted_and_with_only_the_scoring_columns():
    con = duckdb.connect()
    within = pd.DataFrame(
        {
            "profile_id_l": [5, 1, 9],
            "profile_id_r": [2, 3, 4],
            "match_weight": [1.0, 2.0, 3.0],
            "match_probability": [0.5, 0.6, 0.7],
            "mw_nhs_number": [0.0, 1.0, 0.0],
            "gamma_sex": [1, 1, 1],
        }
    )
    between = within.assign(profile_id_l=[7, 0, 2], profile_id_r=[8, 6, 1])
    con.register("w", within)
    con.register("b", between)
    got = _scored_pairs(con, ["w", "b"])
    assert list(got.columns) == [
        "profile_id_l",
        "profile_id_r",
        "match_weight",
        "match_probability",
        "mw_nhs_number",
    ]
    pairs = list(zip(got["profile_id_l"], got["profile_id_r"], strict=True))
    assert pairs == [(0, 6), (1, 2), (1, 3), (2, 5), (4, 9), (7, 8)]
    assert got.loc[got["profile_id_l"] == 2, "match_weight"].item() == 1.0
    con.close()


def test_read_text_reads_in_chunks_as_text(tmp_path):
    wh = Warehouse(f"sqlite:///{tmp_path / 'w.db'}")
    df = pd.DataFrame(
        {"a": [f"x{i}" for i in range(25)], "b": [None if i % 3 else "t" for i in range(25)]}
    )
    with wh.transaction() as tx:
        tx.replace_all("t", df)
    got = wh.read_text("t", ["b", "a", "absent"], chunk_rows=4)
    assert list(got.columns) == ["b", "a"]
    assert all(str(t) == "string" for t in got.dtypes)
    pd.testing.assert_frame_equal(got, df[["b", "a"]].astype("string"))
    assert wh.read_text("missing", ["a"]).empty
    with wh.transaction() as tx:
        tx.replace_all("t", df.iloc[:0])
    assert wh.read_text("t", ["a"]).empty
    wh.dispose()


def test_linkage_rows_keep_absent_encodings_typed_as_text():
    ecds = BY_ASSET["staged_ecds"]  # no name encodings in ECDS
    staged = pd.DataFrame(
        {
            "source": ["ae_rj1", "ae_rj1"],
            "record_ref": ["r1", "r2"],
            "month": ["2021-05", "2021-05"],
            "nhs_number_token": ["a" * 32, None],
        }
    ).astype("string")
    rows, groups = linkage_rows({ecds.asset_name: staged})
    assert len(rows) == 2 and len(groups) == 2
    for c in ENCODING_COLUMNS:
        assert str(rows[c].dtype) == "string", c
    assert rows["given_name_bf"].isna().all()


@pytest.mark.parametrize("seed", range(4))
def test_canonical_order_is_pandas_stable_sort_missing_last(seed):
    """Linkage rows' canonical order (Arrow's stable sort of text columns) against pandas'
    stable sort by every column, missing values last: text of several scripts and of the
    shape of tokens, prefixes of one another, repeated rows (ties keep their order) and
    missing values, in both of pandas' Arrow-backed text types; and a frame that is not all
    Arrow text goes through pandas."""
    import random

    from sim_pipeline.identity.person_index import canonical_order

    rng = random.Random(seed)
    alphabet = ["a", "b", "A", "Z", "0", "9", "é", "ß", "٩", "中", " ", "|", "-"]

    def text() -> str | None:
        if rng.random() < 0.15:
            return None
        return "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 4)))

    values = [[text() for _ in range(3)] for _ in range(300)]
    values += [list(r) for r in rng.sample(values, 60)]  # repeated rows: ties
    frame = pd.DataFrame(values, columns=["x", "y", "z"]).astype(
        {"x": "string", "y": "str", "z": "string"}
    )
    want = frame.sort_values(["x", "y", "z"], kind="stable", na_position="last").index
    got = canonical_order(frame)
    assert got.tolist() == want.tolist()
    mixed = frame.assign(n=[rng.randint(0, 3) for _ in range(len(frame))])
    want = mixed.sort_values(list(mixed.columns), kind="stable", na_position="last").index
    assert canonical_order(mixed).tolist() == want.tolist()
