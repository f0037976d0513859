"""The linkage model's specification: what the Fellegi-Sunter model compares and how.

The encodings it reads, the blocking rules that generate candidate pairs (`BLOCKING_RULES`),
the deterministic rules that set the prior, the EM training rules, the comparisons and their
levels with default m and u (`comparisons`), and the Splink settings built from them
(`settings`). `identity.linkage` runs the model; `identity.clustering` turns its scored pairs
into people.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

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
ENGINES = ("duckdb", "spark")  # SQL dialects the model is written for (`identity.engines`)
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
    # Where Splink runs (`identity.engines`): "duckdb" in this process, or "spark" on the
    # Spark master / Spark Connect URL ``spark_url`` (None: an active session, else local[*]).
    engine: str = "duckdb"
    spark_url: str | None = None
    # Below this many profiles the data cannot train a model: the default parameters are used.
    min_profiles_to_train: int = 2000
    # Adjust exact name agreement for how common the name is. Off: on the demo it changed
    # cohort recall from 0.9758 to 0.9745 at equal precision (docs/architecture.md).
    term_frequencies: bool = False
    name_similarity: str = "hamming"  # "jaro_winkler" only for the cleartext benchmark anchor

    def __post_init__(self) -> None:
        if self.engine not in ENGINES:
            raise ValueError(
                f"unknown linkage engine {self.engine!r}: choose one of {', '.join(ENGINES)}"
            )
        if self.engine == "spark" and self.name_similarity != "hamming":
            # the anchor's `_bf` columns hold cleartext names: they never leave this process
            raise ValueError("the Spark engine links pseudonymised encodings only (hamming)")


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


def _hamming_sql(prefix: str, dialect: str = "duckdb") -> str:
    """Hamming similarity of two encodings: 1 - differing bits / (64 * WORDS).

    DuckDB holds the words as UBIGINT; Spark has no unsigned type, so `identity.engines` sends
    the same 64 bits as signed BIGINT (two's complement): XOR and the count of set bits are the
    same on either reading, so the similarity is identical."""
    if dialect == "spark":
        terms = " + ".join(
            f"CAST(bit_count(`{prefix}_w{i}_l` ^ `{prefix}_w{i}_r`) AS INT)" for i in range(WORDS)
        )
    else:
        terms = " + ".join(
            f'CAST(bit_count(xor("{prefix}_w{i}_l", "{prefix}_w{i}_r")) AS INTEGER)'
            for i in range(WORDS)
        )
    return f"(1.0 - ({terms}) / {64 * WORDS}.0)"


def _spark_sql(condition: str) -> str:
    """A DuckDB condition of `comparisons` in Spark SQL: identifiers in backticks (in Spark SQL a
    double-quoted word is a string). Every double quote in these conditions quotes an
    identifier; the one literal, 'U', is single-quoted."""
    return condition.replace('"', "`")


def _name_similarity_sql(part: str, mode: str, dialect: str = "duckdb") -> str:
    if mode == "hamming":
        return _hamming_sql(f"{part}_name", dialect)
    # Cleartext anchor (benchmark only): the same levels on Jaro-Winkler of the names, which
    # `ClearTokeniser` writes in the `_bf` column (kept as `{part}_name_clear`).
    return f'jaro_winkler_similarity("{part}_name_clear_l", "{part}_name_clear_r")'


def comparisons(
    name_similarity: str = "hamming", term_frequencies: bool = True, dialect: str = "duckdb"
) -> list[dict[str, Any]]:
    """Comparison definitions with default m/u (used as-is when the data are too few to train).

    ``name_similarity`` is "hamming" (the diffused encodings: production) or "jaro_winkler" (the
    cleartext anchor of `sim-pipeline bench linkage`, whose `_bf` columns hold cleartext).
    ``dialect`` is the engine's SQL ("duckdb" or "spark"); the levels are the same in both."""
    if name_similarity not in ("hamming", "jaro_winkler"):
        raise ValueError(f"unknown name similarity {name_similarity!r}")
    if dialect not in ENGINES:
        raise ValueError(f"unknown SQL dialect {dialect!r}")
    if dialect == "spark" and name_similarity != "hamming":
        raise ValueError("the Spark dialect has the hamming name similarity only")
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
        sim = _name_similarity_sql(part, name_similarity, dialect)
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
    if dialect == "spark":
        for comp in out:
            for lvl in comp["comparison_levels"]:
                lvl["sql_condition"] = _spark_sql(lvl["sql_condition"])
    return out


def settings(options: LinkageOptions, trained: bool = True) -> dict[str, Any]:
    """Splink settings. Term-frequency adjustments only when training on enough data (a
    handful of records says nothing about how common a name is)."""
    return {
        "link_type": "dedupe_only",
        "unique_id_column_name": "profile_id",
        "probability_two_random_records_match": 1e-4,
        "comparisons": comparisons(
            options.name_similarity, options.term_frequencies and trained, options.engine
        ),
        "blocking_rules_to_generate_predictions": [{"blocking_rule": r} for r in BLOCKING_RULES],
        "retain_intermediate_calculation_columns": True,
        "retain_matching_columns": False,
        "additional_columns_to_retain": [],
    }
