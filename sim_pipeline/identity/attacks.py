"""Attack suite for the name encodings: run `python -m sim_pipeline.identity.attacks`.

Runs five published attacks against two schemes and states what each recovers:

- ``legacy``: the scheme used until issue 16 (REFERENCE ONLY, reimplemented here and never used
  by the pipeline): padded bigrams into a 512-bit filter at 15 keyed positions each, the filter
  concatenated with its complement ("balanced") and the 1024 bits shuffled by one keyed
  permutation per field.
- ``diffused``: the pipeline's encoding (`tokens.Tokeniser.encode`): a keyed, field-salted,
  length-normalised 1024-bit Bloom filter, then a keyed diffusion layer (each stored bit the XOR
  of 3 keyed-chosen base bits; Armknecht, Heng and Schnell, PoPETs 2023).

The attacker's knowledge (stated, as the reference asks): the encoded database (one encoding per
record, so encodings can be counted), the scheme and its parameters but not the key, a public
name-frequency list (here the synthetic generator's own name lists with Zipf-like weights: the
exact distribution the records were drawn from, the attacker's best case), and for the
known-plaintext attacks 200 (name, encoding) pairs.

Attacks (docs/encoding-attacks.md has the figures and the limits the tests hold):

a. bit-pair / complement recovery: pair each bit with its most anti-correlated bit;
b. pattern mining (Christen, Ranbaduge, Vatsalan, Schnell, TKDE 2019): for the most frequent
   bigrams of the public list, mine the bit set that co-occurs in as many records as the bigram
   occurs in, then read bigrams off every filter and decode names;
c. frequency alignment (Kuzu et al. 2011): rank distinct encodings by count, align with the
   public list's ranks;
d. length leakage: correlation of name length with the Hamming weight (raw, and of the base half
   the bit-pair attack recovers, and the weight's distance from the mean);
e. known plaintext: (e1) learn each bigram's positions from 200 known pairs (positions set in
   every known filter holding the bigram) and decode the other filters; (e2) a similarity attack
   (graph matching, Vidanage et al. 2019-2020, reduced to its core): place each unknown filter by
   its similarities to the 200 known encodings and pick the public name whose bigram similarities
   to the 200 known names correlate best.

The schemes, the public list and the attacked database are in `attack_targets`; attacks a-d in
`attack_ciphertext_only`, e in `attack_known_plaintext`; this module owns the suite's settings,
runs the attacks on each scheme and field, and renders and writes the report.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from sim_pipeline.identity.attack_ciphertext_only import (
    bit_pairs,
    frequency_alignment,
    length_corpus,
    length_leakage,
    pattern_mining,
    reduce,
)
from sim_pipeline.identity.attack_known_plaintext import (
    known_plaintext_positions,
    known_plaintext_similarity,
)
from sim_pipeline.identity.attack_targets import SCHEMES, database, public_list

ATTACK_KEY = b"attack-suite key: the attacker does NOT know this one (32+ bytes)"
KNOWN_PLAINTEXTS = 200
RECORDS = 20_000  # records in the attacked database
SEED = 20231101


# --------------------------------------------------------------------------------------------
# Running the suite
# --------------------------------------------------------------------------------------------


def run_scheme(
    scheme_name: str,
    kind: str = "family",
    records: int = RECORDS,
    seed: int = SEED,
    n_known: int = KNOWN_PLAINTEXTS,
) -> dict[str, Any]:
    """Every attack on one scheme and one name field; figures as a dict."""
    public = public_list(kind)
    scheme = SCHEMES[scheme_name](ATTACK_KEY, f"{kind}_name")
    db = database(scheme, public, records, seed)
    out: dict[str, Any] = {"scheme": scheme_name, "field": kind, "records": records}
    t0 = time.perf_counter()
    pairs = bit_pairs(db, scheme)
    found = pairs.pop("pairs")
    out["a_bit_pairs"] = pairs
    x = reduce(db, found)
    out["b_pattern_mining"] = pattern_mining(db, public, x)
    out["c_frequency_alignment"] = frequency_alignment(db, public)
    out["d_length_leakage"] = length_leakage(scheme, length_corpus(kind, seed), found)
    out["e1_known_plaintext_positions"] = known_plaintext_positions(db, public, x, n_known, seed)
    out["e2_known_plaintext_similarity"] = known_plaintext_similarity(db, public, n_known, seed)
    out["seconds"] = round(time.perf_counter() - t0, 2)
    return out


def run(
    kinds: tuple[str, ...] = ("family", "given"), records: int = RECORDS, seed: int = SEED
) -> dict[str, Any]:
    return {
        "attacker_knowledge": "encoded database with counts; scheme and parameters, not the key; "
        "public name-frequency list (the generator's lists, Zipf weights); "
        f"{KNOWN_PLAINTEXTS} known (name, encoding) pairs for (e)",
        "records": records,
        "seed": seed,
        "results": [run_scheme(s, k, records, seed) for k in kinds for s in SCHEMES],
    }


def render(report: dict[str, Any]) -> str:
    lines = [f"attack suite: {report['records']:,} records, seed {report['seed']}"]
    for r in report["results"]:
        a, b, c = r["a_bit_pairs"], r["b_pattern_mining"], r["c_frequency_alignment"]
        d, e1, e2 = (
            r["d_length_leakage"],
            r["e1_known_plaintext_positions"],
            r["e2_known_plaintext_similarity"],
        )
        lines += [
            f"\n{r['scheme']} / {r['field']} names ({b['distinct_names']} distinct)",
            f"  a bit pairs: {a['pairs_found']} of {a['possible_pairs']} found"
            + (f" ({a['pairs_correct']} correct)" if a["pairs_correct"] is not None else "")
            + f"; min r {a['min_correlation']}, max |r| {a['max_abs_correlation']} "
            f"(chance {a['chance_max_abs_correlation']})",
            f"  b pattern mining: {b['patterns_that_are_a_bigram']}/{b['bigrams_mined']} "
            f"patterns are a bigram's; aligned F1 {b['mean_f1']} (chance "
            f"{b['mean_chance_f1']}), {b['bigrams_f1_over_0_9']} bigrams F1>=0.9; names "
            f"decoded {b['names_decoded']} ({b['records_decoded']:,} records)",
            f"  c frequency alignment: {c['aligned_correctly']}/{c['top']} top ranks right "
            f"({c['records_reidentified']:,} of {c['records']:,} records)",
            f"  d length ({d['names']} names): r(weight) {d['r_weight']}, r(|weight-mean|) {d['r_weight_spread']}, "
            f"r(recovered base weight) {d['r_recovered_base']}",
            f"  e1 known plaintext (positions): {e1['decoded_exactly']} of {e1['targets']} "
            f"decoded exactly",
            f"  e2 known plaintext (similarity): {e2['decoded_exactly']} of {e2['targets']} "
            f"decoded exactly",
        ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--records", type=int, default=RECORDS)
    p.add_argument("--seed", type=int, default=SEED)
    p.add_argument("--out", type=Path, default=Path("data/bench/encoding_attacks.json"))
    args = p.parse_args(argv)
    report = run(records=args.records, seed=args.seed)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(render(report))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
