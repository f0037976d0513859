"""`sim-pipeline bench linkage`: three linkage methods side by side on synthetic data with truth.

One run generates a synthetic landing folder and its truth (in a temporary folder), stages every
provider table twice and links the same records three ways:

- ``nhs_only``: deterministic linkage on the NHS-number token alone. Records are joined when
  they share an NHS-number token, and also through the same deterministic group labels the
  engine uses (`linkage_rows`): a trust's LocalPatientId, a hospital spell, the police incident
  a s136 return was raised from. Those labels are each provider's own key for one person, which
  any NHS-number-only linkage would use too; without them MHSDS activity tables (which carry no
  identifiers) and police records (no NHS number) could never link to anything, and the
  baseline would be a straw man. Records without an NHS-number token join only through labels.
- ``cleartext``: the probabilistic engine (`link_encoded`) on normalised cleartext identifiers
  (`ClearTokeniser`: the token and name-encoding columns hold cleartext), names compared by
  Jaro-Winkler: the anchor an encoding should approach.
- ``encoded``: the engine on keyed tokens and the diffused Bloom-filter name encodings
  (`identity.tokens`, hardened in issue 16: docs/encoding-attacks.md), as the pipeline runs it.

Staging (read, validate, pseudonymise) is timed apart: it is not linkage. Each method runs in a
fresh process (multiprocessing "spawn") that loads its input, then links, so its wall time and
peak memory are its own: ``peak_rss_mib`` is the process high-water mark (interpreter, imports,
input and linkage) and ``peak_growth_mib`` its rise above the process's RSS once the input is
loaded (Linux: /proc VmHWM, reset before linking).

Scores come from `sim_pipeline.identity.scoring` against the generator's truth, with one unit
per record (source, table_name, record_ref): MHSDS resends a record every month and each row of
it is the same record. Cohort scores cover the pairs touching a programme member's records.

The input is staged in `linkage_staging`, each method runs in `linkage_methods`, the truth
is read and scored in `linkage_truth`; this module runs the benchmark and prints its report.
"""

from __future__ import annotations

import os
import pickle
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pandas as pd

from sim_pipeline.bench.linkage_methods import link_method, max_rss_mib, run_isolated
from sim_pipeline.bench.linkage_staging import clear_refs, same_labels, same_rows, stage_all
from sim_pipeline.bench.linkage_truth import RECORD_KEY, read_truth, score

METHODS: dict[str, str] = {
    "nhs_only": "deterministic: equal NHS-number token (plus providers' own person labels)",
    "cleartext": "probabilistic engine on normalised cleartext, names by Jaro-Winkler (anchor)",
    "encoded": "probabilistic engine on keyed tokens and diffused name encodings (the pipeline)",
}
SPARK_METHOD = {
    "encoded_spark": "the encoded engine on Spark (local[*] or SIM_SPARK_URL): same model"
}
COMPARISON_SHARE = 0.06  # comparison (high-intensity, never allocated) people per general person


def default_out(people: int, engine: str = "duckdb") -> Path:
    suffix = "" if engine == "duckdb" else f"_{engine}"
    return Path("data") / "bench" / f"linkage_{people}{suffix}.json"


def methods_for(engine: str) -> dict[str, str]:
    """The methods a run compares: ``duckdb`` the three, ``spark`` the encoded method on Spark
    in place of DuckDB's, ``both`` the three plus the encoded method on Spark."""
    if engine == "duckdb":
        return dict(METHODS)
    if engine == "spark":
        return {k: v for k, v in METHODS.items() if k != "encoded"} | SPARK_METHOD
    if engine == "both":
        return METHODS | SPARK_METHOD
    raise ValueError(f"unknown engine {engine!r}: duckdb, spark or both")


# --------------------------------------------------------------------------------------------
# The benchmark
# --------------------------------------------------------------------------------------------


def run_benchmark(
    people: int,
    seed: int = 20180101,
    isolate: bool = True,
    log: Any = print,
    engine: str = "duckdb",
) -> dict[str, Any]:
    """Generate, stage, link three ways and score; returns the report (see module docstring)."""
    from sim_pipeline.identity.person_index import linkage_rows
    from sim_pipeline.identity.tokens import DEMO_KEY, ClearTokeniser, Tokeniser
    from sim_pipeline.synthetic import generate

    methods = methods_for(engine)
    comparison_people = round(people * COMPARISON_SHARE)
    report: dict[str, Any] = {
        "benchmark": "linkage: NHS-number-only vs cleartext anchor vs encoded",
        "people": people,
        "comparison_people": comparison_people,
        "seed": seed,
        "cpus": os.cpu_count(),
        "python": sys.version.split()[0],
        "isolated_processes": isolate,
        "engine": engine,
    }
    with tempfile.TemporaryDirectory(prefix="bench_linkage_") as tmp_name:
        tmp = Path(tmp_name)
        landing, truth_dir = tmp / "landing", tmp / "truth"
        log(f"generating {people} + {comparison_people} people (seed {seed}) ...")
        t0 = time.perf_counter()
        summary = generate(
            landing, truth_dir, seed=seed, people=people, comparison_people=comparison_people
        )
        report["generate_s"] = round(time.perf_counter() - t0, 2)
        report["landing_files"] = summary.files_written
        report["landing_rows"] = int(sum(summary.rows_by_table.values()))

        staged: dict[str, dict[str, pd.DataFrame]] = {}
        report["staging_s"] = {}
        for name, tokeniser in (
            ("encoded", Tokeniser(DEMO_KEY, demo=True)),
            ("cleartext", ClearTokeniser()),
        ):
            log(f"staging every table ({name}) ...")
            t0 = time.perf_counter()
            file_errors: list[str] = []
            staged[name] = stage_all(landing, tokeniser, file_errors)
            report["staging_s"][name] = round(time.perf_counter() - t0, 2)
            report.setdefault("unreadable_files", file_errors)

        # Provider record keys are keyed tokens in encoded staging and cleartext in the anchor's
        # (`identity.record_keys`); staging keeps file order, so the two align table by table.
        ref_map = clear_refs(staged["encoded"], staged["cleartext"])
        rows_enc, groups = linkage_rows(staged.pop("encoded"))
        rows_clear, groups_clear = linkage_rows(staged.pop("cleartext"))
        enc_keys = rows_enc[RECORD_KEY].merge(ref_map, on=["source", "record_ref"], how="left")
        enc_keys["record_ref"] = enc_keys.pop("clear_ref")
        if not same_rows(enc_keys, rows_clear[RECORD_KEY]):
            raise RuntimeError("encoded and cleartext staging gave different rows")
        if not same_labels(groups, groups_clear):
            raise RuntimeError("encoded and cleartext staging gave different group labels")
        del enc_keys
        clear_keys = rows_clear[RECORD_KEY]
        truth, cohort, conflicts = read_truth(truth_dir)
        report["rows"] = len(rows_enc)
        report["records"] = int(len(clear_keys.drop_duplicates()))
        report["true_people"] = int(
            truth.merge(clear_keys.drop_duplicates(), on=RECORD_KEY)["true_person_id"].nunique()
        )
        report["cohort_people"] = len(cohort)
        report["truth_conflicting_records"] = conflicts
        log(f"{report['records']:,} records in {report['rows']:,} staged rows")

        # Each staging has its own rows and its own provider labels, row for row: the two are
        # the same records, but not in the same order (linkage_rows orders by record key, a
        # token in one and the provider's value in the other), so labels never cross over.
        paths = {"encoded": tmp / "rows_encoded.pkl", "cleartext": tmp / "rows_cleartext.pkl"}
        group_paths = {"encoded": tmp / "groups_encoded.pkl", "cleartext": tmp / "groups_clear.pkl"}
        for path, frame in (
            (paths["encoded"], rows_enc),
            (paths["cleartext"], rows_clear),
            (group_paths["encoded"], groups),
            (group_paths["cleartext"], groups_clear),
        ):
            with open(path, "wb") as f:
                pickle.dump(frame, f, protocol=pickle.HIGHEST_PROTOCOL)
        del rows_enc, rows_clear, groups, groups_clear
        report["parent_peak_rss_mib"] = round(max_rss_mib(), 1)

        report["methods"] = {}
        for method, description in methods.items():
            log(f"linking: {method} ...")
            staging = "cleartext" if method == "cleartext" else "encoded"
            rows_path, groups_path = paths[staging], group_paths[staging]
            out = (
                run_isolated(method, rows_path, groups_path)
                if isolate
                else link_method(method, str(rows_path), str(groups_path))
            )
            records = out.pop("records")
            if method != "cleartext":  # encoded rows: back to the cleartext record key
                records = records.merge(ref_map, on=["source", "record_ref"], how="left")
                records["record_ref"] = records.pop("clear_ref")
            engine = sum(out["timings"].values())
            report["methods"][method] = {
                "description": description,
                "records": len(records),
                "link_s": round(out["link_s"], 3),
                "timings": {k: round(v, 3) for k, v in out["timings"].items()}
                | {"other_s": round(out["link_s"] - engine, 3)},
                "peak_rss_mib": round(out["peak_rss_mib"], 1),
                "peak_growth_mib": round(out["peak_growth_mib"], 1),
                "baseline_rss_mib": round(out["baseline_rss_mib"], 1),
                "memory_source": out["memory_source"],
                **{k: round(out[k], 1) for k in ("jvm_peak_rss_mib",) if k in out},
                "trained": out["trained"],
                "counts": out["counts"],
                "parameters": out["parameters"],  # m, u and weight per comparison level
                **score(records, truth, cohort),
            }
    return report


# --------------------------------------------------------------------------------------------
# Printing
# --------------------------------------------------------------------------------------------


def render(report: dict[str, Any]) -> str:
    """The report as two side-by-side tables (methods as columns)."""
    methods = report["methods"]
    names = list(methods)
    width = max(12, 2 + max(len(n) for n in names))

    def line(label: str, values: list[str]) -> str:
        return f"{label:<30}" + "".join(f"{v:>{width}}" for v in values)

    def row(label: str, get: Any, fmt: str) -> str:
        return line(label, [format(get(methods[m]), fmt) for m in names])

    out = [
        f"linkage benchmark: {report['people']:,} general + {report['comparison_people']:,} "
        f"comparison + {report['cohort_people']} programme people, seed {report['seed']}, "
        f"{report['cpus']} CPUs",
        f"{report['records']:,} records ({report['rows']:,} staged rows, "
        f"{report['landing_rows']:,} landing rows); {report['true_people']:,} true people",
        f"generate {report['generate_s']:.1f} s; staging encoded "
        f"{report['staging_s']['encoded']:.1f} s, cleartext {report['staging_s']['cleartext']:.1f} s"
        f" (not linkage); parent peak RSS {report['parent_peak_rss_mib']:,.0f} MiB",
        "",
        line("", names),
        row("records", lambda m: m["records"], ","),
        row("clusters", lambda m: m["clusters"], ","),
        row("pairwise precision", lambda m: m["pairwise"]["precision"], ".4f"),
        row("pairwise recall", lambda m: m["pairwise"]["recall"], ".4f"),
        row("pairwise F1", lambda m: m["pairwise"]["f1"], ".4f"),
        row("cohort pairwise precision", lambda m: m["cohort"]["precision"], ".4f"),
        row("cohort pairwise recall", lambda m: m["cohort"]["recall"], ".4f"),
        row("cohort people exactly linked", lambda m: m["cohort"]["exact_people_share"], ".3f"),
        row("cluster precision", lambda m: m["cluster"]["precision"], ".4f"),
        row("cluster recall", lambda m: m["cluster"]["recall"], ".4f"),
        row("cluster F1", lambda m: m["cluster"]["f1"], ".4f"),
        row("link time s", lambda m: m["link_s"], ".1f"),
    ]
    for step in ("profiles_s", "train_s", "predict_s", "cluster_s", "index_s", "other_s"):
        out.append(
            row(f"  {step.removesuffix('_s')} s", lambda m, s=step: m["timings"].get(s, 0), ".1f")
        )
    out += [
        row("peak RSS MiB (process)", lambda m: m["peak_rss_mib"], ",.0f"),
        row("  of which Spark's JVM MiB", lambda m: m.get("jvm_peak_rss_mib", 0), ",.0f"),
        row("peak growth MiB (linkage)", lambda m: m["peak_growth_mib"], ",.0f"),
        "",
        f"{'pairwise F1 by source pair':<30}{'true pairs':>{width}}"
        + "".join(f"{n:>{width}}" for n in names),
    ]
    pairs = {
        m: {(r["source_a"], r["source_b"]): r for r in methods[m]["by_source_pair"]} for m in names
    }
    for key, first in pairs[names[0]].items():
        label = f"{key[0]} x {key[1]}"
        out.append(
            f"{label:<30}{first['true_pairs']:>{width},}"
            + "".join(f"{pairs[m][key]['f1']:>{width}.4f}" for m in names)
        )
    return "\n".join(out)


def main(people: int, out: Path | None = None, seed: int = 20180101, engine: str = "duckdb") -> int:
    """Run, write the JSON report and print the tables; the CLI's `bench linkage`."""
    import json

    report = run_benchmark(
        people, seed=seed, log=lambda s: print(s, file=sys.stderr, flush=True), engine=engine
    )
    path = out or default_out(people, engine)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2) + "\n")
    print(render(report))
    print(f"wrote {path}")
    return 0
