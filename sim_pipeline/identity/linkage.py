"""Probabilistic linkage over pseudonymised encodings (Fellegi-Sunter, Splink 5 on DuckDB).

The engine never sees a cleartext identifier: its input is the token and name-encoding columns
that `pseudonymise` writes (`IDENTITY_COLUMNS`). Names are compared by the Hamming similarity of
their diffused encodings, and matched exactly (blocking, the "exact" level) by a hash of the
whole encoding: there is no exact-name token (docs/encoding-attacks.md). Steps:

1. **Profiles.** Rows whose encodings are identical and strong (an NHS-number token, or given
   name, family name and full date of birth) are one person by construction and become one
   profile; every other row is its own profile. Rows without any encoding (e.g. MHSDS ward stays)
   take no part in the probabilistic step.
2. **Known structure.** Rows sharing a deterministic group label (the same trust
   `LocalPatientId`, the police incident a s136 detention was raised from) are joined outright:
   these sources hold one record per person-event, so the label is certain evidence.
3. **Model.** Splink comparisons on the encodings (`identity.linkage_model`), blocking rules that keep
   police and untraced records linkable (`BLOCKING_RULES`); u estimated by random sampling,
   m by EM without labels; the prior from deterministic rules.
4. **Clustering.** Connected components over pairs at or above the threshold plus the
   deterministic edges (`identity.clustering`).

Splink's own logging is kept at WARNING: nothing it prints contains values, but the SQL is noise.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from sim_pipeline.identity.clustering import cluster_rows
from sim_pipeline.identity.linkage_model import (
    BLOCKING_RULES,
    BLOOM_COLUMNS,
    DETERMINISTIC_RECALL,
    DETERMINISTIC_RULES,
    EM_BLOCKING_RULES,
    ENCODING_COLUMNS,
    NAME_LEVELS,
    PAIR_COLUMNS,
    TOKEN_COLUMNS,
    WORDS,
    LinkageOptions,
    settings,
)

__all__ = [  # the model's names, for callers that know linkage as one thing
    "BLOCKING_RULES",
    "BLOOM_COLUMNS",
    "ENCODING_COLUMNS",
    "NAME_LEVELS",
    "TOKEN_COLUMNS",
    "LinkResult",
    "LinkageOptions",
    "link_encoded",
    "predict_pairs",
    "profiles",
]


# Encodings the model reads (everything else in IDENTITY_COLUMNS is descriptive).
@dataclass
class LinkResult:
    """Cluster per input row plus what an auditor needs to judge the run."""

    clusters: pd.DataFrame  # row (input index), cluster (int), match_probability (float)
    pairs: pd.DataFrame  # profile pairs >= predict_floor: match_weight, match_probability
    parameters: pd.DataFrame  # comparison, level, m_probability, u_probability, match_weight
    timings: dict[str, float] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    trained: bool = False
    model: dict[str, Any] = field(default_factory=dict)  # Splink's JSON of the model used


def _name_key(values: pd.Series) -> pd.array:
    """64-bit hash (signed, for DuckDB BIGINT) of each encoding: the exact-name key for blocking
    and the "exact" level. Unkeyed, but of the keyed encoding, so it reveals nothing more."""
    s = values.astype("string")
    uniq = s.dropna().unique()
    hashed = pd.util.hash_array(np.asarray(uniq, dtype=object), categorize=False)
    mapping = pd.Series(hashed.view(np.int64), index=uniq)
    return pd.array(s.map(mapping, na_action="ignore"), dtype="Int64")


def _words(hex_values: pd.Series, prefix: str) -> pd.DataFrame:
    """Hex encodings to WORDS unsigned 64-bit columns (null encodings give nulls)."""
    s = hex_values.astype("string")
    uniq = s.dropna().unique()
    table = np.zeros((len(uniq), WORDS), dtype=np.uint64)
    for i, h in enumerate(uniq):
        raw = np.frombuffer(bytes.fromhex(h), dtype=">u8")
        table[i, : len(raw)] = raw
    pos = pd.Series(np.arange(len(uniq)), index=uniq)
    idx = s.map(pos, na_action="ignore")
    valid = idx.notna().to_numpy()
    out = {}
    rows = idx.fillna(0).astype("int64").to_numpy()
    for w in range(WORDS):
        col = pd.array(table[rows, w], dtype="UInt64")
        col[~valid] = pd.NA
        out[f"{prefix}_w{w}"] = col
    return pd.DataFrame(out, index=hex_values.index)


# `profile_ids` numbers profiles as the sorted text key "|" + "|".join(value or "") of their
# encodings would; comparing columns' sorted codes gives that order when, per column, every
# value has one length and starts below "|" (hex tokens and encodings, M/F).
_KEY_SEPARATOR = "|"


def _ranked_codes(values: pd.Series, last: bool) -> np.ndarray | None:
    """Each value's rank in sorted order, nulls after every value (the separator that follows
    the empty text sorts after any character of a value) or, in the ``last`` column, before
    them (the key ends there: a prefix sorts first); None when the column's values are not
    all of one length starting below the separator (then code order may differ from the text
    key's)."""
    codes, uniques = pd.factorize(values, sort=True)
    if len(uniques):
        text = np.asarray(uniques, dtype=object)
        if not all(isinstance(v, str) for v in text):
            return None
        lengths = np.fromiter(map(len, text), dtype=np.int64, count=len(text))
        if lengths.min() != lengths.max() or lengths[0] == 0:
            return None
        if max(v[0] for v in text) >= _KEY_SEPARATOR:
            return None
    codes = codes.astype(np.int64)
    if not last:
        codes[codes < 0] = len(uniques)
    return codes


def _text_key_ids(enc: pd.DataFrame, strong: np.ndarray, has_any: np.ndarray) -> np.ndarray:
    """Profile ids from the text key itself (any encodings: the general path)."""
    n = len(enc)
    key = pd.Series([""] * n, index=enc.index, dtype="string")
    for c in ENCODING_COLUMNS:
        key = key + _KEY_SEPARATOR + enc[c].astype("string").fillna("")
    key = key.where(strong, "row:" + pd.Series(np.arange(n), index=enc.index).astype("string"))
    key = key.where(has_any, pd.NA)
    codes, _ = pd.factorize(key, sort=True)
    return codes.astype(np.int64)


def profile_ids(enc: pd.DataFrame, strong: np.ndarray, has_any: np.ndarray) -> np.ndarray:
    """Profile id per row (-1: no encodings): rows whose encodings (`ENCODING_COLUMNS`) are all
    equal and ``strong`` share one; every other row with an encoding is its own profile.

    Ids are numbered as sorting the text key "row:<position>" (weak rows) and "|"-joined
    encodings (strong rows) numbers them, so the profile table, the model's sampling and the
    pairs do not change with how ids are computed; this does it on integer codes per column
    instead of a long string per row (a national month: 3.4 million rows)."""
    n = len(enc)
    ids = np.full(n, -1, dtype=np.int64)
    weak_rows = np.flatnonzero(has_any & ~strong)
    strong_rows = np.flatnonzero(has_any & strong)
    ranked = []
    for c in ENCODING_COLUMNS:
        codes = _ranked_codes(
            enc[c].iloc[strong_rows].reset_index(drop=True), c == ENCODING_COLUMNS[-1]
        )
        if codes is None:
            return _text_key_ids(enc, strong, has_any)
        ranked.append(codes)
    # weak rows first ("row:" sorts before "|"), in the text order of their positions
    weak_order = np.argsort(weak_rows.astype(str), kind="stable")
    ids[weak_rows[weak_order]] = np.arange(len(weak_rows), dtype=np.int64)
    if len(strong_rows):
        order = np.lexsort(ranked[::-1])  # first column primary; stable: row order in a tie
        sorted_codes = np.stack([r[order] for r in ranked])
        new_profile = np.ones(len(order), dtype=bool)
        new_profile[1:] = (sorted_codes[:, 1:] != sorted_codes[:, :-1]).any(axis=0)
        del sorted_codes
        ids[strong_rows[order]] = len(weak_rows) + np.cumsum(new_profile) - 1
    return ids


def profiles(encoded: pd.DataFrame, clear_names: bool = False) -> tuple[pd.DataFrame, np.ndarray]:
    """Distinct strong profiles; returns (profile table, profile id per row; -1 = no encodings).

    Each name encoding becomes `{part}_name_key` (hash of the encoding) and WORDS word columns;
    with ``clear_names`` (the benchmark's cleartext anchor) the `_bf` columns hold cleartext
    names, kept as `{part}_name_clear` for Jaro-Winkler."""
    enc = encoded[ENCODING_COLUMNS].copy()
    enc["person_sex"] = enc["person_sex"].where(enc["person_sex"] != "U")
    has_any = enc[TOKEN_COLUMNS + BLOOM_COLUMNS].notna().any(axis=1).to_numpy()
    strong = (
        enc["nhs_number_token"].notna()
        | (
            enc["given_name_bf"].notna()
            & enc["family_name_bf"].notna()
            & enc["birth_date_token"].notna()
        )
    ).to_numpy()
    codes = profile_ids(enc, strong, has_any)
    ids, first = np.unique(codes, return_index=True)  # each profile's first row
    table = enc.iloc[first[ids >= 0]].reset_index(drop=True)
    table.insert(0, "profile_id", np.arange(len(table), dtype="int64"))
    for b in BLOOM_COLUMNS:
        prefix = b.removesuffix("_bf")
        extra = pd.DataFrame({f"{prefix}_key": _name_key(table[b])}, index=table.index)
        if clear_names:
            extra[f"{prefix}_clear"] = table[b].astype("string")
        else:
            extra = pd.concat([extra, _words(table[b], prefix)], axis=1)
        table = pd.concat([table.drop(columns=[b]), extra], axis=1)
    return table, codes.astype("int64")


def _linker(table: pd.DataFrame, options: LinkageOptions, settings_dict: dict[str, Any]):
    """A Splink linker on the options' engine (DuckDB or Spark: `identity.engines`) and the
    handle to close."""
    from sim_pipeline.identity.engines import linker

    return linker(table, options, settings_dict)


def predict_pairs(
    table: pd.DataFrame, options: LinkageOptions, timings: dict[str, float]
) -> tuple[pd.DataFrame, pd.DataFrame, bool, dict[str, Any]]:
    """Train (when there are enough profiles) and score candidate pairs of profiles. Returns
    the pairs, the model's parameters, whether it was trained, and the model as Splink saves
    it (JSON-ready: m and u per level, the prior, the comparisons' SQL; no values)."""
    trained = len(table) >= options.min_profiles_to_train
    cfg = settings(options, trained)
    linker, con = _linker(table, options, cfg)
    t0 = time.perf_counter()
    skipped = 0
    if trained:
        from splink.internals.exceptions import SplinkException

        # A data set may lack an identifier altogether (police records carry no NHS number):
        # a training step whose blocking rule yields no pairs has nothing to learn from and is
        # skipped (counted in timings["training_steps_skipped"]), never fatal; the model keeps
        # the prior and m values it starts with for what it cannot estimate.
        try:
            linker.training.estimate_probability_two_random_records_match(
                DETERMINISTIC_RULES, recall=DETERMINISTIC_RECALL
            )
        except (SplinkException, ValueError, ZeroDivisionError):
            skipped += 1
        model = linker.misc.save_model_to_json()
        if not 0 < model["probability_two_random_records_match"] < 1:  # no pair found by the rules
            # the prior back to its default: the exported model, with it, as a new linker
            # (Splink's public path; no private attribute is written)
            con.close()
            model["probability_two_random_records_match"] = cfg[
                "probability_two_random_records_match"
            ]
            linker, con = _linker(table, options, model)
            skipped += 1
        linker.training.estimate_u_using_random_sampling(
            max_pairs=options.u_max_pairs, seed=options.seed
        )
        for rule in EM_BLOCKING_RULES:
            try:
                linker.training.estimate_parameters_using_expectation_maximisation(
                    rule, max_pairs=options.em_max_pairs
                )
            except SplinkException:
                skipped += 1
    timings["training_steps_skipped"] = skipped
    timings["train_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    pred = linker.inference.predict(
        threshold_match_probability=options.predict_floor, warning_mode="never"
    )
    pairs = pred.as_pandas_dataframe()
    timings["predict_s"] = time.perf_counter() - t0
    model = linker.misc.save_model_to_json()
    params = _parameters(linker)
    con.close()
    if pairs.empty:  # nothing to score (every record a profile of its own, or none alike)
        return empty_pairs(), params, trained, model
    pairs = score_columns(pairs, table)
    return pairs.sort_values(["left", "right"]).reset_index(drop=True), params, trained, model


def empty_pairs() -> pd.DataFrame:
    """No scored pairs, typed as `score_columns` gives them."""
    empty = pd.DataFrame({c: pd.Series(dtype="float64") for c in PAIR_COLUMNS})
    for c in ("left", "right"):
        empty[c] = empty[c].astype("int64")
    for c in ("anchored", "certain"):
        if c in empty:
            empty[c] = empty[c].astype(bool)
    return empty


def score_columns(pairs: pd.DataFrame, table: pd.DataFrame) -> pd.DataFrame:
    """Splink's scored pairs as the clustering reads them (PAIR_COLUMNS): profile ids as left
    and right, each comparison's weight, and whether the link is anchored or certain."""
    pairs = pairs.rename(columns={"profile_id_l": "left", "profile_id_r": "right"})
    for c in ("mw_birth_date", "mw_nhs_number", "mw_given_name", "mw_family_name"):
        if c not in pairs:  # a comparison on a field the data set lacks adds no weight
            pairs[c] = 0.0
    # A link is "anchored" when dates of birth agree (fully or partly) or NHS numbers match.
    pairs["anchored"] = (pairs["mw_birth_date"] > 0) | (pairs["mw_nhs_number"] > 0)
    # Names agree and the full birth date matches (or is day/month swapped): enough to override
    # a conflicting NHS number (a mistyped or borrowed number on one record).
    # tokens compared as codes of one factorisation (equal tokens, equal codes; missing -1)
    codes, _ = pd.factorize(
        pd.concat([table["birth_date_token"], table["birth_date_swap_token"]], ignore_index=True)
    )
    dob, swap = codes[: len(table)], codes[len(table) :]
    left, right = pairs["left"].to_numpy(), pairs["right"].to_numpy()
    dob_l, dob_r, swap_l, swap_r = dob[left], dob[right], swap[left], swap[right]
    same_dob = (
        ((dob_l >= 0) & (dob_l == dob_r))
        | ((swap_l >= 0) & (swap_l == dob_r))
        | ((swap_r >= 0) & (swap_r == dob_l))
    )
    pairs["certain"] = (pairs["mw_given_name"] > 0) & (pairs["mw_family_name"] > 0) & same_dob
    return pairs[PAIR_COLUMNS]


def _parameters(linker) -> pd.DataFrame:
    """m, u and match weight of every level, from the trained model as Splink exports it."""
    model = linker.misc.save_model_to_json()
    rows = []
    for comp in model["comparisons"]:
        for lvl in comp["comparison_levels"]:
            if lvl.get("is_null_level"):
                continue
            m, u = lvl["m_probability"], lvl["u_probability"]
            rows.append(
                {
                    "comparison": comp["output_column_name"],
                    "level": lvl["label_for_charts"],
                    "m_probability": m,
                    "u_probability": u,
                    "match_weight": float(np.log2(m / u)),
                }
            )
    out = pd.DataFrame(rows)
    # Stored to 6 significant figures: DuckDB's parallel float sums make EM's estimates differ
    # between runs on the same data (m by up to 1e-11 on the demo, enough to cross a 10th
    # significant figure), and a repeated run must give identical tables; the person index does
    # not depend on these stored values.
    for col in ("m_probability", "u_probability", "match_weight"):
        out[col] = [six_figures(v) for v in out[col]]
    return out


def six_figures(value: float) -> float:
    """A model estimate as stored (see `_parameters`): 6 significant figures."""
    return float(f"{value:.6g}")


def stored_model(model: dict[str, Any]) -> dict[str, Any]:
    """The model as `linkage_model` stores it: without Splink's per-linker id, its numbers to
    6 significant figures as `linkage_parameters` stores them (a repeated run must store the
    same)."""

    def rounded(value: object) -> object:
        if isinstance(value, float):
            return six_figures(value)
        if isinstance(value, dict):
            return {k: rounded(v) for k, v in value.items() if k != "linker_uid"}
        if isinstance(value, list):
            return [rounded(v) for v in value]
        return value

    return rounded(model)  # type: ignore[return-value]


def link_encoded(
    encoded: pd.DataFrame,
    groups: pd.DataFrame | None = None,
    options: LinkageOptions | None = None,
) -> LinkResult:
    """Cluster encoded rows into people.

    ``encoded`` holds the `IDENTITY_COLUMNS` encodings (any may be null). ``groups`` (same index)
    holds deterministic group labels: rows with equal non-null labels in a column are one person.
    Returns a cluster number per row (numbered by first appearance) and the row's match
    probability: the highest-probability link joining it to its cluster (1.0 when joined by
    construction, NaN when the row stands alone).
    """
    options = options or LinkageOptions()
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    check_encodings(encoded)
    table, profile_of_row = profiles(encoded, options.name_similarity == "jaro_winkler")
    timings["profiles_s"] = time.perf_counter() - t0
    model: dict[str, Any] = {}
    if len(table) >= 2:
        pairs, params, trained, model = predict_pairs(table, options, timings)
    else:
        pairs = empty_pairs()
        params, trained = pd.DataFrame(), False
    t0 = time.perf_counter()
    cluster, prob, counts = cluster_rows(encoded, table, profile_of_row, pairs, groups, options)
    timings["cluster_s"] = time.perf_counter() - t0
    clusters = pd.DataFrame(
        {"cluster": cluster.astype("int64"), "match_probability": prob}, index=encoded.index
    )
    return LinkResult(clusters, pairs, params, timings, counts, trained, model)


def check_encodings(encoded: pd.DataFrame) -> None:
    missing = [c for c in ENCODING_COLUMNS if c not in encoded.columns]
    if missing:
        raise ValueError(f"linkage input lacks encoding columns: {', '.join(missing)}")


__all__ = [
    "BLOCKING_RULES",
    "LinkResult",
    "LinkageOptions",
    "link_encoded",
]
