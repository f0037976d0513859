"""The tokenise benchmark (`sim-pipeline bench tokenise`): records per second through
`sim-pipeline tokenise` (`ingest.tokenised.tokenise_file`) on one core, and its peak memory.

The extract is an ambulance service's month (every column of its contract), as hard as it
comes for the memo: every NHS number distinct, full postcodes at random in real London
districts, names from the generator's lists, dates of birth over 80 years (the identifier
records of `bench.pseudonymise`), unique incident numbers, calls spread over May 2021. The timed
step is the whole command's work: reading the CSV a chunk at a time, validating it against the
contract, tokenising, the identifier checks, writing the drop and its manifest; pinned to one
core. The drop's SHA-256 is printed, so a faster implementation can be shown to write the same
bytes. Peak memory is the process's high-water mark (VmHWM), measured in a fresh process per
size, so that two sizes show whether memory grows with the file.
"""

from __future__ import annotations

import os
import resource
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from sim_pipeline.bench.pseudonymise import identifier_records
from sim_pipeline.sources import BY_ASSET, codes
from sim_pipeline.sources.base import BOROUGHS

TABLE = BY_ASSET["staged_ambulance_incidents"]
MONTH = "2021-05"


def raw_extract(n: int, path: Path, seed: int = 20180101) -> Path:
    """``n`` raw ambulance incidents of `MONTH` as the provider's extract (CSV)."""
    ids = identifier_records(n, seed)
    rng = np.random.default_rng(seed + 1)
    start = pd.Timestamp(f"{MONTH}-01")
    calls = start + pd.to_timedelta(rng.integers(0, 31 * 1440, n), "m")
    outcomes = np.array(sorted(codes.AMBULANCE_OUTCOME), dtype=object)
    outcome = outcomes[rng.integers(0, len(outcomes), n)]
    frame = pd.DataFrame(
        {
            "IncidentId": [f"LAS-2021-{i:07d}" for i in range(1, n + 1)],
            "CallDateTime": calls.strftime("%Y-%m-%d %H:%M:%S"),
            "Category": np.array(sorted(codes.AMBULANCE_CATEGORY), dtype=object)[
                rng.integers(0, len(codes.AMBULANCE_CATEGORY), n)
            ],
            "ResourcesDespatched": np.where(outcome == "hear_and_treat", "0", "1"),
            "Outcome": outcome,
            "Borough": np.array(BOROUGHS, dtype=object)[rng.integers(0, len(BOROUGHS), n)],
            "PatientGivenName": ids["PatientGivenName"],
            "PatientFamilyName": ids["PatientFamilyName"],
            "PatientBirthDate": ids["PatientBirthDate"],
            "PatientAge": "",
            "PatientSex": ids["PatientSex"],
            "NHSNumber": ids["NHSNumber"],
            "IncidentPostcode": ids["IncidentPostcode"],
        }
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    frame[TABLE.columns].to_csv(path, index=False, lineterminator="\n")
    return path


@dataclass(frozen=True)
class Result:
    records: int
    seconds: float
    cpu_seconds: float
    records_per_second: float
    records_per_cpu_second: float
    peak_rss_mib: float
    rows_loaded: int
    rows_quarantined: int
    drop_sha256: str
    drop_bytes: int
    chunk_lines: int


def _peak_rss_mib() -> float:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run(raw: Path, out: Path, chunk_lines: int) -> Result:
    """Tokenise ``raw`` into ``out`` on one core (pinned where the system allows it)."""
    from sim_pipeline.identity.tokens import DEMO_KEY, Tokeniser
    from sim_pipeline.ingest.tokenised import tokenise_file

    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    tokeniser = Tokeniser(DEMO_KEY, demo=True)
    cpu0, t0 = time.process_time(), time.perf_counter()
    r = tokenise_file(raw, out, TABLE, "las", MONTH, tokeniser, chunk_lines=chunk_lines)
    seconds, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    return Result(
        records=r.rows_read,
        seconds=round(seconds, 2),
        cpu_seconds=round(cpu, 2),
        records_per_second=round(r.rows_read / seconds),
        records_per_cpu_second=round(r.rows_read / cpu),
        peak_rss_mib=round(_peak_rss_mib(), 1),
        rows_loaded=r.rows_loaded,
        rows_quarantined=r.rows_quarantined,
        drop_sha256=r.sha256,
        drop_bytes=out.stat().st_size,
        chunk_lines=chunk_lines,
    )
