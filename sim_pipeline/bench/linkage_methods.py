"""One linkage method of the benchmark (``nhs_only``, ``cleartext``, ``encoded``,
``encoded_spark``) run on its input in its own spawned process, with that process's wall time
and memory (for Spark, plus its JVM's: a child process of its own)."""

from __future__ import annotations

import multiprocessing
import pickle
import resource
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from sim_pipeline.bench.linkage_truth import RECORD_KEY


def max_rss_mib() -> float:
    """This process's peak RSS (getrusage; on Linux it includes a parent's mark before exec)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _status_mib(pid: int | str = "self") -> dict[str, float]:
    """VmRSS and VmHWM (peak) of a process (default this one) from /proc (Linux); empty
    elsewhere."""
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    except OSError:
        return {}
    return {
        k: int(v.split()[0]) / 1024
        for k, v in (ln.split(":", 1) for ln in lines if ln.startswith(("VmRSS:", "VmHWM:")))
    }


def _reset_peak() -> bool:
    """Reset this process's VmHWM to its current RSS (Linux >= 4.0); False if not possible."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return "VmHWM" in _status_mib()


def nhs_only_clusters(rows: pd.DataFrame, groups: pd.DataFrame) -> np.ndarray:
    """Connected components over equal NHS-number tokens and equal group labels (per row)."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    n = len(rows)
    labels = groups.reset_index(drop=True).copy()
    labels["__nhs"] = rows["nhs_number_token"].reset_index(drop=True)
    a_parts, b_parts = [], []
    for c in labels.columns:
        col = labels[c].dropna()
        if col.empty:
            continue
        codes, _ = pd.factorize(col)
        pos = col.index.to_numpy()
        first = pd.Series(pos).groupby(codes).transform("first").to_numpy()
        a_parts.append(first)
        b_parts.append(pos)
    a = np.concatenate(a_parts) if a_parts else np.empty(0, dtype=np.int64)
    b = np.concatenate(b_parts) if b_parts else np.empty(0, dtype=np.int64)
    graph = coo_matrix((np.ones(len(a), dtype=np.int8), (a, b)), shape=(n, n))
    _, comp = connected_components(graph, directed=False)
    return comp.astype(np.int64)


# --------------------------------------------------------------------------------------------
# One method, in its own process
# --------------------------------------------------------------------------------------------


def link_method(method: str, rows_path: str, groups_path: str) -> dict[str, Any]:
    """Load the inputs, link with ``method``; return one cluster per record plus the figures.

    Runs in a fresh (spawned) process, so the memory figures belong to this method alone. The
    peak is read from /proc (VmHWM, reset after the input is loaded), not from getrusage: on
    Linux ``ru_maxrss`` survives fork and exec, so a spawned child would report the parent's
    peak. Imports happen before the baseline: they are a fixed cost, not linkage.
    """
    import duckdb  # noqa: F401
    import scipy.sparse.csgraph  # noqa: F401
    import splink  # noqa: F401

    from sim_pipeline.identity.linkage import LinkageOptions, LinkResult, link_encoded
    from sim_pipeline.identity.person_index import index_records

    with open(rows_path, "rb") as f:
        rows: pd.DataFrame = pickle.load(f)
    with open(groups_path, "rb") as f:
        groups: pd.DataFrame = pickle.load(f)
    procfs = _reset_peak()
    base = _status_mib()["VmRSS"] if procfs else max_rss_mib()
    t0 = time.perf_counter()
    if method == "nhs_only":
        comp = nhs_only_clusters(rows, groups)
        clusters = pd.DataFrame({"cluster": comp, "match_probability": 1.0}, index=rows.index)
        result = LinkResult(clusters, pd.DataFrame(), pd.DataFrame())
        result.timings = {"cluster_s": time.perf_counter() - t0}
        result.counts = {"rows": len(rows), "clusters": int(comp.max() + 1) if len(comp) else 0}
    elif method == "cleartext":
        result = link_encoded(rows, groups, LinkageOptions(name_similarity="jaro_winkler"))
    elif method == "encoded":
        result = link_encoded(rows, groups, LinkageOptions())
    elif method == "encoded_spark":
        result, jvm = _link_on_spark(rows, groups, LinkageOptions, link_encoded)
    else:
        raise ValueError(f"unknown linkage method {method!r}")
    t1 = time.perf_counter()
    records = index_records(rows, result)[[*RECORD_KEY, "cluster"]]
    timings = {k: float(v) for k, v in result.timings.items()}
    timings["index_s"] = time.perf_counter() - t1
    seconds = time.perf_counter() - t0
    peak = _status_mib()["VmHWM"] if procfs else max_rss_mib()
    extra = {}
    if method == "encoded_spark":  # the JVM is a process of its own: its peak counts too
        timings["spark_start_s"] = jvm["start_s"]
        extra = {"jvm_peak_rss_mib": jvm["peak_mib"]}
        peak += jvm["peak_mib"]
    return {
        **extra,
        "records": records,
        "link_s": seconds,
        "timings": timings,
        "counts": {k: int(v) for k, v in result.counts.items()},
        "trained": bool(result.trained),
        "parameters": result.parameters.to_dict(orient="records"),
        "memory_source": "procfs VmHWM" if procfs else "getrusage ru_maxrss",
        "baseline_rss_mib": base,
        "peak_rss_mib": peak,
        "peak_growth_mib": peak - base,
    }


def _link_on_spark(
    rows: pd.DataFrame, groups: pd.DataFrame, options: Any, link: Any
) -> tuple[Any, dict[str, float]]:
    """Link on a Spark session started here (SIM_SPARK_URL, else local on every core, driver
    memory SIM_SPARK_DRIVER_MEMORY or 8g); the session's start is timed apart and its JVM's
    peak RSS read before the session stops (0 when the JVM is elsewhere: Spark Connect)."""
    import os

    from sim_pipeline.identity.engines import spark_builder

    url = os.environ.get("SIM_SPARK_URL") or None
    t0 = time.perf_counter()
    builder = spark_builder(url)
    if not (url or "").startswith("sc://"):
        memory = os.environ.get("SIM_SPARK_DRIVER_MEMORY", "8g")
        builder = builder.config("spark.driver.memory", memory)
    session = builder.getOrCreate()
    start_s = time.perf_counter() - t0
    try:
        result = link(rows, groups, options(engine="spark"))
        proc = getattr(getattr(session.sparkContext, "_gateway", None), "proc", None)
        peak = _status_mib(proc.pid).get("VmHWM", 0.0) if proc is not None else 0.0
    finally:
        session.stop()
    return result, {"start_s": start_s, "peak_mib": peak}


def run_isolated(method: str, rows_path: Path, groups_path: Path) -> dict[str, Any]:
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=ctx) as pool:
        return pool.submit(link_method, method, str(rows_path), str(groups_path)).result()
