"""The pseudonymisation benchmark (`sim-pipeline bench pseudonymise`): identifier records per
second through the privacy boundary (`identity.pseudonymise`) on one core.

The records are synthetic and as hard as they come for the memo: every NHS number distinct, full
postcodes drawn at random in real London districts, names from the generator's lists (a few
thousand distinct, as in life), dates of birth over 80 years, an event date each. The timed step
is `pseudonymise` on all of them with a fresh tokeniser (nothing memoised before), pinned to one
core; the result's digest is printed so a faster implementation can be shown to give the same
tokens, byte for byte.
"""

from __future__ import annotations

import hashlib
import os
import time
from dataclasses import dataclass

import numpy as np
import pandas as pd

from sim_pipeline.identity.pseudonymise import IDENTITY_COLUMNS, pseudonymise
from sim_pipeline.identity.tokens import DEMO_KEY, Tokeniser
from sim_pipeline.sources import BY_ASSET
from sim_pipeline.sources.base import BOROUGHS

# The records are shaped as the ambulance service sends them (its identifier columns).
IDS = BY_ASSET["staged_ambulance_incidents"].identifiers


def nhs_numbers(rng: np.random.Generator, n: int) -> np.ndarray:
    """``n`` distinct valid NHS numbers (check digit by the modulus-11 rule), vectorised."""
    out = np.empty(0, dtype=np.int64)
    while len(out) < n:
        base = rng.choice(900_000_000, size=int((n - len(out)) * 1.15) + 100, replace=False)
        base = base + 100_000_000
        digits = (base[:, None] // 10 ** np.arange(8, -1, -1)) % 10
        check = 11 - (digits * np.arange(10, 1, -1)).sum(axis=1) % 11
        check[check == 11] = 0
        ok = check != 10
        out = np.unique(np.concatenate([out, base[ok] * 10 + check[ok]]))
    return rng.permutation(out)[:n].astype(str).astype(object)


def identifier_records(n: int, seed: int = 20180101) -> pd.DataFrame:
    """``n`` synthetic identifier records (raw, as a provider sends them)."""
    from sim_pipeline.synthetic.names import ORIGINS
    from sim_pipeline.synthetic.noise import random_postcodes

    rng = np.random.default_rng(seed)
    given = np.array(sorted({g for m, f, _ in ORIGINS.values() for g in (*m, *f)}), dtype=object)
    family = np.array(sorted({s for _, _, fam in ORIGINS.values() for s in fam}), dtype=object)
    birth = pd.Timestamp("1930-01-01") + pd.to_timedelta(rng.integers(0, 80 * 365, n), "D")
    event = pd.Timestamp("2018-01-01") + pd.to_timedelta(rng.integers(0, 4 * 365 * 1440, n), "m")
    boroughs = np.array(BOROUGHS, dtype=object)
    return pd.DataFrame(
        {
            IDS.nhs_number: nhs_numbers(rng, n),
            IDS.given_name: given[rng.integers(0, len(given), n)],
            IDS.family_name: family[rng.integers(0, len(family), n)],
            IDS.birth_date: birth.strftime("%Y-%m-%d"),
            IDS.postcode: random_postcodes(rng, boroughs[rng.integers(0, len(boroughs), n)]),
            IDS.sex: np.where(rng.random(n) < 0.5, "M", "F"),
            IDS.event_date: event.strftime("%Y-%m-%d %H:%M"),
        }
    )


def digest(out: pd.DataFrame) -> str:
    """SHA-256 of the pseudonymised columns (every token and encoding, in row order)."""
    h = hashlib.sha256()
    for col in IDENTITY_COLUMNS:
        h.update(col.encode())
        h.update("\x1f".join(out[col].fillna("<NA>").astype(str)).encode())
    return h.hexdigest()


@dataclass(frozen=True)
class Result:
    records: int
    seconds: float
    records_per_second: float
    digest: str
    distinct: dict[str, int]


def run(records: int, seed: int = 20180101, repeats: int = 1) -> list[Result]:
    """Pseudonymise ``records`` records ``repeats`` times, each with a fresh tokeniser, pinned to
    one core where the system allows it."""
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    df = identifier_records(records, seed)
    distinct = {c: int(df[c].nunique()) for c in df.columns}
    out = []
    for _ in range(repeats):
        tokeniser = Tokeniser(DEMO_KEY, demo=True)
        t0 = time.perf_counter()
        result = pseudonymise(df, IDS, tokeniser)
        seconds = time.perf_counter() - t0
        out.append(
            Result(records, round(seconds, 3), round(records / seconds), digest(result), distinct)
        )
    return out
