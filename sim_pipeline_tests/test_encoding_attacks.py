"""The attack suite (`sim_pipeline.identity.attacks`) against the old and the new name encoding.

Each attack must SUCCEED on the legacy scheme (so a broken attack fails these tests rather than
making the new scheme look safe) and stay within a stated limit on the pipeline's encoding.
Figures in the comments were measured on this data (family names: 20,000 records drawn from the
generator's lists with Zipf weights, 489 distinct names; seed 20231101; attack key fixed), so the
runs are deterministic; docs/encoding-attacks.md has every figure and the reasoning.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from sim_pipeline.identity import attacks as A
from sim_pipeline.identity.attack_targets import SCHEMES
from sim_pipeline.identity.linkage import NAME_LEVELS
from sim_pipeline.identity.tokens import BLOOM_BITS, Tokeniser, similarity

KNOWN = A.KNOWN_PLAINTEXTS


@pytest.fixture(scope="module")
def results() -> dict[str, dict]:
    return {s: A.run_scheme(s, "family") for s in SCHEMES}


def test_bit_pair_attack_recovers_every_complement_pair_of_the_legacy_scheme(results):
    a = results["legacy"]["a_bit_pairs"]
    assert a["pairs_found"] == a["pairs_correct"] == 512  # measured 512 of 512


def test_bit_pair_attack_finds_nothing_beyond_chance_in_the_new_scheme(results):
    a = results["diffused"]["a_bit_pairs"]
    assert a["pairs_found"] == 0
    # strongest bit-bit correlation measured 0.412 vs 0.409 with every column shuffled
    assert a["max_abs_correlation"] <= a["chance_max_abs_correlation"] + 0.05


def test_pattern_mining_locates_bigrams_in_the_legacy_scheme_only(results):
    old, new = results["legacy"]["b_pattern_mining"], results["diffused"]["b_pattern_mining"]
    assert old["patterns_that_are_a_bigram"] >= 20  # measured 28 of 30
    assert old["names_decoded"] >= 3  # measured 6 (326 records)
    assert new["patterns_that_are_a_bigram"] <= 2  # measured 0 of 30
    assert new["bigrams_f1_over_0_9"] == 0
    assert new["names_decoded"] <= 2  # measured 0


def test_length_leaks_from_the_legacy_scheme_not_from_the_new_one(results):
    old, new = results["legacy"]["d_length_leakage"], results["diffused"]["d_length_leakage"]
    assert old["r_recovered_base"] >= 0.9  # measured 0.987 (after the bit-pair attack)
    # measured |r| 0.010 (weight), 0.025 (|weight - mean|) over 1,839 names
    assert new["max_abs_r"] < 0.1


def test_known_plaintexts_decode_legacy_filters_and_not_new_ones(results):
    old = results["legacy"]["e1_known_plaintext_positions"]
    new = results["diffused"]["e1_known_plaintext_positions"]
    assert old["known"] == new["known"] == KNOWN
    assert old["decoded_exactly"] >= 15  # measured 32 of 289 (the attacker's report: 15)
    assert new["decoded_exactly"] <= 3  # measured 0 of 289


def test_similarity_attack_limit(results):
    """Reduced, not defeated: linkage needs similar names to give similar encodings, and that is
    what this attack uses. A half-full base (BASE_SET_TARGET 710) took it from 285 (legacy) and
    224 (base 29% full) to 43 of 289 decoded; the bound keeps it from creeping back."""
    old = results["legacy"]["e2_known_plaintext_similarity"]
    new = results["diffused"]["e2_known_plaintext_similarity"]
    assert old["decoded_exactly"] >= 250  # measured 285
    assert new["decoded_exactly"] <= 60  # measured 43


def test_frequency_alignment_is_what_determinism_allows_and_no_more(results):
    """Inherent to any deterministic encoding (an exact token leaks the same): the most common
    names are recognised by their counts (measured 12 of the top 20 in both schemes)."""
    old = results["legacy"]["c_frequency_alignment"]
    new = results["diffused"]["c_frequency_alignment"]
    assert old["aligned_correctly"] >= 8
    assert new["aligned_correctly"] <= old["aligned_correctly"]


def test_encoding_is_deterministic_vectorised_and_key_dependent():
    names = ["SMITH", "SMYTH", "O", "ABDULRAHMAN", "SMITH"]
    t = Tokeniser(b"k" * 32)
    enc = t.encode(names, "family_name")
    assert enc.shape == (5, BLOOM_BITS) and enc.dtype == bool
    assert (enc[0] == enc[4]).all()
    again = Tokeniser(b"k" * 32).bloom_filters(pd.Series(names), "family_name").tolist()
    assert again[0] == np.packbits(enc[0]).tobytes().hex()
    # batch and one-at-a-time give the same bits (memoised per distinct name)
    one = [Tokeniser(b"k" * 32).bloom_filters(pd.Series([n]), "family_name")[0] for n in names]
    assert one == again
    other = Tokeniser(b"j" * 32).bloom_filters(pd.Series(names), "family_name").tolist()
    assert 0.4 < similarity(again[0], other[0]) < 0.6  # another key: unrelated bits
    # a one-letter change reaches the near-name level; another key's bits do not
    assert similarity(again[0], again[1]) > NAME_LEVELS[1] > similarity(again[0], other[0])
