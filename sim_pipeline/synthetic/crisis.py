"""The crisis events services record, assembled from the candidates and the episodes.

``crisis_events`` turns the primary candidates into every crisis table: detentions, spells,
ward stays and MH Act periods (``episodes``), then ambulance, A&E and police CAD events. Police,
ambulance and A&E candidates on inpatient days are mostly (88%) dropped; an s136 transported by
ambulance adds an LAS incident; a see-and-convey-to-ED incident (95%) or a first place of safety
at A&E adds an A&E attendance; 1% of attendances are sent twice by the provider
(Der_Dupe_Flag=1); 15% of attended police incidents end in an arrest, 35% of those with a
charge. ``recorded_crisis`` counts the crisis contacts per HIU and month as the records show
them: the history allocation sees.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from sim_pipeline.sources import codes
from sim_pipeline.synthetic.episodes import episodes, inpatient_mask, mha_periods, ward_stays
from sim_pipeline.synthetic.keyed import Keyed
from sim_pipeline.synthetic.latent import PROCESSES, Candidates, event_keys
from sim_pipeline.synthetic.people import GENERAL, Population
from sim_pipeline.synthetic.timeline import DAY_MONTH, N_DAYS, N_MONTHS

INPATIENT_KEEP = 0.12
CHARGED_SHARE = 0.35  # of police arrests, the share where the incident records a charge
CONVEY_TO_AE_RECORDED = 0.95
DUPE_FLAG_SHARE = 0.01


def _frame(proc: str, cand: tuple[np.ndarray, np.ndarray]) -> pd.DataFrame:
    person, day = cand
    df = pd.DataFrame({"person": person, "day": day, "key": event_keys(proc, person, day)})
    return df.sort_values(["person", "day", "key"], kind="stable").reset_index(drop=True)


def _ambulance(kr: Keyed, pop: Population, cand: pd.DataFrame, det: pd.DataFrame) -> pd.DataFrame:
    """LAS incidents: independent calls plus s136 conveyances by ambulance."""
    key = cand["key"].to_numpy()
    hiu = pop.group[cand["person"].to_numpy()] != GENERAL
    outcome = np.where(
        hiu,
        kr.pick(key, 50, codes.AMBULANCE_OUTCOME, [0.12, 0.28, 0.52, 0.08]),
        kr.pick(key, 50, codes.AMBULANCE_OUTCOME, [0.15, 0.30, 0.50, 0.05]),
    )
    ht = outcome == "hear_and_treat"
    category = np.where(
        ht,
        kr.pick(key, 51, ["C3", "C4"], [0.6, 0.4]),
        kr.pick(key, 52, codes.AMBULANCE_CATEGORY, [0.08, 0.6, 0.27, 0.05]),
    )
    resources = np.where(ht, 0, kr.pick(key, 53, [1, 2, 3], [0.68, 0.24, 0.08])).astype(np.int64)
    a = pd.DataFrame(
        {"person": cand["person"].to_numpy(), "day": cand["day"].to_numpy(),
         "secs": kr.times(key, 54), "category": category, "resources": resources,
         "outcome": outcome, "det_index": -1, "key": key}
    )  # fmt: skip
    d = det[det["transport"] == "ambulance"]
    dkey = kr.child(d["key"].to_numpy(), 4)
    secs = d["secs"].to_numpy() + kr.integers(dkey, 55, 5 * 60, 40 * 60)
    b = pd.DataFrame(
        {"person": d["person"].to_numpy(), "day": d["day"].to_numpy() + secs // 86_400,
         "secs": secs % 86_400, "category": "C2", "resources": 1,
         "outcome": np.where(d["place"] == "ae", "see_and_convey_ed", "convey_elsewhere"),
         "det_index": d["det_index"].to_numpy(), "key": dkey}
    )  # fmt: skip
    amb = pd.concat([a, b], ignore_index=True)
    amb["key"] = amb["key"].astype(np.uint64)
    amb = amb[amb["day"] < N_DAYS]
    return amb.sort_values(["day", "secs", "key"], kind="stable").reset_index(drop=True)


def _ae(
    kr: Keyed, pop: Population, cand: pd.DataFrame, amb: pd.DataFrame, det: pd.DataFrame
) -> pd.DataFrame:
    """A&E attendances: self-presentations, LAS conveyances, s136 taken to A&E; plus dupes."""
    key = cand["key"].to_numpy()
    hiu = pop.group[cand["person"].to_numpy()] != GENERAL
    own, public, police = "1048071000000103", "1048061000000105", codes.POLICE_ARRIVAL_MODE
    mode = np.where(
        hiu,
        kr.pick(key, 60, [own, public, police], [0.62, 0.33, 0.05]),
        kr.pick(key, 60, [own, public], [0.65, 0.35]),
    )
    a = pd.DataFrame(
        {"person": cand["person"].to_numpy(), "day": cand["day"].to_numpy(),
         "secs": kr.times(key, 61), "mode": mode, "route": "self", "key": key}
    )  # fmt: skip
    conv = amb[(amb["outcome"] == "see_and_convey_ed").to_numpy()]
    ckey = conv["key"].to_numpy(dtype=np.uint64)
    conv = conv[kr.u(ckey, 62) < CONVEY_TO_AE_RECORDED]
    ckey = kr.child(conv["key"].to_numpy(dtype=np.uint64), 5)
    secs = conv["secs"].to_numpy() + kr.integers(ckey, 63, 40 * 60, 110 * 60)
    b = pd.DataFrame(
        {"person": conv["person"].to_numpy(), "day": conv["day"].to_numpy() + secs // 86_400,
         "secs": secs % 86_400,
         "mode": kr.pick(ckey, 64, codes.AMBULANCE_ARRIVAL_MODES, [0.85, 0.1, 0.05]),
         "route": np.where(conv["det_index"].to_numpy() >= 0, "s136", "ambulance"),
         "key": ckey}
    )  # fmt: skip
    d = det[(det["place"] == "ae") & (det["transport"] != "ambulance")]
    dkey = kr.child(d["key"].to_numpy(), 6)
    secs = d["secs"].to_numpy() + kr.integers(dkey, 65, 15 * 60, 60 * 60)
    c = pd.DataFrame(
        {"person": d["person"].to_numpy(), "day": d["day"].to_numpy() + secs // 86_400,
         "secs": secs % 86_400,
         "mode": np.where(d["transport"] == "other_health_vehicle", "1048021000000102", police),
         "route": "s136", "key": dkey}
    )  # fmt: skip
    ae = pd.concat([a, b, c], ignore_index=True)
    ae["key"] = ae["key"].astype(np.uint64)
    ae = ae[(ae["day"] < N_DAYS) & (ae["day"] <= pop.death[ae["person"].to_numpy()])]
    key = ae["key"].to_numpy()
    home = pop.ae[ae["person"].to_numpy()]
    other = kr.pick(key, 66, sorted(codes.AE_PROVIDERS), [1] * len(codes.AE_PROVIDERS))
    ae["provider"] = np.where(kr.u(key, 67) < 0.88, home, other)
    ae["dupe"] = 0
    ae = ae.sort_values(["day", "secs", "key"], kind="stable").reset_index(drop=True)
    dup = ae[kr.u(ae["key"].to_numpy(), 68) < DUPE_FLAG_SHARE].copy()
    dup["dupe"] = 1
    ae = pd.concat([ae, dup], ignore_index=True)
    return ae.sort_values(["day", "secs", "key", "dupe"], kind="stable").reset_index(drop=True)


def _cad(
    kr: Keyed, police: pd.DataFrame, police_na: pd.DataFrame, det: pd.DataFrame
) -> pd.DataFrame:
    """Police CAD incidents: deployments, s136 incidents and calls with no attendance."""
    pk = police["key"].to_numpy()
    nk = police_na["key"].to_numpy()
    dk = kr.child(det["key"].to_numpy(), 7)
    outcome = kr.pick(pk, 71, ["NFA", "REFERRAL", "ARREST"], [0.55, 0.3, 0.15])
    charged = (outcome == "ARREST") & (kr.u(pk, 200) < CHARGED_SHARE)
    outcome = np.where(charged, "CHARGED", outcome)
    parts = [
        pd.DataFrame({"person": police["person"].to_numpy(), "day": police["day"].to_numpy(),
                      "secs": kr.times(pk, 70), "attended": True,
                      "outcome": outcome,
                      "det_index": -1, "key": pk}),
        pd.DataFrame({"person": police_na["person"].to_numpy(),
                      "day": police_na["day"].to_numpy(), "secs": kr.times(nk, 70),
                      "attended": False,
                      "outcome": kr.pick(nk, 71, ["NFA", "REFERRAL"], [0.8, 0.2]),
                      "det_index": -1, "key": nk}),
        pd.DataFrame({"person": det["person"].to_numpy(), "day": det["day"].to_numpy(),
                      "secs": det["secs"].to_numpy() - det["cad_lead"].to_numpy(),
                      "attended": True, "outcome": "S136",
                      "det_index": det["det_index"].to_numpy(), "key": dk}),
    ]  # fmt: skip
    cad = pd.concat(parts, ignore_index=True)
    cad["key"] = cad["key"].astype(np.uint64)
    return cad.sort_values(["day", "secs", "key"], kind="stable").reset_index(drop=True)


def recorded_crisis(crisis: dict[str, pd.DataFrame], h: int) -> np.ndarray:
    """Crisis contacts per HIU and month as the records count them (the evaluation's crisis
    metrics: A&E attendances, ambulance resources, police deployments, s136 detentions), shape
    (h, N_MONTHS): the history a referral decision sees."""
    out = np.zeros((h, N_MONTHS))
    ae = crisis["ae"][crisis["ae"]["dupe"] == 0]
    cad = crisis["cad"][crisis["cad"]["attended"]]
    for frame, weight in (
        (ae, None),
        (crisis["ambulance"], "resources"),
        (cad, None),
        (crisis["detentions"], None),
    ):
        person = frame["person"].to_numpy(dtype=np.int64)
        day = frame["day"].to_numpy(dtype=np.int64)
        keep = (person < h) & (day >= 0) & (day < N_DAYS)
        w = 1.0 if weight is None else frame[weight].to_numpy(dtype=float)[keep]
        np.add.at(out, (person[keep], DAY_MONTH[day[keep]]), w)
    return out


def crisis_events(
    kr: Keyed, pop: Population, cand_h: Candidates, cand_g: Candidates
) -> dict[str, pd.DataFrame]:
    """Every crisis event (detentions, spells, ward stays, MH Act periods, ambulance, A&E,
    CAD) from the primary candidates of high-intensity users and others."""
    cand = {
        k: _frame(k, (np.concatenate([cand_h[k][0], cand_g[k][0]]),
                      np.concatenate([cand_h[k][1], cand_g[k][1]])))
        for k in PROCESSES
    }  # fmt: skip
    det, spells = episodes(kr, pop, cand["s136"], cand["adm"])
    ward = ward_stays(spells, pop)
    mha = mha_periods(kr, det, spells)
    thin = {}
    for k in ("police", "police_na", "amb", "ae"):
        c = cand[k]
        inside = inpatient_mask(spells, c["person"].to_numpy(), c["day"].to_numpy())
        keep = ~inside | (kr.u(c["key"].to_numpy(), 80) < INPATIENT_KEEP)
        thin[k] = c[keep].reset_index(drop=True)
    amb = _ambulance(kr, pop, thin["amb"], det)
    ae = _ae(kr, pop, thin["ae"], amb, det)
    cad = _cad(kr, thin["police"], thin["police_na"], det)
    return {"detentions": det, "spells": spells, "ward_stays": ward, "mha": mha,
            "ambulance": amb, "ae": ae, "cad": cad}  # fmt: skip
