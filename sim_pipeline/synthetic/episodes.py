"""Mental-health episodes: s136 detentions, hospital spells, ward stays and MH Act periods.

``episodes`` resolves the s136 and admission candidates in time order per person, so detentions
and admissions never overlap an open spell and spells end on the death day: 22% of detentions
are followed by an admission (s2 or s3), and each detention is recorded by the police, MHSDS or
both (8% police-only, 5% MHSDS-only). ``ward_stays`` gives each spell one or two ward stays,
``mha_periods`` the MHS401 periods (code 20 for an s136 MHSDS recorded, then each admission's
legal status), and ``inpatient_mask`` says which days fall inside a spell.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from sim_pipeline.sources import codes
from sim_pipeline.synthetic.keyed import Keyed
from sim_pipeline.synthetic.people import Population
from sim_pipeline.synthetic.timeline import N_DAYS

S136_POLICE_ONLY, S136_MHSDS_ONLY = 0.08, 0.05
S136_ADMITTED = 0.22
S136_ARRESTED = 0.05  # of police-recorded detentions, arrested for an offence as well


def _spell_attributes(kr: Keyed, key: np.ndarray, salt: int) -> dict[str, np.ndarray]:
    long = kr.u(key, salt) < 0.06
    length = np.where(long, kr.geometric(key, salt + 1, 80), kr.geometric(key, salt + 2, 21))
    return {
        "length": length,
        "two_wards": kr.u(key, salt + 3) < 0.3,
        "split": 0.2 + 0.6 * kr.u(key, salt + 4),
        "picu_first": kr.u(key, salt + 5) < 0.4,
        "adm_secs": kr.times(key, salt + 6),
    }


def episodes(
    kr: Keyed, pop: Population, s136: pd.DataFrame, adm: pd.DataFrame
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Detentions and admissions, resolved in time order per person so spells never overlap."""
    det = s136.copy()
    k = det["key"].to_numpy()
    ns = len(det)
    det["secs"] = kr.times(k, 10, min_hour=2)
    det["end_off"] = kr.pick(k, 12, [1, 2, 3], [0.6, 0.3, 0.1]).astype(np.int64)
    u = kr.u(k, 13)
    det["police_recorded"] = u >= S136_MHSDS_ONLY
    det["mhsds_recorded"] = (u < S136_MHSDS_ONLY) | (u >= S136_MHSDS_ONLY + S136_POLICE_ONLY)
    det["admit"] = kr.u(k, 14) < S136_ADMITTED
    det["adm_legal"] = kr.pick(k, 15, ["02", "03"], [0.8, 0.2])
    det["transport"] = kr.pick(k, 16, codes.S136_TRANSPORT, [0.3, 0.55, 0.05, 0.03, 0.05, 0.02])
    det["place"] = kr.pick(k, 17, codes.S136_PLACE_OF_SAFETY, [0.03, 0.28, 0.01, 0.62, 0.03, 0.03])
    det["cad_lead"] = kr.integers(k, 18, 20 * 60, 120 * 60)
    # only detentions the police recorded can carry an arrest (ArrestedForOffence on the return)
    det["arrested"] = det["police_recorded"] & (kr.u(k, 124) < S136_ARRESTED)
    det_sa = _spell_attributes(kr, k, 20)
    ak = adm["key"].to_numpy()
    adm_legal = kr.pick(ak, 30, ["01", "02", "03"], [0.45, 0.35, 0.2])
    adm_sa = _spell_attributes(kr, ak, 31)

    kind = np.concatenate([np.zeros(ns, np.int64), np.ones(len(adm), np.int64)])
    idx = np.concatenate([np.arange(ns), np.arange(len(adm))])
    person = np.concatenate([det["person"].to_numpy(), adm["person"].to_numpy()])
    day = np.concatenate([det["day"].to_numpy(), adm["day"].to_numpy()])
    order = np.lexsort((idx, kind, day, person))
    death = pop.death
    det_keep = np.zeros(ns, dtype=bool)
    det_end = np.zeros(ns, dtype=np.int64)
    rows: list[tuple[int, int, int, str, int, int]] = []  # person, start, end, legal, kind, src
    end_off = det["end_off"].to_numpy()
    admit = det["admit"].to_numpy()
    d_legal = det["adm_legal"].to_numpy()
    d_len = det_sa["length"]
    a_len = adm_sa["length"]
    cur, busy = -1, -1
    for o in order:
        p, d, kd, i = int(person[o]), int(day[o]), kind[o], int(idx[o])
        if p != cur:
            cur, busy = p, -1
        dp = int(death[p])
        if d <= busy or d > dp:
            continue
        if kd == 0:
            end = min(d + int(end_off[i]), dp)
            det_keep[i], det_end[i], busy = True, end, end
            if admit[i] and end < N_DAYS:
                s_end = min(end + int(d_len[i]), dp)
                rows.append((p, end, s_end, d_legal[i], 0, i))
                busy = s_end
        else:
            s_end = min(d + int(a_len[i]), dp)
            rows.append((p, d, s_end, adm_legal[i], 1, i))
            busy = s_end
    det["end"] = det_end
    new_index = np.cumsum(det_keep) - 1
    det = det[det_keep].reset_index(drop=True)
    det["det_index"] = np.arange(len(det))
    sp = pd.DataFrame(rows, columns=["person", "start", "end", "legal", "kind", "src"])
    from_det = (sp["kind"] == 0).to_numpy()
    src = sp["src"].to_numpy(dtype=np.int64)
    sd = np.where(from_det, src, 0)
    sa = np.where(from_det, 0, src)
    for name in ("two_wards", "split", "picu_first", "adm_secs"):
        a = det_sa[name][sd] if ns else np.zeros(len(sp))
        b = adm_sa[name][sa] if len(adm) else np.zeros(len(sp))
        sp[name] = np.where(from_det, a, b)
    # the spell after a detention starts when the s136 ends (assessment), in the daytime
    sp.loc[from_det, "adm_secs"] = (sp.loc[from_det, "adm_secs"] % (8 * 3600)) + 9 * 3600
    sp["det_index"] = np.where(from_det, new_index[sd] if ns else -1, -1)
    keys_det = s136["key"].to_numpy()
    keys_adm = adm["key"].to_numpy()
    kd_ = keys_det[sd] if ns else np.zeros(len(sp), np.uint64)
    ka_ = keys_adm[sa] if len(adm) else np.zeros(len(sp), np.uint64)
    sp["key"] = np.where(from_det, kr.child(kd_, 1), ka_)
    sp["origin"] = np.where(from_det, "s136", "direct")
    sp = sp.drop(columns=["kind", "src"]).sort_values(["person", "start"], kind="stable")
    return det, sp.reset_index(drop=True)


def ward_stays(spells: pd.DataFrame, pop: Population) -> pd.DataFrame:
    """One ward stay per spell, or two (a transfer part-way, often from a PICU)."""
    s = spells["start"].to_numpy(dtype=np.int64)
    e = spells["end"].to_numpy(dtype=np.int64)
    two = spells["two_wards"].to_numpy(dtype=bool) & (e - s >= 4)
    split = s + np.maximum(1, np.floor(spells["split"].to_numpy() * (e - s)).astype(np.int64))
    person = spells["person"].to_numpy()
    older = (s - pop.dob[person]) / 365.2425 >= 65
    plain_bed = np.where(older, "11", "10")
    first_bed = np.where(two & spells["picu_first"].to_numpy(dtype=bool), "12", plain_bed)
    spell_no = np.arange(len(spells))
    key = spells["key"].to_numpy(dtype=np.uint64)
    first = pd.DataFrame(
        {"spell": spell_no, "person": person, "start": s, "end": np.where(two, split, e),
         "bed": first_bed, "seq": 0, "key": key}
    )  # fmt: skip
    second = pd.DataFrame(
        {"spell": spell_no[two], "person": person[two], "start": split[two], "end": e[two],
         "bed": plain_bed[two], "seq": 1, "key": key[two]}
    )  # fmt: skip
    ws = pd.concat([first, second], ignore_index=True)
    return ws.sort_values(["spell", "seq"], kind="stable").reset_index(drop=True)


def mha_periods(kr: Keyed, det: pd.DataFrame, spells: pd.DataFrame) -> pd.DataFrame:
    """MHS401 periods: s136 (code 20) and the legal status of each admission."""
    d = det[det["mhsds_recorded"]]
    s = spells["start"].to_numpy(dtype=np.int64)
    e = spells["end"].to_numpy(dtype=np.int64)
    legal = spells["legal"].to_numpy()
    skey = spells["key"].to_numpy(dtype=np.uint64)
    first_end = np.where(legal == "02", np.minimum(s + 28, e), e)
    regrade = (legal == "02") & (e > s + 28)
    parts = [
        pd.DataFrame(
            {"person": d["person"].to_numpy(), "start": d["day"].to_numpy(),
             "secs": d["secs"].to_numpy(), "end": d["end"].to_numpy(), "code": "20",
             "det_index": d["det_index"].to_numpy(), "key": d["key"].to_numpy()}
        ),
        pd.DataFrame(
            {"person": spells["person"].to_numpy(), "start": s,
             "secs": spells["adm_secs"].to_numpy(), "end": first_end, "code": legal,
             "det_index": -1, "key": kr.child(skey, 2)}
        ),
        pd.DataFrame(
            {"person": spells["person"].to_numpy()[regrade], "start": s[regrade] + 28,
             "secs": 10 * 3600 + kr.integers(skey[regrade], 40, 0, 6 * 3600), "end": e[regrade],
             "code": "03", "det_index": -1, "key": kr.child(skey[regrade], 3)}
        ),
    ]  # fmt: skip
    mha = pd.concat(parts, ignore_index=True)
    mha["key"] = mha["key"].astype(np.uint64)
    blank = kr.u(mha["key"].to_numpy(), 41) < 0.03
    mha.loc[blank, "secs"] = -1  # start time not recorded
    return mha.sort_values(["person", "start", "code"], kind="stable").reset_index(drop=True)


def inpatient_mask(spells: pd.DataFrame, person: np.ndarray, day: np.ndarray) -> np.ndarray:
    """True where ``day`` falls strictly inside one of the person's spells."""
    person = np.asarray(person, dtype=np.int64)
    day = np.asarray(day, dtype=np.int64)
    if not len(spells) or not len(person):
        return np.zeros(len(person), dtype=bool)
    sp = spells["person"].to_numpy(dtype=np.int64)
    st = spells["start"].to_numpy(dtype=np.int64)
    en = spells["end"].to_numpy(dtype=np.int64)
    order = np.lexsort((st, sp))
    sp, st, en = sp[order], st[order], en[order]
    q = person * 4096 + day
    idx = np.searchsorted(sp * 4096 + st, q, side="left") - 1
    ok = idx >= 0
    idx = np.maximum(idx, 0)
    return ok & (sp[idx] == person) & (day < en[idx])
