"""The warehouse load benchmark (`sim-pipeline bench warehouse`): rows per second written by the
warehouse's bulk load (`Warehouse.transaction().replace_all`) into SQLite and, given a URL,
PostgreSQL (COPY), on staged-like rows: the pseudonymised identifier records of the
pseudonymisation benchmark (tokens, 256-character encodings, dates, text)."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import pandas as pd

from sim_pipeline.bench.pseudonymise import IDS, identifier_records
from sim_pipeline.identity.pseudonymise import pseudonymise
from sim_pipeline.identity.tokens import DEMO_KEY, Tokeniser
from sim_pipeline.warehouse.store import Warehouse, redact_url

TABLE = "bench_rows"


def staged_like(rows: int, seed: int = 20180101) -> pd.DataFrame:
    """``rows`` pseudonymised identifier records with a month and a source, as staged."""
    df = pseudonymise(identifier_records(rows, seed), IDS, Tokeniser(DEMO_KEY, demo=True))
    df.insert(0, "source", "bench")
    df.insert(1, "month", pd.to_datetime(df[IDS.event_date]).dt.strftime("%Y-%m"))
    return df


def load(url: str, frame: pd.DataFrame, repeats: int = 3) -> dict[str, object]:
    """Best of ``repeats`` whole-table replaces of ``frame`` at ``url``: seconds and rows/s."""
    wh = Warehouse(url)
    times = []
    try:
        for _ in range(repeats):
            t0 = time.perf_counter()
            with wh.transaction() as tx:
                tx.replace_all(TABLE, frame)
            times.append(time.perf_counter() - t0)
        if wh.count(TABLE) != len(frame):
            raise RuntimeError(f"{TABLE}: {wh.count(TABLE)} rows stored, {len(frame)} loaded")
        with wh.transaction() as tx:
            tx.conn.exec_driver_sql(f'DROP TABLE "{TABLE}"')
    finally:
        wh.dispose()
    best = min(times)
    return {
        "warehouse": redact_url(url),
        "rows": len(frame),
        "columns": len(frame.columns),
        "seconds": [round(t, 3) for t in times],
        "best_seconds": round(best, 3),
        "rows_per_second": round(len(frame) / best),
    }


def run(rows: int, postgres_url: str | None, repeats: int = 3) -> list[dict[str, object]]:
    frame = staged_like(rows)
    with tempfile.TemporaryDirectory() as tmp:
        results = [load(f"sqlite:///{Path(tmp) / 'bench.db'}", frame, repeats)]
    if postgres_url:
        results.append(load(postgres_url, frame, repeats))
    return results
