import numpy as np
import pandas as pd
import pytest

from sim_pipeline.identity import IDENTITY_COLUMNS, Tokeniser, pseudonymise
from sim_pipeline.identity.linkage import NAME_LEVELS
from sim_pipeline.identity.nhs_number import check_digit, is_valid_nhs_number
from sim_pipeline.identity.normalise import normalise_name, normalise_postcode, postcode_parts
from sim_pipeline.identity.tokens import BLOOM_BITS, similarity
from sim_pipeline.sources import BY_ASSET, SOURCE_TABLES
from sim_pipeline_tests.samples import GOOD, IDENTIFYING_VALUES

KEY_A = b"a" * 32
KEY_B = b"b" * 32


def test_check_digit_reference_example():
    assert check_digit("943476591") == 9
    assert is_valid_nhs_number(pd.Series(["9434765919"])).tolist() == [True]
    assert is_valid_nhs_number(pd.Series(["943 476 5919"])).tolist() == [True]


@pytest.mark.parametrize(
    "value, ok",
    [
        ("9434765918", False),
        ("943476591", False),
        ("94347659190", False),
        ("94347659x9", False),
        ("9990000018", True),
        ("9990000026", True),
    ],
)
def test_check_digit_rejects_wrong_numbers(value, ok):
    assert bool(is_valid_nhs_number(pd.Series([value])).iloc[0]) is ok


def test_check_digit_remainder_ten_is_never_valid():
    # find nine digits whose check digit would be 10: no tenth digit may make them valid
    nine = next(f"{i:09d}" for i in range(1000, 10_000) if check_digit(f"{i:09d}") is None)
    assert not is_valid_nhs_number(pd.Series([nine + str(d) for d in range(10)])).any()


def test_the_vectorised_check_agrees_with_the_check_digit_value_by_value():
    """Every value judged as `check_digit` judges it alone: 20,000 random ten-digit numbers
    (about a tenth valid), written plain, spaced and dashed, among other shapes and NA."""
    rng = np.random.default_rng(11)
    nines = [f"{n:09d}" for n in rng.integers(0, 10**9, 20_000)]
    tenths = rng.integers(0, 10, len(nines))
    values = [n + str(d) for n, d in zip(nines, tenths, strict=True)]
    values = [
        v if i % 3 == 0 else f"{v[:3]} {v[3:6]} {v[6:]}" if i % 3 == 1 else f"{v[:3]}-{v[3:]}"
        for i, v in enumerate(values)
    ]
    others = ["", "123456789", "12345678901", "１２３４５６７８９０", "943476591x", None]
    got = is_valid_nhs_number(pd.Series(values + others, dtype="string"))

    def alone(v: str) -> bool:
        digits = v.replace(" ", "").replace("-", "")
        return check_digit(digits[:9]) == int(digits[9])

    expected = [alone(v) for v in values]
    assert got.iloc[: len(values)].tolist() == expected
    assert 0.05 < np.mean(expected) < 0.2
    assert got.iloc[len(values) : -1].tolist() == [False] * 5 and pd.isna(got.iloc[-1])


def test_missing_nhs_number_stays_missing():
    assert is_valid_nhs_number(pd.Series([None], dtype="string")).isna().all()


def test_tokens_stable_under_one_key_and_different_under_another():
    s = pd.Series(["9990000018", "9990000026", None], dtype="string")
    a1 = Tokeniser(KEY_A).tokens(s, "nhs")
    a2 = Tokeniser(KEY_A).tokens(s, "nhs")
    b = Tokeniser(KEY_B).tokens(s, "nhs")
    assert a1.tolist()[:2] == a2.tolist()[:2]
    assert a1[0] != a1[1]
    assert (a1[:2] != b[:2]).all()
    assert pd.isna(a1[2])
    # domain separation: the same text under another identifier kind gives another token
    assert Tokeniser(KEY_A).tokens(s, "postcode")[0] != a1[0]
    assert Tokeniser(KEY_A).key_id != Tokeniser(KEY_B).key_id


def test_short_keys_are_refused():
    with pytest.raises(ValueError):
        Tokeniser(b"short")


def test_name_encodings_are_similar_for_typos_and_not_for_other_names():
    t = Tokeniser(KEY_A)
    names = normalise_name(pd.Series(["Katherine", "Kathrine", "Mohammed", "Katherine"]))
    bf = t.bloom_filters(names, "given_name").tolist()
    assert bf[0] == bf[3]
    assert len(bf[0]) == BLOOM_BITS // 4
    assert similarity(bf[0], bf[1]) > NAME_LEVELS[1]  # a typo still reaches a name level
    assert similarity(bf[0], bf[2]) < NAME_LEVELS[1]
    other_key = Tokeniser(KEY_B).bloom_filters(names, "given_name").tolist()
    assert similarity(bf[0], other_key[0]) < 0.6
    # Salted per field: the same name as a family name gives an unrelated encoding.
    family = t.bloom_filters(names, "family_name").tolist()
    assert similarity(bf[0], family[0]) < 0.6


def test_name_encodings_do_not_reveal_name_length():
    """No fixed weight any more (that came from the complement, which leaked itself): the
    weight varies by chance alone, the same for a 2-letter as for a 25-letter name."""
    t = Tokeniser(KEY_A)
    short = [f"{a}{b}" for a in "ABDEJKLMNORSTY" for b in "AEIOU"]  # 70 two-letter names
    long = [f"{n}{n[::-1]}{n}XQ" for n in ("KATHERINE", "ALEXANDRA", "OKONKWO", "WHITMORE")]
    weights = {
        n: int(h, 16).bit_count()
        for n, h in zip(short + long, t.bloom_filters(pd.Series(short + long), "g"), strict=True)
    }
    ws, wl = [weights[n] for n in short], [weights[n] for n in long]
    assert abs(np.mean(ws) - np.mean(wl)) < 3 * np.std(ws)
    assert all(0.35 * BLOOM_BITS < w < 0.6 * BLOOM_BITS for w in weights.values())


def test_no_exact_name_token_is_stored():
    """The encoding is deterministic under the key, so it serves for exact matching; a second,
    exact token of the name would only add a frequency target."""
    assert not [c for c in IDENTITY_COLUMNS if "name_token" in c]
    assert {"given_name_bf", "family_name_bf"} <= set(IDENTITY_COLUMNS)


def test_normalisation():
    assert normalise_name(pd.Series(["  O'Neil-Smith ", "Zoë", "123"])).tolist()[:2] == [
        "ONEILSMITH",
        "ZOE",
    ]
    assert pd.isna(normalise_name(pd.Series(["123"]))[0])
    assert normalise_postcode(pd.Series(["ZZ99 3VZ"])).isna().all()  # no fixed abode
    assert normalise_postcode(pd.Series(["se154qt", "SE15 4QT", "nonsense"])).tolist()[:2] == [
        "SE15 4QT",
        "SE15 4QT",
    ]
    parts = postcode_parts(pd.Series(["SW19 1AB"]))
    assert parts.iloc[0].tolist() == ["SW19 1AB", "SW19 1", "SW19"]


@pytest.mark.parametrize("table", SOURCE_TABLES, ids=lambda t: t.asset_name)
def test_pseudonymise_drops_every_raw_identifier(table):
    df = pd.DataFrame([GOOD[table.asset_name]], dtype="str").replace("", pd.NA)
    out = pseudonymise(df, table.identifiers, Tokeniser(KEY_A))
    for col in table.identifiers.raw_columns():
        assert col not in out.columns
    text = out.astype("string").fillna("").to_csv()
    for value in IDENTIFYING_VALUES:
        assert value not in text
    if table.identifiers.raw_columns():
        assert set(IDENTITY_COLUMNS) <= set(out.columns)


def test_day_month_swap_token_matches_the_true_date():
    ids = BY_ASSET["staged_police_s136_return"].identifiers
    t = Tokeniser(KEY_A)
    true = pd.DataFrame(
        {"PersonBirthDate": ["1988-04-09"], "DetentionDateTime": ["2019-01-01 10:00"]}
    )
    swapped = pd.DataFrame(
        {"PersonBirthDate": ["1988-09-04"], "DetentionDateTime": ["2019-01-01 10:00"]}
    )
    a = pseudonymise(true, ids, t).iloc[0]
    b = pseudonymise(swapped, ids, t).iloc[0]
    assert a.birth_date_token != b.birth_date_token
    assert a.birth_date_token == b.birth_date_swap_token
    assert a.birth_year_month_token != b.birth_year_month_token
    assert a.age_band == "25-34"


def test_age_band_falls_back_to_provider_age():
    ids = BY_ASSET["staged_ambulance_incidents"].identifiers
    df = pd.DataFrame(
        {"PatientBirthDate": [None], "PatientAge": ["67"], "CallDateTime": ["2019-01-01 10:00"]},
        dtype="str",
    )
    assert pseudonymise(df, ids, Tokeniser(KEY_A)).age_band.iloc[0] == "65+"
