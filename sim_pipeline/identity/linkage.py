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
3. **Model.** Splink comparisons on the encodings (see `comparisons`), blocking rules that keep
   police and untraced records linkable (`BLOCKING_RULES`); u estimated by random sampling,
   m by EM without labels; the prior from deterministic rules.
4. **Clustering.** Connected components over pairs at or above the threshold plus the
   deterministic edges.

Splink's own logging is kept at WARNING: nothing it prints contains values, but the SQL is noise.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

# Encodings the model reads (everything else in IDENTITY_COLUMNS is descriptive).
TOKEN_COLUMNS = [
    "nhs_number_token",
    "birth_date_token",
    "birth_date_swap_token",
    "birth_year_month_token",
    "birth_month_day_token",
    "postcode_unit_token",
    "postcode_sector_token",
    "postcode_district_token",
]
BLOOM_COLUMNS = ["given_name_bf", "family_name_bf"]
WORDS = 16  # a 1024-bit encoding as 16 unsigned 64-bit words (fastest bit_count in DuckDB)
# The profile table replaces each encoding by WORDS word columns `{part}_name_w0..` and a 64-bit
# hash of the whole encoding, `{part}_name_key`: equal keys = equal encodings = the same name
# (the filter is deterministic under the key, so no separate exact-name token is stored).
ENCODING_COLUMNS = [*TOKEN_COLUMNS, *BLOOM_COLUMNS, "person_sex"]

# Candidate pairs: any one rule is enough. Police records have no NHS number and ECDS no names,
# so no rule needs either; each rule tolerates a different error.
BLOCKING_RULES = [
    "l.nhs_number_token = r.nhs_number_token",
    "l.birth_date_token = r.birth_date_token and l.family_name_key = r.family_name_key",
    "l.birth_date_token = r.birth_date_token and l.given_name_key = r.given_name_key",
    "l.birth_date_token = r.birth_date_token and l.postcode_sector_token = r.postcode_sector_token",
    "l.given_name_key = r.given_name_key and l.family_name_key = r.family_name_key",
    "l.birth_date_swap_token = r.birth_date_token and l.family_name_key = r.family_name_key",
    "l.birth_date_token = r.birth_date_swap_token and l.family_name_key = r.family_name_key",
    "l.birth_month_day_token = r.birth_month_day_token and l.family_name_key = r.family_name_key",
    "l.birth_year_month_token = r.birth_year_month_token"
    " and l.postcode_unit_token = r.postcode_unit_token",
    "l.family_name_key = r.family_name_key and l.postcode_unit_token = r.postcode_unit_token",
    "l.given_name_key = r.given_name_key and l.postcode_unit_token = r.postcode_unit_token",
]
# Rules that admit almost no false matches, for the prior (probability two records match).
DETERMINISTIC_RULES = [
    "l.nhs_number_token = r.nhs_number_token",
    "l.birth_date_token = r.birth_date_token and l.given_name_key = r.given_name_key"
    " and l.family_name_key = r.family_name_key",
]
DETERMINISTIC_RECALL = 0.7
# EM sessions: each blocks on some fields and estimates m for the others.
EM_BLOCKING_RULES = [
    "l.nhs_number_token = r.nhs_number_token",
    "l.given_name_key = r.given_name_key and l.family_name_key = r.family_name_key",
]
# Hamming similarity of the diffused encodings (1 - differing bits / 1024): typo, near. With the
# half-full base the scale is compressed (unrelated names ~0.50, one-letter typos ~0.6); the
# levels let through about as many unrelated pairs as the old Dice levels (0.92, 0.86) did,
# between the two fields' lowest such levels (docs/encoding-attacks.md).
NAME_LEVELS = (0.62, 0.56)
JARO_WINKLER_LEVELS = (0.94, 0.88)  # cleartext anchor only
# Default m, u of the similarity levels, strongest first (EM re-estimates them when training).
SIMILARITY_MU = ((0.07, 0.002), (0.03, 0.01), (0.02, 0.03))
# Fixed m probabilities (not estimated; see `comparisons`).
NHS_M = 0.995  # P(NHS-number tokens agree | same person, both present)
SEX_MISCODED = 0.01  # P(recorded sex differs | same person)
PAIR_COLUMNS = [
    "left",
    "right",
    "match_weight",
    "match_probability",
    "anchored",
    "certain",
]


@dataclass(frozen=True)
class LinkageOptions:
    """Settings of one linkage run (all recorded in the run's metadata)."""

    threshold: float = 0.95  # match probability at or above which a pair is a link
    # Bits by which a name-only record's best candidate must beat the runner-up to attach.
    ambiguity_margin: float = 3.0
    # A name-only record may attach to its one clear candidate person at this lower probability.
    attach_threshold: float = 0.5
    # ... and so may a component of at most this many rows whose birth date disagrees.
    attach_max_rows: int = 1
    predict_floor: float = 0.01  # pairs kept for diagnostics (threshold curve, weights)
    u_max_pairs: float = 2e6
    em_max_pairs: float = 1e6
    seed: int = 20180101
    threads: int | None = None  # DuckDB threads (None: all cores)
    # Below this many profiles the data cannot train a model: the default parameters are used.
    min_profiles_to_train: int = 2000
    # Adjust exact name agreement for how common the name is. Off: on the demo it changed
    # cohort recall from 0.9758 to 0.9745 at equal precision (docs/architecture.md).
    term_frequencies: bool = False
    name_similarity: str = "hamming"  # "jaro_winkler" only for the cleartext benchmark anchor


@dataclass
class LinkResult:
    """Cluster per input row plus what an auditor needs to judge the run."""

    clusters: pd.DataFrame  # row (input index), cluster (int), match_probability (float)
    pairs: pd.DataFrame  # profile pairs >= predict_floor: match_weight, match_probability
    parameters: pd.DataFrame  # comparison, level, m_probability, u_probability, match_weight
    timings: dict[str, float] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    trained: bool = False


def _null_level(col: str) -> dict[str, Any]:
    return {
        "sql_condition": f'"{col}_l" IS NULL OR "{col}_r" IS NULL',
        "label_for_charts": "null",
        "is_null_level": True,
    }


def _else(m: float, u: float, fix_m: bool = False) -> dict[str, Any]:
    return {
        "sql_condition": "ELSE",
        "label_for_charts": "else",
        "m_probability": m,
        "u_probability": u,
        **({"fix_m_probability": True} if fix_m else {}),
    }


def _level(sql: str, label: str, m: float, u: float, fix_m: bool = False) -> dict[str, Any]:
    return {
        "sql_condition": sql,
        "label_for_charts": label,
        "m_probability": m,
        "u_probability": u,
        **({"fix_m_probability": True} if fix_m else {}),
    }


def _hamming_sql(prefix: str) -> str:
    """Hamming similarity of two encodings: 1 - differing bits / (64 * WORDS)."""
    terms = " + ".join(
        f'CAST(bit_count(xor("{prefix}_w{i}_l", "{prefix}_w{i}_r")) AS INTEGER)'
        for i in range(WORDS)
    )
    return f"(1.0 - ({terms}) / {64 * WORDS}.0)"


def _name_similarity_sql(part: str, mode: str) -> str:
    if mode == "hamming":
        return _hamming_sql(f"{part}_name")
    # Cleartext anchor (benchmark only): the same levels on Jaro-Winkler of the names, which
    # `ClearTokeniser` writes in the `_bf` column (kept as `{part}_name_clear`).
    return f'jaro_winkler_similarity("{part}_name_clear_l", "{part}_name_clear_r")'


def comparisons(
    name_similarity: str = "hamming", term_frequencies: bool = True
) -> list[dict[str, Any]]:
    """Comparison definitions with default m/u (used as-is when the data are too few to train).

    ``name_similarity`` is "hamming" (the diffused encodings: production) or "jaro_winkler" (the
    cleartext anchor of `sim-pipeline bench linkage`, whose `_bf` columns hold cleartext)."""
    if name_similarity not in ("hamming", "jaro_winkler"):
        raise ValueError(f"unknown name similarity {name_similarity!r}")
    levels = NAME_LEVELS if name_similarity == "hamming" else JARO_WINKLER_LEVELS
    out: list[dict[str, Any]] = [
        {
            "output_column_name": "nhs_number",
            "comparison_description": "NHS-number token",
            "comparison_levels": [
                _null_level("nhs_number_token"),
                # m is fixed, not estimated: an NHS number is verified against the Spine, so it
                # agrees on ~99.5% of true pairs. EM, seeing a heavy user's many profiles as
                # "non-matches", otherwise learns m ~0.6 and under-weights the number.
                _level('"nhs_number_token_l" = "nhs_number_token_r"', "exact", NHS_M, 1e-5, True),
                _else(1 - NHS_M, 1 - 1e-5, True),
            ],
        }
    ]
    for part in ("given", "family"):
        sim = _name_similarity_sql(part, name_similarity)
        similar = [
            _level(f"{sim} >= {t}", f"similarity>={t}", m, u)
            for t, (m, u) in zip(levels, SIMILARITY_MU, strict=False)
        ]
        out.append(
            {
                "output_column_name": f"{part}_name",
                "comparison_description": f"{part} name: equal encoding, then similarity",
                "comparison_levels": [
                    _null_level(f"{part}_name_key"),
                    {
                        **_level(
                            f'"{part}_name_key_l" = "{part}_name_key_r"', "exact", 0.85, 0.005
                        ),
                        # Term-frequency adjustment: a shared common name is weaker evidence.
                        **(
                            {
                                "tf_adjustment_column": f"{part}_name_key",
                                "tf_adjustment_weight": 1.0,
                            }
                            if term_frequencies
                            else {}
                        ),
                    },
                    *similar,
                    _else(0.05, 0.973),
                ],
            }
        )
    out.append(
        {
            "output_column_name": "birth_date",
            "comparison_description": "date of birth: exact, day/month swapped, partial",
            "comparison_levels": [
                _null_level("birth_date_token"),
                _level('"birth_date_token_l" = "birth_date_token_r"', "exact", 0.9, 5e-5),
                _level(
                    '"birth_date_swap_token_l" = "birth_date_token_r"'
                    ' OR "birth_date_token_l" = "birth_date_swap_token_r"',
                    "day/month swapped",
                    0.02,
                    2e-5,
                ),
                _level(
                    '"birth_year_month_token_l" = "birth_year_month_token_r"',
                    "year and month",
                    0.03,
                    1e-3,
                ),
                _level(
                    '"birth_month_day_token_l" = "birth_month_day_token_r"',
                    "month and day",
                    0.03,
                    3e-3,
                ),
                _else(0.02, 0.996),
            ],
        }
    )
    out.append(
        {
            "output_column_name": "postcode",
            "comparison_description": "home postcode: unit, sector, district",
            "comparison_levels": [
                _null_level("postcode_unit_token"),
                _level('"postcode_unit_token_l" = "postcode_unit_token_r"', "unit", 0.7, 1e-4),
                _level(
                    '"postcode_sector_token_l" = "postcode_sector_token_r"', "sector", 0.1, 3e-3
                ),
                _level(
                    '"postcode_district_token_l" = "postcode_district_token_r"',
                    "district",
                    0.1,
                    0.03,
                ),
                _else(0.1, 0.967),
            ],
        }
    )
    out.append(
        {
            "output_column_name": "sex",
            "comparison_description": "sex (U counts as missing)",
            "comparison_levels": [
                {
                    "sql_condition": "\"person_sex_l\" = 'U' OR \"person_sex_r\" = 'U'"
                    ' OR "person_sex_l" IS NULL OR "person_sex_r" IS NULL',
                    "label_for_charts": "null",
                    "is_null_level": True,
                },
                # m fixed so a disagreement costs ~5.6 bits, not a veto: sex is miscoded in
                # real extracts even when synthetic data never does it.
                _level('"person_sex_l" = "person_sex_r"', "exact", 1 - SEX_MISCODED, 0.5, True),
                _else(SEX_MISCODED, 0.5, True),
            ],
        }
    )
    return out


def settings(options: LinkageOptions, trained: bool = True) -> dict[str, Any]:
    """Splink settings. Term-frequency adjustments only when training on enough data (a
    handful of records says nothing about how common a name is)."""
    return {
        "link_type": "dedupe_only",
        "unique_id_column_name": "profile_id",
        "probability_two_random_records_match": 1e-4,
        "comparisons": comparisons(options.name_similarity, options.term_frequencies and trained),
        "blocking_rules_to_generate_predictions": [{"blocking_rule": r} for r in BLOCKING_RULES],
        "retain_intermediate_calculation_columns": True,
        "retain_matching_columns": False,
        "additional_columns_to_retain": [],
    }


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
    n = len(enc)
    key = pd.Series([""] * n, index=enc.index, dtype="string")
    for c in ENCODING_COLUMNS:
        key = key + "|" + enc[c].astype("string").fillna("")
    # Weak rows keep a unique key so they are never merged by construction.
    key = key.where(strong, "row:" + pd.Series(np.arange(n), index=enc.index).astype("string"))
    key = key.where(has_any, pd.NA)
    codes, uniques = pd.factorize(key, sort=True)  # sorted: ids deterministic for equal input
    first = pd.Series(np.arange(n)).groupby(codes).first()
    first = first[first.index >= 0]
    table = enc.iloc[first.to_numpy()].reset_index(drop=True)
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


def _components(n: int, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    graph = coo_matrix((np.ones(len(a), dtype=np.int8), (a, b)), shape=(n, n))
    _, labels = connected_components(graph, directed=False)
    # Renumber by first appearance so the numbering depends only on row order.
    _, first_seen = np.unique(labels, return_index=True)
    order = np.argsort(np.argsort(first_seen))
    return order[labels]


class _Components:
    """Union-find over components that refuses to give one person two NHS numbers."""

    def __init__(self, component: np.ndarray, nhs_codes: np.ndarray, anchored_rows: np.ndarray):
        k = int(component.max()) + 1 if len(component) else 0
        self.k = k
        self.parent = list(range(k))
        self.tokens: dict[int, set[int]] = {}
        has = nhs_codes >= 0
        for comp, code in set(zip(component[has].tolist(), nhs_codes[has].tolist(), strict=False)):
            self.tokens.setdefault(comp, set()).add(code)
        anchored = np.zeros(k, dtype=bool)
        anchored[component[anchored_rows]] = True
        self.anchored = anchored.tolist()
        self.refused = 0
        self.overridden = 0
        self.size = np.bincount(component, minlength=k).tolist()

    def find(self, x: int) -> int:
        parent = self.parent
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    def union(self, x: int, y: int, override: bool = False) -> bool:
        """Merge; ``override`` admits one NHS conflict (names and birth date agree outright:
        a mistyped NHS number) without adopting the other number, so it cannot chain on."""
        rx, ry = self.find(x), self.find(y)
        if rx == ry:
            return True
        tx, ty = self.tokens.get(rx), self.tokens.get(ry)
        if tx and ty and tx.isdisjoint(ty):
            if not override:
                self.refused += 1
                return False
            self.overridden += 1
            if len(ty) > len(tx):
                rx, ry, tx, ty = ry, rx, ty, tx
            self.parent[ry] = rx
            del self.tokens[ry]
            self.anchored[rx] = True
            self.size[rx] += self.size[ry]
            return True
        if ty and not tx:
            rx, ry, tx, ty = ry, rx, ty, tx
        self.parent[ry] = rx
        if ty:
            tx |= ty  # type: ignore[operator]
            del self.tokens[ry]
        self.anchored[rx] = self.anchored[rx] or self.anchored[ry]
        self.size[rx] += self.size[ry]
        return True

    def labels(self, component: np.ndarray) -> np.ndarray:
        roots = np.array([self.find(c) for c in range(self.k)], dtype=np.int64)
        labels = roots[component]
        _, first_seen, inverse = np.unique(labels, return_index=True, return_inverse=True)
        rank = np.argsort(np.argsort(first_seen))
        return rank[inverse].astype(np.int64)


def _attach(
    uf: _Components,
    a: np.ndarray,
    b: np.ndarray,
    weak: np.ndarray,
    weight: list[float],
    margin: float,
    used: np.ndarray,
    lone_anchored: bool,
    attach_max_rows: int,
) -> int:
    """One attachment pass of `_cluster` step 2a; returns how many groups were ambiguous."""
    best: dict[int, dict[int, tuple[float, int]]] = {}
    for i, x, y in zip(weak.tolist(), a[weak].tolist(), b[weak].tolist(), strict=False):
        rx, ry = uf.find(x), uf.find(y)
        if rx == ry:
            used[i] = True
            continue
        if not lone_anchored and uf.anchored[rx] != uf.anchored[ry]:
            group, person = (ry, rx) if uf.anchored[rx] else (rx, ry)
        elif (
            lone_anchored
            and uf.anchored[rx]
            and uf.anchored[ry]
            and min(uf.size[rx], uf.size[ry]) <= attach_max_rows
            and uf.size[rx] != uf.size[ry]
        ):
            group, person = (rx, ry) if uf.size[rx] < uf.size[ry] else (ry, rx)
        else:
            continue
        cands = best.setdefault(group, {})
        if person not in cands or weight[i] > cands[person][0]:
            cands[person] = (weight[i], i)
    ambiguous = 0
    for group, cands in best.items():
        ranked = sorted(cands.items(), key=lambda kv: (-kv[1][0], kv[0]))
        if len(ranked) > 1 and ranked[0][1][0] - ranked[1][1][0] < margin:
            ambiguous += 1
            continue
        person, (_, i) = ranked[0]
        used[i] = uf.union(group, person)
    return ambiguous


def _cluster(
    component: np.ndarray,
    nhs_codes: np.ndarray,
    anchored_rows: np.ndarray,
    a: np.ndarray,
    b: np.ndarray,
    anchored_link: np.ndarray,
    weight: list[float],
    margin: float,
    certain: np.ndarray | None = None,
    is_link: np.ndarray | None = None,
    attach_max_rows: int = 1,
) -> tuple[np.ndarray, np.ndarray, dict[str, int]]:
    """Cluster components joined by links (given strongest first).

    1. Anchored links (dates of birth agree, or NHS numbers) merge components, unless the merge
       would give one person two NHS numbers.
    2. Unanchored links (names and postcode only: police records without a birth date) never
       join two components that hold a birth date or NHS number: namesakes would chain people
       together. A record without either attaches to the one anchored person it links to (at
       the lower attach threshold), or to the best if that link outweighs the runner-up by
       ``margin`` bits; otherwise it is ambiguous and stays apart. Lone anchored records
       (a mistyped birth date; an anchored link below the threshold) attach the same way, in
       a pass before. What is left unanchored then joins up by itself (at the full threshold).
    Returns labels per row, which links were used, and counts for the run's diagnostics.
    """
    uf = _Components(component, nhs_codes, anchored_rows)
    certain = np.zeros(len(a), dtype=bool) if certain is None else certain
    is_link = np.ones(len(a), dtype=bool) if is_link is None else is_link
    used = np.zeros(len(a), dtype=bool)
    strong = np.flatnonzero(anchored_link & is_link)
    for i, x, y in zip(strong.tolist(), a[strong].tolist(), b[strong].tolist(), strict=False):
        used[i] = uf.union(x, y, override=bool(certain[i]))
    # Everything not merged in step 1: unanchored links, and anchored links below the threshold
    # (an ambulance record with only an NHS number), which may attach a lone record.
    weak = np.flatnonzero(~(anchored_link & is_link))
    weak_links = np.flatnonzero(~anchored_link & is_link)
    # 2a: first lone anchored records (a mistyped birth date or NHS number) to their person,
    #     then each unanchored component to its anchored person: the only one it links to, or
    #     the best if its best link outweighs any link to another person by `margin` bits. Lone
    #     records go first so a person's stray record is not a rival to that person.
    ambiguous = 0
    for lone_anchored in (True, False):
        ambiguous += _attach(uf, a, b, weak, weight, margin, used, lone_anchored, attach_max_rows)
    # 2b: what is still unanchored (people never seen with a birth date) joins up by itself.
    for i, x, y in zip(
        weak_links.tolist(), a[weak_links].tolist(), b[weak_links].tolist(), strict=False
    ):
        rx, ry = uf.find(x), uf.find(y)
        if rx == ry:
            used[i] = True
        elif not uf.anchored[rx] and not uf.anchored[ry]:
            used[i] = uf.union(rx, ry)
    counts = {
        "links_refused_nhs_conflict": uf.refused,
        "nhs_conflicts_overridden": uf.overridden,
        "ambiguous_unanchored_groups": ambiguous,
    }
    return uf.labels(component), used, counts


def _group_edges(groups: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Star edges joining rows that share any non-null group label (row positions)."""
    a_parts, b_parts = [], []
    for c in groups.columns:
        col = groups[c].reset_index(drop=True).dropna()
        if col.empty:
            continue
        codes, _ = pd.factorize(col)
        pos = col.index.to_numpy()
        first = pd.Series(pos).groupby(codes).transform("first").to_numpy()
        keep = first != pos
        a_parts.append(first[keep])
        b_parts.append(pos[keep])
    if not a_parts:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
    return np.concatenate(a_parts), np.concatenate(b_parts)


def _linker(table: pd.DataFrame, options: LinkageOptions, settings_dict: dict[str, Any]):
    import duckdb
    from splink import DuckDBAPI, Linker

    con = duckdb.connect()
    if options.threads:
        con.execute(f"SET threads = {int(options.threads)}")
    db_api = DuckDBAPI(connection=con)
    sdf = db_api.register(table, dataset_display_name="profiles")
    return Linker(sdf, settings_dict, log_level=logging.WARNING), con


def predict_pairs(
    table: pd.DataFrame, options: LinkageOptions, timings: dict[str, float]
) -> tuple[pd.DataFrame, pd.DataFrame, bool]:
    """Train (when there are enough profiles) and score candidate pairs of profiles."""
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
        model = linker._settings_obj
        if not 0 < model._probability_two_random_records_match < 1:  # no pair found by the rules
            model._probability_two_random_records_match = cfg[
                "probability_two_random_records_match"
            ]
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
    if pairs.empty:  # nothing to score (every record a profile of its own, or none alike)
        con.close()
        empty = pd.DataFrame({c: pd.Series(dtype="float64") for c in PAIR_COLUMNS})
        for c in ("left", "right"):
            empty[c] = empty[c].astype("int64")
        for c in ("anchored", "certain"):
            if c in empty:
                empty[c] = empty[c].astype(bool)
        return empty, _parameters(linker), trained
    pairs = pairs.rename(columns={"profile_id_l": "left", "profile_id_r": "right"})
    for c in ("mw_birth_date", "mw_nhs_number", "mw_given_name", "mw_family_name"):
        if c not in pairs:  # a comparison on a field the data set lacks adds no weight
            pairs[c] = 0.0
    # A link is "anchored" when dates of birth agree (fully or partly) or NHS numbers match.
    pairs["anchored"] = (pairs["mw_birth_date"] > 0) | (pairs["mw_nhs_number"] > 0)
    # Names agree and the full birth date matches (or is day/month swapped): enough to override
    # a conflicting NHS number (a mistyped or borrowed number on one record).
    dob = table["birth_date_token"].to_numpy(dtype=object)
    swap = table["birth_date_swap_token"].to_numpy(dtype=object)
    left, right = pairs["left"].to_numpy(), pairs["right"].to_numpy()
    dob_l, dob_r = pd.Series(dob[left]), pd.Series(dob[right])
    same_dob = (
        (dob_l.notna() & (dob_l == dob_r))
        | (pd.Series(swap[left]).notna() & (pd.Series(swap[left]) == dob_r))
        | (pd.Series(swap[right]).notna() & (pd.Series(swap[right]) == dob_l))
    )
    pairs["certain"] = (
        (pairs["mw_given_name"] > 0)
        & (pairs["mw_family_name"] > 0)
        & same_dob.fillna(False).to_numpy(dtype=bool)
    )
    pairs = pairs[PAIR_COLUMNS]
    params = _parameters(linker)
    con.close()
    return pairs.sort_values(["left", "right"]).reset_index(drop=True), params, trained


def _parameters(linker) -> pd.DataFrame:
    rows = []
    for comp in linker._settings_obj.comparisons:
        for lvl in comp.comparison_levels:
            if lvl.is_null_level:
                continue
            rows.append(
                {
                    "comparison": comp.output_column_name,
                    "level": lvl.label_for_charts,
                    "m_probability": lvl.m_probability,
                    "u_probability": lvl.u_probability,
                    "match_weight": float(np.log2(lvl.m_probability / lvl.u_probability)),
                }
            )
    out = pd.DataFrame(rows)
    # Stored to 6 significant figures: DuckDB's parallel float sums make EM's estimates differ
    # between runs on the same data (m by up to 1e-11 on the demo, enough to cross a 10th
    # significant figure), and a repeated run must give identical tables; the person index does
    # not depend on these stored values.
    for col in ("m_probability", "u_probability", "match_weight"):
        out[col] = [float(f"{v:.6g}") for v in out[col]]
    return out


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
    missing = [c for c in ENCODING_COLUMNS if c not in encoded.columns]
    if missing:
        raise ValueError(f"linkage input lacks encoding columns: {', '.join(missing)}")
    n = len(encoded)
    table, profile_of_row = profiles(encoded, options.name_similarity == "jaro_winkler")
    timings["profiles_s"] = time.perf_counter() - t0
    if len(table) >= 2:
        pairs, params, trained = predict_pairs(table, options, timings)
    else:
        pairs = pd.DataFrame(columns=PAIR_COLUMNS)
        params, trained = pd.DataFrame(), False

    t0 = time.perf_counter()
    # Nodes: rows 0..n-1. A profile is represented by its first row.
    has_profile = profile_of_row >= 0
    rep = np.full(len(table), -1, dtype=np.int64)
    rows_idx = np.arange(n)
    first_rows = pd.Series(rows_idx[has_profile]).groupby(profile_of_row[has_profile]).first()
    rep[first_rows.index.to_numpy()] = first_rows.to_numpy()
    same_profile = has_profile & (rep[np.maximum(profile_of_row, 0)] != rows_idx)
    ea = [rep[profile_of_row[same_profile]]]
    eb = [rows_idx[same_profile]]
    # Links at the threshold, plus weaker name-only candidates for attachment (step 2a).
    links = pairs[pairs["match_probability"] >= min(options.threshold, options.attach_threshold)]
    if groups is not None and len(groups.columns):
        ga, gb = _group_edges(groups)
        ea.append(ga)
        eb.append(gb)
    a = np.concatenate(ea).astype(np.int64)
    b = np.concatenate(eb).astype(np.int64)
    # 1. Joined by construction: one component each, whatever the encodings say.
    forced = _components(n, a, b) if n else np.empty(0, dtype=np.int64)
    nhs_codes, _ = pd.factorize(encoded["nhs_number_token"].reset_index(drop=True))
    anchored_rows = np.flatnonzero(
        (encoded["nhs_number_token"].notna() | encoded["birth_date_token"].notna()).to_numpy()
    )
    # 2. Probabilistic links, strongest first (see `_cluster`).
    la = forced[rep[links["left"].to_numpy()]] if len(links) else np.empty(0, dtype=np.int64)
    lb = forced[rep[links["right"].to_numpy()]] if len(links) else np.empty(0, dtype=np.int64)
    order = np.lexsort((lb, la, -links["match_probability"].to_numpy(dtype=float)))
    cluster, used, cluster_counts = _cluster(
        forced,
        nhs_codes,
        anchored_rows,
        la[order],
        lb[order],
        links["anchored"].to_numpy(dtype=bool)[order],
        links["match_weight"].to_numpy(dtype=float)[order].tolist(),
        options.ambiguity_margin,
        links["certain"].to_numpy(dtype=bool)[order],
        (links["match_probability"].to_numpy(dtype=float) >= options.threshold)[order],
        options.attach_max_rows,
    )
    accepted_links = links.iloc[order[used]]

    # Match probability per row: best accepted link of its profile; 1.0 if joined by construction.
    best = (
        pd.concat(
            [
                accepted_links[["left", "match_probability"]].rename(columns={"left": "p"}),
                accepted_links[["right", "match_probability"]].rename(columns={"right": "p"}),
            ]
        )
        .groupby("p")["match_probability"]
        .max()
    )
    prob = np.full(n, np.nan)
    prob[has_profile] = (
        pd.Series(profile_of_row[has_profile]).map(best).to_numpy(dtype=float, na_value=np.nan)
    )
    joined = np.zeros(n, dtype=bool)  # rows joined by construction (profile or group label)
    joined[a] = True
    joined[b] = True
    prob = np.where(joined, 1.0, prob)
    sizes = np.bincount(cluster) if n else np.empty(0, dtype=np.int64)
    prob = np.where(sizes[cluster] == 1, np.nan, prob) if n else prob
    timings["cluster_s"] = time.perf_counter() - t0
    clusters = pd.DataFrame(
        {"cluster": cluster.astype("int64"), "match_probability": prob}, index=encoded.index
    )
    counts = {
        "rows": n,
        "profiles": len(table),
        "candidate_pairs_scored": len(pairs),
        "links_at_threshold": len(links),
        "links_used": int(used.sum()),
        **cluster_counts,
        "clusters": int(cluster.max() + 1) if n else 0,
    }
    return LinkResult(clusters, pairs, params, timings, counts, trained)


__all__ = [
    "BLOCKING_RULES",
    "LinkResult",
    "LinkageOptions",
    "link_encoded",
]
