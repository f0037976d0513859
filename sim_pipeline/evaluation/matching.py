"""The difference-in-differences bracket's comparison cohort: who may serve, and who does.

Owns the eligibility rule and its test on the panel (``EligibilityRule``, ``meets``); the
pseudo-index candidates: every person never allocated, at each month of the allocation period in
which they meet the rule, with the history required, alive (``candidates``: risk-set matching,
Li, Propert and Rosenbaum 2001); the history matched on, log mean monthly cost and log crisis
contacts in each history window (``matching_features``, ``CRISIS_METRICS``); the greedy
nearest-neighbour matching, exact on the sex and age-band stratum, hardest members first, each
comparison person once (``nearest_matches``); and the evaluation_matches rows of both designs
(``match_table``, ``design_stratum``). ``comparison``'s docstring gives the method in full.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from sim_pipeline.evaluation.panel import Panel
from sim_pipeline.evaluation.tables import EvaluationMatches
from sim_pipeline.measures.metrics import METRICS
from sim_pipeline.warehouse.model import columns

# Contacts that make up "crisis use" in the matching distance (bed days enter through cost).
CRISIS_METRICS = ("ae_attendances", "ambulance_resources", "police_deployments", "s136_detentions")
MATCH_COLUMNS = columns(EvaluationMatches)


@dataclass(frozen=True)
class EligibilityRule:
    """Met in a month when any trailing count reaches its threshold."""

    min_counts: Mapping[str, int] = field(
        default_factory=lambda: {
            "s136_detentions": 2,
            "ae_attendances": 12,
            "police_deployments": 12,
        }
    )
    window_months: int = 12

    def __post_init__(self) -> None:
        unknown = set(self.min_counts) - set(METRICS)
        if unknown or not self.min_counts:
            raise ValueError(f"eligibility rule needs metrics from {METRICS}; got {unknown}")
        if any(v < 1 for v in self.min_counts.values()) or self.window_months < 1:
            raise ValueError("eligibility thresholds and window must be at least 1")

    @classmethod
    def parse(cls, text: str, window_months: int = 12) -> EligibilityRule:
        """``"s136_detentions>=2, ae_attendances>=12"`` (any of)."""
        counts = {}
        for part in filter(None, (p.strip() for p in text.split(","))):
            name, _, value = part.partition(">=")
            if not value:
                raise ValueError(f"eligibility rule part {part!r} is not metric>=count")
            counts[name.strip()] = int(value)
        return cls(counts, window_months)

    def scaled(self, factor: float) -> EligibilityRule:
        return replace(
            self, min_counts={k: max(1, round(v * factor)) for k, v in self.min_counts.items()}
        )

    def describe(self) -> str:
        parts = [f"{k} >= {v}" for k, v in self.min_counts.items()]
        return f"any of ({', '.join(parts)}) in the {self.window_months} months before"


def meets(pan: Panel, rule: EligibilityRule, person, month) -> np.ndarray:
    """Whether each (person, index month) meets the rule over the months before it."""
    rule_cols = {k: pan.col(k) for k in rule.min_counts}
    out = np.zeros(len(person), bool)
    month = np.clip(month, 0, pan.cum.shape[2] - 1)  # an index before the data: what is there
    for k, j in rule_cols.items():
        trailing = (
            pan.cum[j, person, month]
            - pan.cum[j, person, np.maximum(0, month - rule.window_months)]
        )
        out |= trailing >= rule.min_counts[k]
    return out


def candidates(
    pan: Panel, rule: EligibilityRule, min_history_months: int, alloc_m, allocated, death
) -> tuple[np.ndarray, np.ndarray]:
    """(person, month) meeting the rule, never allocated, alive, full history: the candidates'
    panel rows and pseudo-index months, month by month over the allocation period."""
    n_m = len(pan.months)
    n_people = len(pan.keys)
    hist = min_history_months
    lo, hi = int(alloc_m.min()), int(alloc_m.max())
    cand_months = np.arange(max(lo, hist), min(hi, n_m - 1) + 1)
    cp, cm = [], []
    everyone = np.arange(n_people)
    for m in cand_months:
        met = meets(pan, rule, everyone, np.full(n_people, m))
        ok = met & ~allocated & (death >= m)  # alive at the start of the month
        idx = np.nonzero(ok)[0]
        cp.append(idx)
        cm.append(np.full(len(idx), m))
    cand_p = np.concatenate(cp) if cp else np.zeros(0, np.int64)
    cand_m = np.concatenate(cm) if cm else np.zeros(0, np.int64)
    return cand_p, cand_m


def matching_features(pan: Panel, history_windows, person: np.ndarray, month: np.ndarray):
    """log(1 + mean per month) of cost and of crisis contacts in each history window."""
    cost = pan.col("total_cost")
    crisis = [pan.col(m) for m in CRISIS_METRICS]
    out = []
    for first, last in history_windows:
        c, n = pan.window_sum(cost, person, month + first, month + last)
        k = sum(pan.window_sum(j, person, month + first, month + last)[0] for j in crisis)
        out += [np.log1p(c / np.maximum(n, 1)), np.log1p(k / np.maximum(n, 1))]
    return np.column_stack(out)


def nearest_matches(
    pan: Panel, settings, member_keys, t_person, alloc_m, pl, t_str, cand_p, cand_m, c_str
) -> pd.DataFrame:
    """Greedy nearest-neighbour matching, hardest first, each comparison person once: up to
    ``settings.controls_per_person`` candidates of the member's stratum, within
    ``settings.caliper`` and ``settings.max_month_gap``, whose follow-up fits in the data as the
    member's does (``pl``: the members' last programme months; ``settings``: the
    ``comparison.EvaluationSettings``). One row per match: t (member row), c_person, c_month
    (pseudo-index month), distance."""
    n_m = len(pan.months)
    t_feat = matching_features(pan, settings.history_windows, t_person, alloc_m)
    c_feat = matching_features(pan, settings.history_windows, cand_p, cand_m)
    # standardise by the spread over members and candidates together (a handful of near-alike
    # members alone would make any difference look huge)
    scale = np.vstack([t_feat, c_feat]).std(axis=0) if len(c_feat) else np.ones(t_feat.shape[1])
    scale = np.where(scale > 0, scale, 1.0)
    used = np.zeros(len(pan.keys), bool)
    match_rows = []
    order = np.lexsort((member_keys, -t_feat[:, -2]))
    by_stratum: dict[str, np.ndarray] = {}
    for st in np.unique(c_str):
        by_stratum[st] = np.nonzero(c_str == st)[0]
    for i in order:
        pool = by_stratum.get(t_str[i])
        if pool is None:
            continue
        # the comparison's follow-up must fit in the data as the member's does, else it would
        # only contribute the months nearest its peak
        fits = cand_m[pool] + (pl[i] - alloc_m[i]) <= n_m - 1
        near = np.abs(cand_m[pool] - alloc_m[i]) <= settings.max_month_gap
        pool = pool[~used[cand_p[pool]] & near & fits]
        if not len(pool):
            continue
        d = np.sqrt((((c_feat[pool] - t_feat[i]) / scale) ** 2).sum(axis=1))
        keep = d <= settings.caliper
        pool, d = pool[keep], d[keep]
        o = np.lexsort((cand_m[pool], cand_p[pool], d))
        chosen: list[int] = []
        seen: set[int] = set()
        for c in pool[o]:
            if cand_p[c] in seen:
                continue
            seen.add(int(cand_p[c]))
            chosen.append(int(c))
            if len(chosen) == settings.controls_per_person:
                break
        for c in chosen:
            used[cand_p[c]] = True
            match_rows.append((i, int(cand_p[c]), int(cand_m[c]), float(d[pool == c][0])))

    return pd.DataFrame(match_rows, columns=["t", "c_person", "c_month", "distance"])


def match_table(
    analysis: str, months, members: pd.Series, keys, alloc_m, t_str, matches, design_matches=None
) -> pd.DataFrame:
    """The evaluation_matches rows of one analysis: the bracket's matches (``nearest_matches``;
    stratum: the exact-match stratum), then the primary design's when it ran
    (``design_matches``: ``matched_design.DesignResult.matches``). ``members``: the programme
    members' person keys; ``keys``: the panel's."""
    first_m = pd.Period(months[0], "M")

    def label(m: np.ndarray | int) -> list[str] | str:
        if np.ndim(m) == 0:
            return str(first_m + int(m))
        return [str(first_m + int(x)) for x in m]

    table = pd.DataFrame(
        {
            "analysis": analysis,
            "person_key": members.to_numpy()[matches["t"].to_numpy(dtype=int)],
            "comparison_person_key": [keys[p] for p in matches["c_person"]],
            "index_month": label(alloc_m[matches["t"].to_numpy(dtype=int)]),
            "pseudo_index_month": label(matches["c_month"].to_numpy()),
            "stratum": t_str[matches["t"].to_numpy(dtype=int)],
            "distance": matches["distance"].round(6),
        },
        columns=MATCH_COLUMNS,
    )
    if design_matches is None:
        return table
    return pd.concat(
        [
            table,
            pd.DataFrame(
                {
                    "analysis": analysis,
                    "person_key": [members.iloc[i] for i, *_ in design_matches],
                    "comparison_person_key": [keys[p] for _, p, *_ in design_matches],
                    "index_month": [label(alloc_m[i]) for i, *_ in design_matches],
                    "pseudo_index_month": [label(m) for _, _, m, *_ in design_matches],
                    "stratum": design_stratum(design_matches),
                    "distance": [round(d, 6) for *_, d, _ in design_matches],
                },
                columns=MATCH_COLUMNS,
            ),
        ],
        ignore_index=True,
    )


def design_stratum(matches) -> list[str]:
    """The matched-design rows' stratum column: the window's population they serve."""
    return [f"design:{pop}" for *_, pop in matches]
