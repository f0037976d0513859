"""``generate``: build the population, simulate, render, corrupt a little, write files + truth."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from sim_pipeline.identity.tokens import Tokeniser
from sim_pipeline.landing.manifest import write_manifest
from sim_pipeline.progress import current
from sim_pipeline.sources import SOURCE_TABLES, codes
from sim_pipeline.synthetic import (
    activity,
    allocation,
    arrival,
    contacts,
    crisis,
    drops,
    episodes,
    errors,
    keyed,
    latent,
    render_ambulance,
    render_ecds,
    render_mhsds,
    render_police,
    truth,
)
from sim_pipeline.synthetic.names import PROGRAMME_BOROUGH_COUNTS
from sim_pipeline.synthetic.people import build_population
from sim_pipeline.synthetic.timeline import MONTH_LABELS, N_DAYS, fmt_dates, month_of

STREAMS = (
    "people",
    "latent",
    "allocation",
    "hiu_events",
    "general_events",
    "render_mhsds",
    "render_police",
    "render_ambulance",
    "render_ecds",
    "errors",
    # appended streams (SeedSequence children are positional: the ones above never change)
    "community",
    "errors_community",
)


@dataclass(frozen=True)
class SynthSummary:
    """What one ``generate`` call produced."""

    seed: int
    people: int
    comparison_people: int
    true_effect: float
    n_allocated: int
    n_engaged: int
    files_written: int
    rows_by_table: dict[str, int] = field(default_factory=dict)
    errors_by_kind: dict[str, int] = field(default_factory=dict)
    calibration: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict:
        return asdict(self)


def _check_dirs(out_dir: Path, truth_dir: Path) -> tuple[Path, Path]:
    out = Path(out_dir).resolve()
    tru = Path(truth_dir).resolve()
    if tru == out or out in tru.parents:
        raise ValueError(f"truth_dir {tru} must not be inside (or equal to) out_dir {out}")
    return out, tru


def generate(
    out_dir: Path,
    truth_dir: Path,
    *,
    seed: int = 20180101,
    people: int = 10_000,
    true_effect: float = 1.0,
    comparison_people: int = 600,
    tokenised: tuple[str, ...] = (),
    tokeniser: Tokeniser | None = None,
) -> SynthSummary:
    """Write synthetic provider drops under ``out_dir`` and the ground truth under ``truth_dir``.

    ``people`` is the general population; the 108 programme members and ``comparison_people``
    other high-intensity users come on top. The same arguments give byte-identical files.
    The drops of the providers in ``tokenised`` are written as those providers would send them
    tokenised (`ingest.tokenised`, under ``tokeniser``: default the public demo key).
    """
    out, tru = _check_dirs(out_dir, truth_dir)
    w = _world(seed, people, comparison_people, true_effect)
    rngs, kr, pop, prog, events = w.rngs, w.kr, w.pop, w.prog, w.events

    out.mkdir(parents=True, exist_ok=True)
    tru.mkdir(parents=True, exist_ok=True)
    files = 0
    rows_by_table: dict[str, int] = {}
    errors_by_kind: dict[str, int] = {}
    records: list[pd.DataFrame] = []
    links_by_det: dict[str, pd.DataFrame] = {}
    # (renderer, error stream); care contacts come last with their own error stream, so the
    # tables before them are exactly what they were before contacts existed
    renderers = (
        (lambda: render_mhsds.render_mhsds(rngs["render_mhsds"], kr, pop, events, prog), "errors"),
        (lambda: render_police.render_police(rngs["render_police"], kr, pop, events), "errors"),
        (
            lambda: render_ambulance.render_ambulance(rngs["render_ambulance"], kr, pop, events),
            "errors",
        ),
        (lambda: render_ecds.render_ecds(rngs["render_ecds"], kr, pop, events), "errors"),
        (lambda: render_mhsds.render_care_contacts(kr, pop, events), "errors_community"),
    )
    by_name = {t.table: t for t in SOURCE_TABLES}
    for make, error_stream in renderers:  # one source at a time keeps memory down
        frames = make()
        for name in [t.table for t in SOURCE_TABLES if t.table in frames]:
            table = by_name[name]
            frame = frames.pop(name)
            held = frame.pop("_held").to_numpy(dtype=bool) if "_held" in frame else None
            df, made = errors.inject_errors(rngs[error_stream], table, frame, keep=held)
            for k, v in made.items():
                errors_by_kind[k] = errors_by_kind.get(k, 0) + v
            n_files, rec = drops.write_table(out, table, df)
            files += n_files
            rows_by_table[name] = len(df)
            if (progress := current()) is not None:
                progress.advance(stage=name, rows=len(df))
            records += rec
        links_by_det.update(frames)  # the remaining '_...' frames link detentions to record ids
    rows_by_table = {t.table: rows_by_table[t.table] for t in SOURCE_TABLES}
    if tokenised:  # as the chosen providers would send them: tokenised, with manifests
        from sim_pipeline.identity.tokens import DEMO_KEY  # synthetic data
        from sim_pipeline.ingest.tokenised import tokenise_landing

        tok = tokeniser if tokeniser is not None else Tokeniser(DEMO_KEY, demo=True)
        tokenise_landing(out, list(tokenised), tok, list(MONTH_LABELS))
    # each drop's modification time = its (seeded) arrival in the month after; bytes unchanged
    arrival.stamp_arrivals(out, seed, MONTH_LABELS)
    # what the generator wrote, by hash: the public demo key is allowed on these drops only
    write_manifest(
        out,
        [path for path, *_ in arrival.drop_paths(out, MONTH_LABELS)],
        {
            "seed": seed,
            "people": people,
            "comparison_people": comparison_people,
            "true_effect": float(true_effect),
            **({"tokenised": sorted(tokenised)} if tokenised else {}),
        },
    )

    # ---- truth ----
    rec = pd.concat(records, ignore_index=True)
    rec["true_person_id"] = pop.pid[rec["_person"].to_numpy(dtype=int)]
    rec.drop(columns="_person").to_csv(tru / "records.csv", index=False, lineterminator="\n")

    frames = truth_frames(w)
    pm = frames.person_month
    for name, frame in (
        ("person_month", frames.person_month),
        ("counterfactual_person_month", frames.counterfactual_person_month),
        ("people", frames.people),
        ("programme", frames.programme),
    ):
        frame.to_csv(tru / f"{name}.csv", index=False, lineterminator="\n")

    det = events.detentions
    links = pd.DataFrame({"det_index": det["det_index"].to_numpy()})
    links = links.merge(links_by_det["_det_police"], on="det_index", how="left")
    links = links.merge(links_by_det["_det_to_mha"], on="det_index", how="left")
    s136 = pd.DataFrame(
        {
            "true_person_id": pop.pid[det["person"].to_numpy()],
            "detention_date": fmt_dates(det["day"].to_numpy()),
            "month": np.asarray(MONTH_LABELS, dtype=object)[month_of(det["day"].to_numpy())],
            "police_recorded": det["police_recorded"].to_numpy(),
            "mhsds_recorded": det["mhsds_recorded"].to_numpy(),
            "IncidentNumber": links["IncidentNumber"].fillna("").to_numpy(),
            "S136Ref": links["S136Ref"].fillna("").to_numpy(),
            "MHActLegalStatusClassPeriodId": links["mha_id"].fillna("").to_numpy(),
        }
    )
    s136 = s136.sort_values(["detention_date", "true_person_id"], kind="stable")
    s136.to_csv(tru / "s136_detentions.csv", index=False, lineterminator="\n")

    pre = _pre_allocation_means(pm, frames.programme)
    summary = SynthSummary(
        seed=seed,
        people=people,
        comparison_people=comparison_people,
        true_effect=float(true_effect),
        n_allocated=len(prog.person),
        n_engaged=int(prog.engaged.sum()),
        files_written=files,
        rows_by_table=rows_by_table,
        errors_by_kind=errors_by_kind,
        calibration=pre,
    )
    payload = {
        **summary.as_dict(),
        "parameters": {
            "window": [MONTH_LABELS[0], MONTH_LABELS[-1]],
            "hiu_rates_per_month": latent.HIU_RATES,
            "general_rates_per_year": latent.GENERAL_RATES,
            "latent": {
                "phi": latent.PHI,
                "innovation_sd": latent.INNOVATION_SD,
                "jump_prob": latent.JUMP_PROB,
                "jump_base": latent.JUMP_BASE,
                "jump_mean": latent.JUMP_MEAN,
                "jump_max": latent.JUMP_MAX,
                "crisis_max": latent.CRISIS_MAX,
                "x_sd_cap": latent.X_SD_CAP,
                "peak_cap": latent.PEAK_CAP,
                "mu_max": latent.MU_MAX,
                "jump_decay": latent.JUMP_DECAY,
                "burn_in_months": latent.BURN_IN,
            },
            "error_rates": {
                "nhs_check_digit": errors.P_NHS,
                "impossible_date": errors.P_DATE,
                "malformed_postcode": errors.P_POSTCODE,
                "duplicate_row": errors.P_DUPLICATE,
            },
            "allocation": {
                "base_hazard_per_month": allocation.ALLOC_BASE_HAZARD,
                "peak_power": allocation.ALLOC_PEAK_POWER,
                "hazard_max": allocation.ALLOC_HAZARD_MAX,
                "usual_months": allocation.USUAL_MONTHS,
                "engage_share": allocation.ENGAGE_SHARE,
                "engage_fall": allocation.ENGAGE_FALL,
                "engage_level": allocation.ENGAGE_LEVEL,
                "calibration_peak": activity.CALIBRATION_PEAK,
            },
            "still_on_programme_at_end": "discharged 2021-05-31 with reason programme_closed",
            "charged_share_of_arrests": crisis.CHARGED_SHARE,
            "s136_arrested_share": episodes.S136_ARRESTED,
            "community_contacts": {
                "hiu_per_month_at_usual_intensity": contacts.CONTACT_RATE,
                "hiu_intensity_power": contacts.CONTACT_POWER,
                "hiu_max_multiple": contacts.CONTACT_MAX,
                "general_known_per_year": contacts.GENERAL_CONTACT_RATE,
                "dna_hiu_at_usual_intensity": contacts.HIU_DNA,
                "dna_hiu_range": [contacts.DNA_MIN, contacts.DNA_MAX],
                "dna_general": contacts.GENERAL_DNA,
                "cancelled_by_patient": contacts.CANCEL_BY_PATIENT,
                "cancelled_by_provider": contacts.CANCEL_BY_PROVIDER,
                "scaled_by_true_effect": False,
            },
        },
    }
    (tru / "summary.json").write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n")
    return summary


@dataclass
class World:
    """One seeded world in memory: streams, people, programme, true events (and the same world
    without the programme's effect, for the members' counterfactual)."""

    rngs: dict[str, np.random.Generator]
    kr: keyed.Keyed
    pop: object
    prog: allocation.Programme
    events: activity.Events
    cf_events: activity.Events


@dataclass
class TruthFrames:
    person_month: pd.DataFrame
    counterfactual_person_month: pd.DataFrame
    people: pd.DataFrame
    programme: pd.DataFrame


def _world(seed: int, people: int, comparison_people: int, true_effect: float) -> World:
    if people < 0 or comparison_people < 0:
        raise ValueError("people and comparison_people must be >= 0")
    if true_effect < 0:
        raise ValueError("true_effect must be >= 0")
    ss = np.random.SeedSequence(seed)
    rngs = {
        k: np.random.default_rng(s) for k, s in zip(STREAMS, ss.spawn(len(STREAMS)), strict=True)
    }
    kr = keyed.Keyed(seed)
    n_prog = sum(PROGRAMME_BOROUGH_COUNTS.values())
    pop = build_population(rngs["people"], n_prog, comparison_people, people)
    prog, events, _, cf_events = activity.simulate_events(
        rngs, kr, pop, true_effect, counterfactual=True
    )
    assert cf_events is not None
    return World(rngs, kr, pop, prog, events, cf_events)


def simulate_truth(
    *, seed: int, people: int = 10_000, true_effect: float = 1.0, comparison_people: int = 600
) -> TruthFrames:
    """The truth files ``generate`` writes, in memory, without rendering any provider drop
    (the same arguments give the same frames as ``generate``'s truth folder)."""
    return truth_frames(_world(seed, people, comparison_people, true_effect))


def truth_frames(w: World) -> TruthFrames:
    """person_month, the members' counterfactual person_month, people and programme."""
    pop, prog, events, cf_events, kr = w.pop, w.prog, w.events, w.cf_events, w.kr
    pm = _person_month_frame(
        truth.person_month(events, render_ecds.ae_coded_self_harm(kr, pop, events.ae)), pop
    )
    # the members' follow-up in the same world without the programme's effect (same draws):
    # the realised effect of any estimand is exact. Same columns; members only.
    cf = (
        pm
        if cf_events is events
        else _person_month_frame(
            truth.person_month(cf_events, render_ecds.ae_coded_self_harm(kr, pop, cf_events.ae)),
            pop,
        )
    )
    cf = cf[cf["true_person_id"].isin(set(pop.pid[prog.person]))]

    dead = pop.death < N_DAYS
    people_df = pd.DataFrame(
        {
            "true_person_id": pop.pid,
            "group": pop.group,
            "sex": pop.sex,
            "borough": pop.borough,
            "trust": pop.trust,
            "birth_year": fmt_dates(pop.dob).astype(str).astype(object),
            "death_date": fmt_dates(np.minimum(pop.death, N_DAYS - 1), dead),
            "twin_of": pop.twin_of,
        }
    )
    people_df["birth_year"] = people_df["birth_year"].str.slice(0, 4)

    last = N_DAYS - 1
    p = prog.person
    prog_df = pd.DataFrame(
        {
            "true_person_id": pop.pid[p],
            "RegisterId": prog.register_id,
            "LocalPatientId": pop.lpid[p],
            "OrgIDProv": [codes.MH_TRUSTS[t] for t in pop.trust[p]],
            "Borough": pop.borough[p],
            "AllocationDate": fmt_dates(prog.alloc_day),
            "EngagementDate": fmt_dates(np.minimum(prog.engage_day, last), prog.engaged),
            "DischargeDate": fmt_dates(
                np.minimum(prog.discharge_day, last), prog.discharge_day <= last
            ),
            "DischargeReason": prog.reason,
            "engaged": prog.engaged,
            "months_on_programme": np.where(prog.engaged, prog.months_on.astype(str), ""),
            "allocation_trailing3_intensity": np.round(prog.trailing3, 4),
        }
    )

    return TruthFrames(
        person_month=pm,
        counterfactual_person_month=cf,
        people=people_df.sort_values("true_person_id").reset_index(drop=True),
        programme=prog_df.sort_values("RegisterId").reset_index(drop=True),
    )


def _person_month_frame(pm: pd.DataFrame, pop) -> pd.DataFrame:
    """Truth counts keyed by true person id and month label."""
    pm.insert(0, "true_person_id", pop.pid[pm["person"].to_numpy()])
    pm["month"] = np.asarray(MONTH_LABELS, dtype=object)[pm["month"].to_numpy()]
    return pm.drop(columns="person").sort_values(["true_person_id", "month"], kind="stable")


def _pre_allocation_means(pm: pd.DataFrame, prog_df: pd.DataFrame) -> dict[str, float]:
    """Programme members' mean per person-month over the 12 months before allocation."""
    alloc = dict(
        zip(prog_df["true_person_id"], prog_df["AllocationDate"].str.slice(0, 7), strict=True)
    )
    labels = list(MONTH_LABELS)
    idx = {m: i for i, m in enumerate(labels)}
    sub = pm[pm["true_person_id"].isin(alloc)]
    a = sub["true_person_id"].map(alloc).map(idx)
    m = sub["month"].map(idx)
    win = sub[(m >= a - 12) & (m < a)]
    return {k: round(float(win[k].sum()) / (12 * len(alloc)), 3) for k in truth.METRICS}
