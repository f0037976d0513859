"""Pseudonymisation at speed (issue 19): the privacy boundary works once per distinct value and
gives byte for byte the tokens of the hardened scheme; the benchmark prints and writes figures."""

from __future__ import annotations

import hashlib
import hmac
import json

import numpy as np
import pandas as pd
import pytest

from sim_pipeline.bench.pseudonymise import IDS, digest, identifier_records, nhs_numbers
from sim_pipeline.identity.distinct import distinct, per_distinct, spread
from sim_pipeline.identity.nhs_number import is_valid_nhs_number
from sim_pipeline.identity.pseudonymise import pseudonymise
from sim_pipeline.identity.tokens import DEMO_KEY, Tokeniser
from sim_pipeline_tests.conftest import clean_env, cli

# The digest of every token and encoding `pseudonymise` made of the records below with the
# implementation before it worked per distinct value (commit e83d204's `identity/`): the faster
# code must give the same bytes.
KNOWN_DIGEST = "428127078272b2c5429fac96fdae7b2dcf9f68a0328e1ae13ab3d2285ebe780a"


def _damaged_records() -> pd.DataFrame:
    df = identifier_records(3000, seed=1)
    df.loc[::7, IDS.nhs_number] = None
    df.loc[::11, IDS.birth_date] = "19800229"
    df.loc[::13, IDS.birth_date] = "not a date"
    df.loc[::17, IDS.postcode] = "ZZ99 3VZ"
    df.loc[::19, IDS.postcode] = None
    df.loc[::23, IDS.given_name] = "O'Néil-Smith"
    df.loc[::29, IDS.family_name] = ""
    return df


def test_tokens_are_byte_identical_to_the_scheme_before_the_speed_work():
    out = pseudonymise(_damaged_records(), IDS, Tokeniser(DEMO_KEY, demo=True))
    assert digest(out) == KNOWN_DIGEST


def test_a_token_is_the_keyed_hash_of_its_domain_and_value():
    """Checked against HMAC-SHA256 computed directly, whatever the implementation: memo, batch
    and row order change nothing, and missing values stay missing."""
    tok = Tokeniser(DEMO_KEY, demo=True)
    values = pd.Series(["9990000018", None, "9990000018", "9990000026"], index=[5, 3, 9, 1])
    got = tok.tokens(values, "nhs")

    def direct(v: str) -> str:
        return hmac.new(DEMO_KEY, f"nhs\x1f{v}".encode(), hashlib.sha256).hexdigest()[:32]

    assert got.index.tolist() == [5, 3, 9, 1]
    assert got.tolist()[0] == got.tolist()[2] == direct("9990000018")
    assert pd.isna(got.tolist()[1]) and got.tolist()[3] == direct("9990000026")
    again = tok.tokens(values.iloc[::-1], "nhs")  # memoised: the same tokens
    assert again.reindex(got.index).equals(got)


@pytest.mark.parametrize("length", [32, 63, 64, 65, 128, 200])
def test_a_token_is_hmac_sha256_for_keys_shorter_and_longer_than_a_block(length):
    """Tokens come from HMAC's two keyed states (`tokens._hmac_pads`): a key up to SHA-256's
    64-byte block is padded, a longer one hashed first, as `hmac` does."""
    key = bytes((7 * i + length) % 256 for i in range(length))
    values = pd.Series(["9990000018", "SE15 4QT", "", "Ünïcode", "x" * 500], dtype="string")
    got = Tokeniser(key).tokens(values, "postcode").tolist()
    want = [
        hmac.new(key, f"postcode\x1f{v}".encode(), hashlib.sha256).hexdigest()[:32] for v in values
    ]
    assert got == want


def test_per_distinct_spreads_results_back_to_every_row_keeping_missing():
    values = pd.Series(["b", None, "a", "b", pd.NA], index=list("vwxyz"))
    codes, uniques = distinct(values)
    assert uniques.tolist() == ["b", "a"] and codes.tolist() == [0, -1, 1, 0, -1]
    calls = []

    def upper(u: pd.Series) -> pd.Series:
        calls.append(len(u))
        return u.str.upper()

    out = per_distinct(values, upper)
    assert calls == [2]  # once per distinct value
    assert out.index.tolist() == list("vwxyz")
    assert out.iloc[[0, 2, 3]].tolist() == ["B", "A", "B"] and out.iloc[[1, 4]].isna().all()
    dates = spread(pd.Series(pd.to_datetime(["2020-01-02"])), np.array([0, -1]), pd.RangeIndex(2))
    assert dates.dtype.kind == "M" and pd.isna(dates.iloc[1])


def test_the_benchmark_records_are_valid_and_distinct():
    numbers = nhs_numbers(np.random.default_rng(3), 5000)
    assert len(set(numbers)) == 5000
    assert is_valid_nhs_number(pd.Series(numbers)).all()


def test_bench_pseudonymise_prints_and_writes_its_figures(tmp_path):
    out = tmp_path / "p.json"
    r = cli(
        "bench", "pseudonymise", "--records", "2000", "--repeats", "2", "--out", str(out),
        env=clean_env(), cwd=tmp_path,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert "records/s" in r.stdout
    report = json.loads(out.read_text())
    assert report["records"] == 2000 and len(report["runs"]) == 2
    assert report["best_records_per_second"] > 0
    assert len({run["digest"] for run in report["runs"]}) == 1  # repeatable
