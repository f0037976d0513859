"""A national-size synthetic population, built with numpy only (no per-person Python loop).

`national_population` returns the same `Population` the renderers read for the demo, for
millions of people: names by origin (Zipf within each pool), birth dates, valid-checksum NHS
numbers outside the ranges issued in England and Wales, one home postcode each (a real outward
district of the person's borough, a random inward code; 0.3% of no fixed abode), the trust's
local id and its nearly clean copy of the identifiers (1% slips), 0.5% twins and 0.5%
name-and-birth-date look-alikes. The contracts only accept the twelve boroughs, three trusts and
five A&E providers of the programme's area, so a national population lives in those folders and
boroughs (see `national`). Nobody moves, marries or dies within the two months simulated.
"""

from __future__ import annotations

import numpy as np

from sim_pipeline.sources.base import BOROUGHS
from sim_pipeline.synthetic import noise
from sim_pipeline.synthetic.names import (
    BOROUGH_AE,
    BOROUGH_DISTRICTS,
    BOROUGH_TRUST,
    ETHNIC_MIX,
    INWARD_LETTERS,
    NO_FIXED_ABODE_POSTCODE,
    ORIGINS,
)
from sim_pipeline.synthetic.people import COMPARISON, GENERAL, TRUST_ID_PREFIX, Population
from sim_pipeline.synthetic.timeline import NEVER

# NHS numbers: 10 digits, modulus-11 check digit. Prefixes 990-999 lie outside the ranges
# issued in England and Wales (400-499, 600-799); 999 is reported as never issued.
NHS_PREFIXES = np.arange(990, 1000)
NFA_SHARE = 0.003
TWIN_SHARE = 0.005
LOOKALIKE_SHARE = 0.005
MH_SLIP = 0.01
HIU_SHARE = 0.01  # the most frequent users, coded like the demo's high-intensity users


def _cat(*parts: np.ndarray | str) -> np.ndarray:
    """Element-wise string concatenation (numpy's C loops), as an object array."""
    out = np.asarray(parts[0]).astype(str)
    for p in parts[1:]:
        out = np.char.add(out, np.asarray(p).astype(str))
    return out.astype(object)


def _zfill(values: np.ndarray, width: int) -> np.ndarray:
    return np.char.zfill(np.asarray(values, dtype=np.int64).astype(str), width)


def nhs_numbers(rng: np.random.Generator, n: int) -> np.ndarray:
    """``n`` distinct valid NHS numbers with prefixes 990-999 (about 9 million available)."""
    total = len(NHS_PREFIXES) * 1_000_000
    cand = rng.choice(total, size=min(total, int(n * 1.15) + 64), replace=False)
    nine = NHS_PREFIXES[cand // 1_000_000] * 1_000_000 + cand % 1_000_000
    digits = (nine[:, None] // 10 ** np.arange(8, -1, -1)) % 10
    check = 11 - (digits * np.arange(10, 1, -1)).sum(axis=1) % 11
    check = np.where(check == 11, 0, check)
    ok = check != 10
    if ok.sum() < n:  # pragma: no cover - 1.15x head-room over 10/11 valid (up to ~8.6M)
        raise RuntimeError("not enough synthetic NHS numbers")
    nine, check = nine[ok][:n], check[ok][:n]
    return _cat(_zfill(nine, 9), check)


def _postcodes(rng: np.random.Generator, borough_idx: np.ndarray) -> np.ndarray:
    """A full postcode in a real outward district of each person's borough."""
    n = len(borough_idx)
    counts = np.array([len(BOROUGH_DISTRICTS[b]) for b in BOROUGHS])
    offset = np.concatenate([[0], np.cumsum(counts)[:-1]])
    districts = np.asarray([d for b in BOROUGHS for d in BOROUGH_DISTRICTS[b]], dtype=object)
    d = districts[offset[borough_idx] + (rng.random(n) * counts[borough_idx]).astype(np.int64)]
    letters = np.asarray(list(INWARD_LETTERS), dtype=object)
    inward = _cat(
        rng.integers(0, 10, n),
        letters[rng.integers(0, len(letters), n)],
        letters[rng.integers(0, len(letters), n)],
    )
    return _cat(d, " ", inward)


def _names(
    rng: np.random.Generator, sex: np.ndarray, n: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(ethnic category, origin, given name, family name), vectorised per origin."""
    codes = np.array([c for c, _, _ in ETHNIC_MIX], dtype=object)
    share = np.array([s for _, s, _ in ETHNIC_MIX])
    eth_idx = np.minimum(
        np.searchsorted(np.cumsum(share), rng.random(n), side="right"), len(codes) - 1
    )
    eth = codes[eth_idx]
    origin = np.empty(n, dtype=object)
    pick = rng.random(n)
    for k, (_, _, origins) in enumerate(ETHNIC_MIX):
        sel = eth_idx == k
        origin[sel] = np.asarray(origins, dtype=object)[(pick[sel] * len(origins)).astype(int)]
    given = np.empty(n, dtype=object)
    family = np.empty(n, dtype=object)
    for o, (male, female, surnames) in sorted(ORIGINS.items()):
        is_o = origin == o
        for s, pool in (("M", male), ("F", female)):
            sel = np.nonzero(is_o & (sex == s))[0]
            if len(sel):
                given[sel] = noise.zipf_choice(rng, pool, len(sel), s=0.8)
        sel = np.nonzero(is_o)[0]
        if len(sel):
            family[sel] = noise.zipf_choice(rng, surnames, len(sel), s=0.9)
    return eth, origin, given, family


def _birth_days(rng: np.random.Generator, n: int) -> np.ndarray:
    """Ages 0-99 weighted like England's users of urgent care (young adults and the old)."""
    ages = np.arange(0, 100)
    w = np.where(ages < 16, 0.8, 1.0) * np.where(ages >= 75, 1.4, 1.0)
    w = np.where(ages >= 90, 0.6, w)
    age = rng.choice(ages, size=n, p=w / w.sum()) + rng.random(n)
    return -np.round(age * 365.2425).astype(np.int64)


def national_population(rng: np.random.Generator, n: int, frailty: np.ndarray) -> Population:
    """``n`` people; the top ``HIU_SHARE`` by ``frailty`` are labelled high-intensity users."""
    sex = np.where(rng.random(n) < 0.49, "M", "F").astype(object)
    eth, origin, given, family = _names(rng, sex, n)
    dob = _birth_days(rng, n)
    b_idx = rng.integers(0, len(BOROUGHS), n)
    boroughs = np.asarray(BOROUGHS, dtype=object)
    borough = boroughs[b_idx]
    trust = np.asarray([BOROUGH_TRUST[b] for b in BOROUGHS], dtype=object)[b_idx]
    ae = np.empty(n, dtype=object)
    u = rng.random(n)
    for k, b in enumerate(BOROUGHS):
        sel = b_idx == k
        opts = BOROUGH_AE[b]
        cdf = np.cumsum([w for _, w in opts])
        idx = np.minimum(np.searchsorted(cdf, u[sel], side="right"), len(opts) - 1)
        ae[sel] = np.asarray([f for f, _ in opts], dtype=object)[idx]
    pc = _postcodes(rng, b_idx)
    pc[rng.random(n) < NFA_SHARE] = ""
    # twins (same birth date, family name, home; another given name) and look-alikes (same
    # name, sex and birth date as someone else)
    twin_of = np.full(n, "", dtype=object)
    pid = _cat("N", _zfill(rng.permutation(n) + 1, 8))
    m = int(TWIN_SHARE * n / 2)
    pairs = rng.choice(n, size=2 * m, replace=False).reshape(2, m) if m else np.zeros((2, 0), int)
    t, a = pairs
    dob[t], family[t], pc[t] = dob[a], family[a], pc[a]
    for arr in (borough, trust, ae, eth, origin):
        arr[t] = arr[a]
    given[t] = np.where(given[t] == given[a], given[rng.integers(0, n, m)], given[t])
    twin_of[t], twin_of[a] = pid[a], pid[t]
    free = np.setdiff1d(np.arange(n), pairs.ravel())
    k = min(int(LOOKALIKE_SHARE * n), len(free) // 2)
    look = rng.choice(free, size=2 * k, replace=False).reshape(2, k)
    for arr in (sex, given, family, dob):
        arr[look[0]] = arr[look[1]]
    nhs = nhs_numbers(rng, n)
    lpid = np.empty(n, dtype=object)
    for tr, prefix in TRUST_ID_PREFIX.items():
        sel = np.nonzero(trust == tr)[0]
        nums = rng.permutation(len(sel)) + 1_000_000
        lpid[sel] = _cat(f"{prefix}-P", _zfill(nums, 8))
    known = rng.random(n) < 0.97
    status = np.where(
        known,
        rng.choice(["01", "02"], size=n, p=[0.95, 0.05]),
        rng.choice(["03", "04", "05", "07"], size=n, p=[0.3, 0.3, 0.1, 0.3]),
    ).astype(object)
    slip = rng.random((3, n)) < MH_SLIP
    mh_given, mh_family = given.copy(), family.copy()
    mh_given[slip[0]] = noise.typo(rng, given[slip[0]])
    mh_family[slip[1]] = noise.typo(rng, family[slip[1]])
    mh_dob = noise.dob_strings(rng, dob)
    mh_dob[slip[2]] = noise.dob_strings(rng, dob[slip[2]], p_swap=0.5, p_digit=0.5)
    mh_ethnic = eth.copy()
    mh_ethnic[rng.random(n) < 0.04] = ""
    group = np.full(n, GENERAL, dtype=object)
    if n:
        group[frailty >= np.quantile(frailty, 1 - HIU_SHARE)] = COMPARISON
    never = np.full(n, NEVER, dtype=np.int64)
    return Population(
        pid=pid, group=group, sex=sex, dob=dob, given=given, family=family,
        new_family=np.full(n, "", dtype=object), marriage_day=never, ethnic=eth, origin=origin,
        borough=borough, trust=trust, ae=ae, nhs=nhs, death=never.copy(), twin_of=twin_of,
        addr_person=np.arange(n, dtype=np.int64), addr_from=np.zeros(n, dtype=np.int64),
        addr_pc=pc, lpid=lpid, mh_nhs=np.where(known, nhs, "").astype(object),
        mh_nhs_status=status, mh_given=mh_given, mh_family=mh_family, mh_dob=mh_dob,
        mh_ethnic=mh_ethnic, mh_marriage_day=never.copy(),
    )  # fmt: skip


__all__ = ["NO_FIXED_ABODE_POSTCODE", "national_population", "nhs_numbers"]
