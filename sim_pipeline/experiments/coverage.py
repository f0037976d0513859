"""Does the evaluation recover a known effect? Coverage of its 95% intervals over many seeds.

For each seed the generator is run twice, with ``--true-effect`` 1.0 (no effect) and with the
effect under test (default 0.7, a 30% fall in every crisis contact while engaged). The same
seed gives the same people, latent paths, allocations and every event outside engagement, so the
second run differs from the first only by the effect. The evaluation
(``sim_pipeline.measures.evaluation``, the code the ``evaluation`` asset runs) is applied to the
generator's truth (``truth/person_month.csv`` priced with the unit costs, ``programme.csv`` and
``people.csv``), which isolates the statistical method from linkage error; the pipeline's own
linkage figures are measured separately (``sim-pipeline bench linkage``).

Targets per population and true effect:

* ``nominal``: ``true_effect - 1`` (0 or -0.30): the effect on the programme-period months of
  engaged people. Per-protocol follow-up months include the partial first and last months, so
  the realised per-protocol effect is a little smaller than the nominal one.
* ``realised``: the relative change in the population's mean follow-up cost between the two
  runs of the same seed (the programme members' own counterfactual): exact for that sample.

Coverage = share of seeds whose 95% DiD interval contains the target. The naive before/after
estimate is reported beside it. Results go to stdout and ``--out`` (JSON).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from sim_pipeline.measures.cohort import cohort_windows
from sim_pipeline.measures.costs import load_unit_costs, person_month_costs
from sim_pipeline.measures.evaluation import EvaluationSettings, evaluate
from sim_pipeline.measures.metrics import METRICS

OUTCOME = "total_cost"


def truth_inputs(
    truth_dir: Path, unit_costs
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, list[str]]:
    """(panel, cohort, people, months) from a generator truth folder."""
    pm = pd.read_csv(truth_dir / "person_month.csv", dtype={"true_person_id": str, "month": str})
    pm = pm.rename(columns={"true_person_id": "person_key"})
    costs = person_month_costs(pm[["person_key", "month", *METRICS]], unit_costs)
    panel = pm.merge(costs[["person_key", "month", "total_cost"]], on=["person_key", "month"])
    summary = json.loads((truth_dir / "summary.json").read_text())
    first, last = summary["parameters"]["window"]
    months = [str(p) for p in pd.period_range(first, last, freq="M")]
    prog = pd.read_csv(truth_dir / "programme.csv", dtype=str, keep_default_na=False)
    alloc = pd.to_datetime(prog["AllocationDate"])
    engage = pd.to_datetime(prog["EngagementDate"].replace("", None))
    discharge = pd.to_datetime(prog["DischargeDate"].replace("", None))
    cohort = pd.DataFrame(
        {
            "person_key": prog["true_person_id"],
            "allocation_date": alloc.dt.date,
            "itt": True,
            "per_protocol": engage.notna(),
        }
    ).join(cohort_windows(alloc, engage, discharge, first, last))
    ppl = pd.read_csv(truth_dir / "people.csv", dtype=str, keep_default_na=False)
    sex = ppl["sex"].str.upper().str[0].where(lambda s: s.isin(["M", "F"]), "U")
    people = pd.DataFrame(
        {
            "person_key": ppl["true_person_id"],
            "sex": sex,
            "birth_year": ppl["birth_year"].astype(int),
            "death_month": ppl["death_date"].str.slice(0, 7).replace("", None),
        }
    )
    return panel, cohort, people, months


def _followup_means(panel: pd.DataFrame, cohort: pd.DataFrame) -> pd.Series:
    """Mean follow-up monthly total cost per programme member (their programme window)."""
    w = panel.merge(cohort[["person_key", "programme_first_month", "programme_last_month"]])
    inside = (w["month"] >= w["programme_first_month"]) & (w["month"] <= w["programme_last_month"])
    sums = w[inside].groupby("person_key")[OUTCOME].sum()
    return sums.reindex(cohort["person_key"]).fillna(0) / cohort.set_index("person_key")[
        "programme_months"
    ].clip(lower=1)


def run_seed(seed: int, effect: float, people: int, settings: EvaluationSettings, unit_costs):
    from sim_pipeline.synthetic import generate

    out: dict[str, dict] = {}
    follow: dict[float, pd.Series] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for e in sorted({1.0, effect}, reverse=True):
            land, tru = Path(tmp) / f"land{e}", Path(tmp) / f"truth{e}"
            generate(land, tru, seed=seed, people=people, true_effect=e)
            panel, cohort, ppl, months = truth_inputs(tru, unit_costs)
            ev = evaluate(panel, cohort, ppl, months, replace(settings, seed=seed))
            follow[e] = _followup_means(panel, cohort)
            est = ev.estimates[ev.estimates["outcome"] == OUTCOME]
            for pop in ("itt", "per_protocol"):
                row = est[est["population"] == pop].set_index("method")
                did = (
                    row.loc["difference_in_differences"]
                    if "difference_in_differences" in row.index
                    else pd.Series(
                        dict.fromkeys(["estimate", "ci_low", "ci_high", "n_people"], np.nan)
                    )
                )  # no member matched: no interval, counted as not covering
                members = cohort.loc[cohort[pop].astype(bool), "person_key"]
                out[f"{e}:{pop}"] = {
                    "naive": float(row.loc["naive_before_after", "estimate"]),
                    "did": float(did["estimate"]),
                    "ci_low": float(did["ci_low"]),
                    "ci_high": float(did["ci_high"]),
                    "matched": int(did["n_people"]) if pd.notna(did["n_people"]) else 0,
                    "members": members.tolist(),
                }
        for pop in ("itt", "per_protocol"):
            m = out[f"{effect}:{pop}"].pop("members")
            out[f"1.0:{pop}"].pop("members", None)
            realised = float(follow[effect].loc[m].mean() / follow[1.0].loc[m].mean() - 1)
            out[f"{effect}:{pop}"]["realised"] = realised
            out[f"1.0:{pop}"]["realised"] = 0.0
    return out


def summarise(results: list[dict], effects: list[float]) -> pd.DataFrame:
    rows = []
    for e in effects:
        for pop in ("itt", "per_protocol"):
            r = [res[f"{e}:{pop}"] for res in results if f"{e}:{pop}" in res]
            lo = np.array([x["ci_low"] for x in r])
            hi = np.array([x["ci_high"] for x in r])
            nominal = e - 1
            realised = np.array([x["realised"] for x in r])
            rows.append(
                {
                    "true_effect": e,
                    "population": pop,
                    "seeds": len(r),
                    "mean_naive": float(np.mean([x["naive"] for x in r])),
                    "mean_did": float(np.mean([x["did"] for x in r])),
                    "mean_realised": float(realised.mean()),
                    "mean_ci_width": float(np.mean(hi - lo)),
                    "coverage_nominal": float(np.mean((lo <= nominal) & (nominal <= hi))),
                    "coverage_realised": float(np.mean((lo <= realised) & (realised <= hi))),
                    "naive_shows_fall": float(np.mean([x["naive"] < 0 for x in r])),
                }
            )
    return pd.DataFrame(rows)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", type=int, default=20)
    ap.add_argument("--first-seed", type=int, default=1)
    ap.add_argument("--true-effect", type=float, default=0.7, help="effect under test")
    ap.add_argument("--people", type=int, default=2000, help="general population per seed")
    ap.add_argument("--bootstrap", type=int, default=1000)
    ap.add_argument("--out", type=Path, default=Path("data/bench/evaluation_coverage.json"))
    args = ap.parse_args(argv)
    from sim_pipeline.config import REFERENCE_DIR

    unit_costs = load_unit_costs(
        REFERENCE_DIR / "unit_costs.csv", "2018/19", REFERENCE_DIR / "price_index.csv"
    )
    settings = EvaluationSettings(bootstrap=args.bootstrap)
    effects = sorted({1.0, args.true_effect}, reverse=True)
    results, t0 = [], time.perf_counter()
    for seed in range(args.first_seed, args.first_seed + args.seeds):
        t = time.perf_counter()
        res = run_seed(seed, args.true_effect, args.people, settings, unit_costs)
        results.append(res)
        line = "  ".join(
            f"{k} naive {v['naive']:+.3f} did {v['did']:+.3f} [{v['ci_low']:+.3f}, "
            f"{v['ci_high']:+.3f}] realised {v['realised']:+.3f}"
            for k, v in res.items()
        )
        print(f"seed {seed} ({time.perf_counter() - t:.0f} s): {line}", flush=True)
    table = summarise(results, effects)
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(table.round(3).to_string(index=False))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "seeds": list(range(args.first_seed, args.first_seed + args.seeds)),
        "people": args.people,
        "bootstrap": args.bootstrap,
        "seconds": round(time.perf_counter() - t0, 1),
        "summary": table.to_dict(orient="records"),
        "per_seed": results,
    }
    args.out.write_text(json.dumps(payload, indent=2) + "\n")
    print(f"written to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
