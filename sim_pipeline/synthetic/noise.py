"""Identifier noise as providers really produce it: typos, nicknames, DOB slips, postcodes.

Every function takes a numpy ``Generator`` and arrays, and draws a fixed number of random values
per call so the output is reproducible for a given seed.
"""

from __future__ import annotations

import numpy as np

from sim_pipeline.identity.nhs_number import check_digit
from sim_pipeline.synthetic.names import BOROUGH_DISTRICTS, INWARD_LETTERS, NICKNAMES
from sim_pipeline.synthetic.timeline import fmt_dates

_LETTERS = "abcdefghijklmnopqrstuvwxyz"


def zipf_choice(rng: np.random.Generator, pool: tuple[str, ...], n: int, s: float = 0.9):
    """Draw ``n`` values from ``pool``, earlier entries more often (weight 1/rank**s)."""
    w = 1.0 / np.arange(1, len(pool) + 1) ** s
    idx = rng.choice(len(pool), size=n, p=w / w.sum())
    return np.asarray(pool, dtype=object)[idx]


def random_postcodes(rng: np.random.Generator, boroughs: np.ndarray) -> np.ndarray:
    """A synthetic full postcode in a real outward district of each borough."""
    boroughs = np.asarray(boroughs, dtype=object)
    n = len(boroughs)
    pick = rng.random(n)
    digit = rng.integers(0, 10, n)
    l1 = rng.integers(0, len(INWARD_LETTERS), n)
    l2 = rng.integers(0, len(INWARD_LETTERS), n)
    out = np.empty(n, dtype=object)
    for i in range(n):
        districts = BOROUGH_DISTRICTS[boroughs[i]]
        d = districts[int(pick[i] * len(districts))]
        out[i] = f"{d} {digit[i]}{INWARD_LETTERS[l1[i]]}{INWARD_LETTERS[l2[i]]}"
    return out


def synthetic_nhs_numbers(rng: np.random.Generator, n: int) -> np.ndarray:
    """``n`` distinct valid NHS numbers in the never-issued 999 000 0000 - 999 999 9999 range."""
    cand = rng.choice(1_000_000, size=int(n * 1.2) + 50, replace=False)
    out: list[str] = []
    for c in cand:
        nine = f"999{int(c):06d}"
        check = check_digit(nine)
        if check is not None:
            out.append(nine + str(check))
            if len(out) == n:
                break
    if len(out) < n:  # pragma: no cover - 1.2x head-room is ample (10/11 are valid)
        raise RuntimeError("not enough synthetic NHS numbers")
    return np.asarray(out, dtype=object)


def typo(rng: np.random.Generator, values: np.ndarray) -> np.ndarray:
    """One keyboard slip per value: substitution, adjacent transposition or deletion."""
    values = np.asarray(values, dtype=object)
    n = len(values)
    kind = rng.integers(0, 3, n)
    pos = rng.random(n)
    letter = rng.integers(0, 26, n)
    out = values.copy()
    for i in range(n):
        s = values[i]
        if not s or len(s) < 3:
            continue
        k = kind[i]
        if k == 1:  # transpose two adjacent letters (not the first)
            p = 1 + int(pos[i] * (len(s) - 2))
            if s[p] != s[p + 1]:
                out[i] = s[:p] + s[p + 1] + s[p] + s[p + 2 :]
                continue
            k = 0
        if k == 2:  # drop a letter (not the first)
            p = 1 + int(pos[i] * (len(s) - 1))
            out[i] = s[:p] + s[p + 1 :]
            continue
        p = 1 + int(pos[i] * (len(s) - 1))  # substitute a letter (not the first)
        c = _LETTERS[letter[i]]
        if c == s[p].lower():
            c = _LETTERS[(letter[i] + 1) % 26]
        out[i] = s[:p] + (c.upper() if s[p].isupper() else c) + s[p + 1 :]
    return out


def nickname(rng: np.random.Generator, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A nickname / alternative spelling where one is known; returns (values, changed)."""
    values = np.asarray(values, dtype=object)
    pick = rng.random(len(values))
    out = values.copy()
    changed = np.zeros(len(values), dtype=bool)
    for i, v in enumerate(values):
        alts = NICKNAMES.get(v)
        if alts:
            out[i] = alts[int(pick[i] * len(alts))]
            changed[i] = True
    return out, changed


def _valid(date: str) -> bool:
    try:
        np.datetime64(date, "D")
    except ValueError:
        return False
    return len(date) == 10


def dob_strings(
    rng: np.random.Generator,
    dob: np.ndarray,
    *,
    p_missing: float = 0.0,
    p_swap: float = 0.0,
    p_digit: float = 0.0,
) -> np.ndarray:
    """Birth dates as text with the usual slips: blank, day/month swapped, one digit wrong.

    A swap is applied only where day <= 12 (otherwise it would not be a date); a wrong digit is
    always a real calendar date, so these slips pass the contract and must be caught by linkage.
    """
    dob = np.asarray(dob, dtype=np.int64)
    n = len(dob)
    u = rng.random(n)
    pos = rng.integers(0, 4, n)
    digit = rng.integers(1, 10, n)
    out = fmt_dates(dob)
    missing = u < p_missing
    swap = (u >= p_missing) & (u < p_missing + p_swap)
    wrong = (u >= p_missing + p_swap) & (u < p_missing + p_swap + p_digit)
    for i in np.nonzero(swap)[0]:
        s = out[i]
        if int(s[8:10]) <= 12 and s[8:10] != s[5:7]:
            out[i] = f"{s[:4]}-{s[8:10]}-{s[5:7]}"
    places = (3, 6, 8, 9)  # year units, month units, day tens, day units
    for i in np.nonzero(wrong)[0]:
        s = out[i]
        for attempt in range(8):
            p = places[(pos[i] + attempt) % 4]
            cand = s[:p] + str((int(s[p]) + digit[i]) % 10) + s[p + 1 :]
            if _valid(cand) and cand[5:7] != "00" and cand[8:10] != "00":
                out[i] = cand
                break
    out[missing] = ""
    return out


def corrupt_nhs_check_digit(rng: np.random.Generator, values: np.ndarray) -> np.ndarray:
    """Change the last digit so the modulus-11 check fails (a provider keying error)."""
    shift = rng.integers(1, 10, len(values))
    return np.asarray(
        [v[:9] + str((int(v[9]) + s) % 10) for v, s in zip(values, shift, strict=True)],
        dtype=object,
    )


IMPOSSIBLE_DAYS = ("02-30", "02-31", "04-31", "06-31", "09-31", "11-31")


def impossible_dates(rng: np.random.Generator, values: np.ndarray) -> np.ndarray:
    """Keep the year, make the month-day impossible (e.g. 2019-02-30); keeps any time part."""
    pick = rng.integers(0, len(IMPOSSIBLE_DAYS), len(values))
    return np.asarray(
        [v[:5] + IMPOSSIBLE_DAYS[k] + v[10:] for v, k in zip(values, pick, strict=True)],
        dtype=object,
    )


def malformed_postcodes(rng: np.random.Generator, values: np.ndarray) -> np.ndarray:
    """Postcodes that break the UK pattern: letter for the inward digit, truncated, run-on."""
    kind = rng.integers(0, 3, len(values))
    out = []
    for v, k in zip(values, kind, strict=True):
        outward, inward = v.split(" ")
        if k == 0:
            out.append(f"{outward} {'IO'[int(inward[0]) % 2]}{inward[1:]}")
        elif k == 1:
            out.append(f"{outward} {inward[:2]}")
        else:
            out.append(f"{outward}{inward}X")
    return np.asarray(out, dtype=object)
