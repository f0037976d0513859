"""Collect the landing files' direct identifiers and scan persisted files for any of them."""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from sim_pipeline.sources import SOURCE_TABLES

NHS_RE = re.compile(r"(?<!\d)\d{10}(?!\d)")
DATE_RE = re.compile(r"\d{4}-\d{2}-\d{2}")
POSTCODE_RE = re.compile(r"\b[A-Z]{1,2}[0-9][A-Z0-9]? ?[0-9][A-Z]{2}\b")
WORD_RE = re.compile(r"[A-Za-z][A-Za-z'\-]+")


def landing_identifiers(landing: Path, own_vocabulary: set[str]) -> dict[str, set[str]]:
    """{kind: values} for every NHS number, name, date of birth and full postcode in landing.

    Names that are also words the project itself writes (descriptions, column names) are left
    out, as are dates of birth inside the data period (they collide with event dates).
    """
    found: dict[str, set[str]] = {"nhs": set(), "name": set(), "dob": set(), "postcode": set()}
    for table in SOURCE_TABLES:
        ids = table.identifiers
        for path in sorted(landing.glob(f"*/*/{table.file_name()}")):
            df = pd.read_csv(path, dtype=str, keep_default_na=False)
            if ids.nhs_number:
                found["nhs"] |= {v.replace(" ", "") for v in df[ids.nhs_number] if v}
            for col in (ids.given_name, ids.family_name):
                if col:
                    for v in df[col]:
                        for w in WORD_RE.findall(v):
                            if len(w) >= 3 and w.lower() not in own_vocabulary:
                                found["name"] |= {w, w.upper()}
            if ids.birth_date:
                found["dob"] |= {v for v in df[ids.birth_date] if v and v < "2015-01-01"}
            if ids.postcode:
                for v in df[ids.postcode]:
                    if v:
                        pc = v.upper().replace(" ", "")
                        found["postcode"] |= {pc[:-3] + " " + pc[-3:], pc}
    return found


def scan(paths: Iterable[Path], identifiers: dict[str, set[str]]) -> dict[str, list[str]]:
    """{file: [kind, ...]} for persisted files holding any identifier (never the values)."""
    hits: dict[str, list[str]] = {}
    for path in paths:
        text = path.read_bytes().decode("latin-1")
        kinds = []
        if set(NHS_RE.findall(text)) & identifiers["nhs"]:
            kinds.append("nhs")
        if set(DATE_RE.findall(text)) & identifiers["dob"]:
            kinds.append("dob")
        if set(POSTCODE_RE.findall(text.upper())) & identifiers["postcode"]:
            kinds.append("postcode")
        if set(WORD_RE.findall(text)) & identifiers["name"]:
            kinds.append("name")
        if kinds:
            hits[str(path)] = kinds
    return hits


def files_under(*roots: Path) -> list[Path]:
    out: list[Path] = []
    for root in roots:
        if root.is_file():
            out.append(root)
        elif root.exists():
            out += [p for p in sorted(root.rglob("*")) if p.is_file()]
    return out
