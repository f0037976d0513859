"""A month of England: one calendar month of provider drops at national volume (numpy only).

``generate_national(out, truth, month=..., scale=1.0, previous_scale=0.0)`` writes the landing
layout for ``month`` (and, with ``previous_scale`` > 0, the month before it at that scale, from
the same people, so frequent users recur and an incremental run has a person index to link
against), the manifest that allows demo mode, and the truth (``records.csv``: every data row
with its true person; ``summary.json``: rows per table, targets and their basis, people per
source and across months).

Volumes (``MONTH_TARGETS``, rows a month at scale 1.0) and their basis:

* ECDS A&E attendances 2,170,000 (26 million a year / 12), Der_Dupe_Flag copies included;
* ambulance incidents 750,000 (9 million a year / 12);
* police s136 returns 2,900 (Home Office: 34,685 detentions in 2022/23, / 12, in
  shared/reference/data-standards.md);
* police mental-health CAD incidents 36,000: an ASSUMPTION (no national figure in
  shared/reference): about 12 mental-health incidents per s136 detention;
* MHSDS: hospital spells starting 8,500 a month and MH Act periods from them and the s136
  detentions (an ASSUMPTION of about 100,000 admissions a year), community care contacts
  200,000 (an ASSUMPTION: the crisis-relevant share, chosen so the month totals about 3.3
  million rows as the issue states; all of MHSDS holds far more contacts), and one MHS001MPI
  row per patient with any of these in the month.

How: a population of ``PEOPLE_PER_SCALE`` x scale people, each with a gamma frailty (shape
0.5, mean 1) shared by every service (so heavy users of A&E are heavy users of the ambulance,
the police and mental-health services); each primary process of the demo's activity model
(``latent.PROCESSES``) gets a Poisson count per person for the month at rate target x frailty,
on uniform days, and the demo's own cascade (``crisis.crisis_events``: s136 -> CAD, return, MH
Act period, ambulance, A&E; see-and-convey -> A&E; 1% A&E provider duplicates) and renderers
(``render_*``) make the rows, so every column follows the contracts. The contracts accept only
the programme area's providers (three trusts, five A&E sites, one police force, one ambulance
service) and its twelve boroughs: the national volume is written into those folders. No
deliberate provider errors are injected (every row passes the contracts), spells that began
before the first month simulated are absent, there is no programme register row, and every
earlier month of the window gets header-only drops (drop coverage expects every month).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from sim_pipeline.landing.manifest import write_manifest
from sim_pipeline.progress import current
from sim_pipeline.sources import SOURCE_TABLES
from sim_pipeline.synthetic import (
    arrival,
    drops,
    render_ambulance,
    render_ecds,
    render_mhsds,
    render_police,
)
from sim_pipeline.synthetic.activity import Events
from sim_pipeline.synthetic.allocation import Programme
from sim_pipeline.synthetic.contacts import GENERAL_DNA, contact_days, contact_frame
from sim_pipeline.synthetic.crisis import crisis_events
from sim_pipeline.synthetic.keyed import Keyed
from sim_pipeline.synthetic.latent import PROCESSES
from sim_pipeline.synthetic.national_people import national_population
from sim_pipeline.synthetic.timeline import DAYS_IN_MONTH, MONTH_LABELS, MONTH_START

PEOPLE_PER_SCALE = 4_000_000  # the pool a national month draws from, at scale 1.0
FRAILTY_SHAPE = 0.5
# Rows a month at scale 1.0 (see the module docstring for the basis of each).
MONTH_TARGETS = {
    "ecds": 2_170_000,
    "ambulance_incidents": 750_000,
    "cad_incidents": 36_000,
    "s136_return": 2_900,
    "MHS201CareContact": 200_000,
    "admissions": 8_500,
}
# Primary candidates a month at scale 1.0 that give MONTH_TARGETS after the cascade: A&E
# self-presentations = attendances / 1.01 (duplicates) less ambulance conveyances (50% of
# incidents, 95% recorded) and s136s taken to A&E; CAD = officers attended + not attended +
# one incident per s136; s136 detentions: 95% have a police return.
CANDIDATES = {
    "ae": 2_170_000 / 1.01 - 0.5 * 0.95 * 750_000 - 1_000,
    "amb": 750_000 - 700,
    "s136": 2_900 / 0.95,
    "police": 26_000,
    "police_na": 7_000,
    "adm": 8_500,
}
SOURCE_OF = {
    "ecds": "A&E",
    "ambulance_incidents": "ambulance",
    "cad_incidents": "police",
    "s136_return": "police",
}


def _candidates(
    rng: np.random.Generator, frailty: np.ndarray, month: int, scale: float
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """(person, day) of every primary event in ``month``: Poisson(target x scale x frailty)."""
    n = len(frailty)
    out = {}
    for proc in PROCESSES:
        lam = CANDIDATES[proc] * scale / n * frailty
        k = rng.poisson(lam)
        person = np.repeat(np.arange(n, dtype=np.int64), k)
        day = MONTH_START[month] + (rng.random(len(person)) * DAYS_IN_MONTH[month]).astype(np.int64)
        out[proc] = (person, day.astype(np.int64))
    return out


def _contacts(
    rng: np.random.Generator,
    kr: Keyed,
    frailty: np.ndarray,
    months: list[tuple[int, float]],
    spells: pd.DataFrame,
) -> pd.DataFrame:
    """Planned community contacts in each (month, scale), people by frailty."""
    n = len(frailty)
    person, day = [], []
    for month, scale in months:
        k = rng.poisson(MONTH_TARGETS["MHS201CareContact"] * scale / n * frailty)
        p = np.repeat(np.arange(n, dtype=np.int64), k)
        u = rng.random((2, len(p)))
        person.append(p)
        day.append(contact_days(np.full(len(p), month), u[0], u[1]))
    p, d = np.concatenate(person), np.concatenate(day).astype(np.int64)
    c = contact_frame(kr, p, d, np.full(len(p), GENERAL_DNA), spells)
    return c.sort_values(["person", "day", "key"], kind="stable").reset_index(drop=True)


def _no_programme() -> Programme:
    e = np.zeros(0, dtype=np.int64)
    o = np.zeros(0, dtype=object)
    return Programme(e, e, e, np.zeros(0, bool), e, e, o, e, np.zeros(0), o)


def generate_national(
    out_dir: Path,
    truth_dir: Path,
    *,
    month: str = "2021-05",
    scale: float = 1.0,
    previous_scale: float = 0.0,
    seed: int = 20210501,
) -> dict:
    """Write the national month (and the month before at ``previous_scale``) and the truth;
    returns the summary written to ``truth_dir/summary.json``."""
    if scale <= 0 or previous_scale < 0:
        raise ValueError("scale must be > 0 and previous_scale >= 0")
    if month not in MONTH_LABELS or (previous_scale and month == MONTH_LABELS[0]):
        raise ValueError(f"month must be in {MONTH_LABELS[1]}..{MONTH_LABELS[-1]}")
    out, tru = Path(out_dir).resolve(), Path(truth_dir).resolve()
    if tru == out or out in tru.parents:
        raise ValueError(f"truth_dir {tru} must not be inside (or equal to) out_dir {out}")
    m = MONTH_LABELS.index(month)
    months = [(m - 1, previous_scale)] if previous_scale else []
    months.append((m, scale))
    ss = np.random.SeedSequence(seed)
    r_people, r_events, r_contacts, r_render = (np.random.default_rng(s) for s in ss.spawn(4))
    kr = Keyed(seed)
    n = max(1, round(PEOPLE_PER_SCALE * max(scale, previous_scale)))
    frailty = r_people.gamma(FRAILTY_SHAPE, 1 / FRAILTY_SHAPE, n)
    pop = national_population(r_people, n, frailty)

    parts = [_candidates(r_events, frailty, mm, sc) for mm, sc in months]
    cand = {p: tuple(np.concatenate([c[p][i] for c in parts]) for i in (0, 1)) for p in PROCESSES}
    empty = {p: (np.zeros(0, np.int64), np.zeros(0, np.int64)) for p in PROCESSES}
    crisis = crisis_events(kr, pop, empty, cand)  # type: ignore[arg-type]
    contacts = _contacts(r_contacts, kr, frailty, months, crisis["spells"])
    events = Events(**crisis, contacts=contacts, calibration=float("nan"))

    held = contacts[contacts["held"]]
    mh_extra = (held["person"].to_numpy(), np.searchsorted(MONTH_START, held["day"], "right") - 1)
    renderers = (
        lambda: render_mhsds.render_mhsds(r_render, kr, pop, events, _no_programme(), mh_extra),
        lambda: render_police.render_police(r_render, kr, pop, events),
        lambda: render_ambulance.render_ambulance(r_render, kr, pop, events),
        lambda: render_ecds.render_ecds(r_render, kr, pop, events),
        lambda: render_mhsds.render_care_contacts(kr, pop, events),
    )
    out.mkdir(parents=True, exist_ok=True)
    tru.mkdir(parents=True, exist_ok=True)
    wanted = tuple(mm for mm, _ in months)
    through = tuple(range(m + 1))  # header-only drops before: coverage expects every month
    by_name = {t.table: t for t in SOURCE_TABLES}
    records: list[pd.DataFrame] = []
    for make in renderers:
        frames = make()
        for name in [t.table for t in SOURCE_TABLES if t.table in frames]:
            frame = frames.pop(name)
            if "_held" in frame:
                frame = frame[frame.pop("_held").to_numpy(dtype=bool)]
            frame = frame[frame["_month"].isin(wanted)]
            _, rec = drops.write_table(out, by_name[name], frame, months=through)
            records += rec
            if (progress := current()) is not None:
                progress.advance(stage=name, rows=len(frame))
    labels = MONTH_LABELS[: m + 1]
    arrival.stamp_arrivals(out, seed, labels)
    arguments = {"national_month": month, "scale": scale, "previous_scale": previous_scale}
    write_manifest(
        out, [p for p, *_ in arrival.drop_paths(out, labels)], {"seed": seed, **arguments}
    )

    rec = pd.concat(records, ignore_index=True)
    rec["true_person_id"] = pop.pid[rec.pop("_person").to_numpy(dtype=np.int64)]
    rec.to_csv(tru / "records.csv", index=False, lineterminator="\n")
    summary = _summary(rec, seed, arguments, n)
    (tru / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def _summary(rec: pd.DataFrame, seed: int, arguments: dict, n: int) -> dict:
    """Rows per month and table, each source's share, people per source and across months."""
    rows = rec.groupby(["month", "table"]).size()
    per_month = {m: {t: int(v) for t, v in rows[m].items()} for m in rows.index.levels[0]}
    source = rec["table"].map(SOURCE_OF).fillna("mental health")
    people = {
        m: {s: int(g["true_person_id"].nunique()) for s, g in sub.groupby(source[sub.index])}
        for m, sub in rec.groupby("month")
    }
    by_month = [set(g) for _, g in rec.groupby("month")["true_person_id"]]
    last = rec["month"] == rec["month"].max()
    share = source[last].value_counts(normalize=True).round(4).to_dict()
    return {
        "generator": "sim_pipeline.synthetic.national",
        "seed": seed,
        **arguments,
        "population": n,
        "month_targets_at_scale_1": MONTH_TARGETS,
        "rows_by_month_and_table": per_month,
        "rows_by_month": {m: int(sum(v.values())) for m, v in per_month.items()},
        "share_of_rows_by_source": share,
        "people_by_month_and_source": people,
        "people_in_both_months": len(set.intersection(*by_month)) if len(by_month) == 2 else 0,
    }
