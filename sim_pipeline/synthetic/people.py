"""Synthetic people: who they are, where they live over time, when they die.

Three groups share one set of arrays (index = internal person number):

* ``programme`` (108 places and about 10% more people referred): the people the trusts may
  allocate to the programme; who is allocated, and when, is decided month by month from their
  history (``allocation.allocate``); anyone referred but never allocated is relabelled
  ``comparison_hiu``;
* ``comparison_hiu``: other high-intensity users in the same boroughs, never allocated;
* ``general``: the low-use population that makes linkage hard (common names, shared birth
  dates, twins, and a few exact name + birth-date look-alikes).

Addresses are a history of (from-day, postcode) per person; an empty postcode means no fixed
abode for that stretch. Moves stay within the home borough, so borough, trust and usual A&E are
fixed per person. Everyone's death is drawn here, programme members' like everyone else's: a
member can die at any time after allocation, and a referred person who dies first is never
allocated.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sim_pipeline.sources.base import BOROUGHS, PROGRAMME_BOROUGHS
from sim_pipeline.synthetic import noise
from sim_pipeline.synthetic.names import (
    BOROUGH_AE,
    BOROUGH_TRUST,
    ETHNIC_MIX,
    NO_FIXED_ABODE_POSTCODE,
    ORIGINS,
    PROGRAMME_BOROUGH_COUNTS,
)
from sim_pipeline.synthetic.timeline import N_DAYS, NEVER

PROGRAMME = "programme"
COMPARISON = "comparison_hiu"
GENERAL = "general"

TRUST_ID_PREFIX = {"slam": "SLAM", "oxleas": "OXL", "swlstg": "SWL"}
HIU_DEATH_RATE = 0.01  # per year
HIU_MOVE_RATE = 0.08  # home moves per year
GENERAL_MOVE_RATE = 0.05
HIU_NFA_SHARE = 0.12  # share of HIUs with a stretch of no fixed abode
TWIN_SHARE = 0.005  # share of people who have a twin
LOOKALIKE_SHARE = 0.005  # share of general population sharing name + DOB with someone else
MARRIAGE_SHARE = 0.04
PROGRAMME_SPARE_SHARE = 0.10  # people referred beyond the programme's places, per borough  # women 18-45 who change family name during the window
_ADDR_KEY = 4096  # > N_DAYS: person * _ADDR_KEY + day is a sortable key


@dataclass
class Population:
    """Arrays describing every person (index = internal person number)."""

    pid: np.ndarray
    group: np.ndarray
    sex: np.ndarray  # 'M' / 'F'
    dob: np.ndarray  # day number (negative: before 2016-01-01)
    given: np.ndarray
    family: np.ndarray
    new_family: np.ndarray  # family name after a marriage ('' if none)
    marriage_day: np.ndarray  # day the new family name applies from (NEVER if none)
    ethnic: np.ndarray
    origin: np.ndarray
    borough: np.ndarray
    trust: np.ndarray
    ae: np.ndarray  # usual A&E provider folder
    nhs: np.ndarray
    death: np.ndarray  # day of death (NEVER if alive at the end)
    twin_of: np.ndarray  # pid of the twin ('' if none)
    addr_person: np.ndarray
    addr_from: np.ndarray
    addr_pc: np.ndarray  # '' = no fixed abode from that day
    # The mental-health trust's own record of the person (stable across monthly submissions).
    lpid: np.ndarray
    mh_nhs: np.ndarray  # '' when the trust holds no NHS number
    mh_nhs_status: np.ndarray
    mh_given: np.ndarray
    mh_family: np.ndarray
    mh_dob: np.ndarray  # text
    mh_ethnic: np.ndarray
    mh_marriage_day: np.ndarray  # the trust learns of a new family name 3-12 months late

    @property
    def n(self) -> int:
        return len(self.pid)

    def postcode_at(self, persons: np.ndarray, days: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Home postcode on each day and whether the person was of no fixed abode."""
        keys = self.addr_person * _ADDR_KEY + self.addr_from
        q = np.asarray(persons, dtype=np.int64) * _ADDR_KEY + np.clip(days, 0, N_DAYS - 1)
        idx = np.searchsorted(keys, q, side="right") - 1
        pc = self.addr_pc[idx]
        return pc, pc == ""

    def family_at(self, persons: np.ndarray, days: np.ndarray) -> np.ndarray:
        """Family name in use on each day (after a marriage, the new name)."""
        persons = np.asarray(persons, dtype=np.int64)
        married = np.asarray(days) >= self.marriage_day[persons]
        return np.where(married, self.new_family[persons], self.family[persons])

    def nhs_postcode_at(self, persons: np.ndarray, days: np.ndarray) -> np.ndarray:
        """Postcode as NHS systems hold it: the no-fixed-abode pseudo-postcode when homeless."""
        pc, nfa = self.postcode_at(persons, days)
        return np.where(nfa, NO_FIXED_ABODE_POSTCODE, pc)


def referred(places: int) -> int:
    """People referred in a borough with ``places`` programme places (places + about 10%)."""
    return places + int(np.ceil(PROGRAMME_SPARE_SHARE * places))


def _group_boroughs(rng: np.random.Generator, n_comparison: int, n_general: int) -> np.ndarray:
    prog = np.repeat(
        np.array(list(PROGRAMME_BOROUGH_COUNTS), dtype=object),
        [referred(c) for c in PROGRAMME_BOROUGH_COUNTS.values()],
    )
    prog = prog[rng.permutation(len(prog))]
    # comparison HIUs: 75% in the six programme boroughs (weighted like the programme), 25% others
    w_prog = np.array(list(PROGRAMME_BOROUGH_COUNTS.values()), dtype=float)
    w = np.array(
        [0.75 * w_prog[i] / w_prog.sum() for i in range(6)] + [0.25 / 6] * 6,
    )
    comp = rng.choice(np.array(BOROUGHS, dtype=object), size=n_comparison, p=w)
    # general population: roughly by borough size (Croydon largest, Kingston/Richmond smaller)
    size = {
        "Greenwich": 2.9, "Southwark": 3.2, "Kingston": 1.8, "Richmond": 2.0, "Wandsworth": 3.3,
        "Merton": 2.1, "Lambeth": 3.3, "Lewisham": 3.0, "Croydon": 3.9, "Sutton": 2.1,
        "Bexley": 2.5, "Bromley": 3.3,
    }  # fmt: skip
    wg = np.array([size[b] for b in BOROUGHS])
    gen = rng.choice(np.array(BOROUGHS, dtype=object), size=n_general, p=wg / wg.sum())
    return np.concatenate([prog, comp, gen])


def _ethnicity(rng: np.random.Generator, hiu: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    codes = np.array([c for c, _, _ in ETHNIC_MIX], dtype=object)
    base = np.array([s for _, s, _ in ETHNIC_MIX])
    # Black people are over-represented among people detained under s136 and HIUs.
    boost = np.array([1.6 if c in ("M", "N", "P", "D") else 1.0 for c in codes])
    n = len(hiu)
    u = rng.random(n)
    cdf_gen = np.cumsum(base / base.sum())
    cdf_hiu = np.cumsum(base * boost / (base * boost).sum())
    idx = np.where(
        hiu,
        np.searchsorted(cdf_hiu, u, side="right"),
        np.searchsorted(cdf_gen, u, side="right"),
    )
    idx = np.minimum(idx, len(codes) - 1)
    eth = codes[idx]
    origins_of = {c: o for c, _, o in ETHNIC_MIX}
    pick = rng.random(n)
    origin = np.array(
        [origins_of[e][int(p * len(origins_of[e]))] for e, p in zip(eth, pick, strict=True)],
        dtype=object,
    )
    return eth, origin


def _names(
    rng: np.random.Generator, origin: np.ndarray, sex: np.ndarray, eth: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    n = len(origin)
    given = np.empty(n, dtype=object)
    family = np.empty(n, dtype=object)
    origins_of = {c: o for c, _, o in ETHNIC_MIX}
    # mixed-heritage people often carry a family name from another origin
    fam_origin = origin.copy()
    mixed = np.isin(eth, ["D", "E", "F", "G"])
    alt = rng.random(n)
    for i in np.nonzero(mixed)[0]:
        opts = origins_of[eth[i]]
        fam_origin[i] = opts[int(alt[i] * len(opts))]
    for o in sorted(ORIGINS):
        male, female, surnames = ORIGINS[o]
        for s, pool in (("M", male), ("F", female)):
            sel = np.nonzero((origin == o) & (sex == s))[0]
            if len(sel):
                given[sel] = noise.zipf_choice(rng, pool, len(sel), s=0.8)
        sel = np.nonzero(fam_origin == o)[0]
        if len(sel):
            family[sel] = noise.zipf_choice(rng, surnames, len(sel), s=0.9)
    return given, family


def _birth_days(rng: np.random.Generator, group: np.ndarray) -> np.ndarray:
    n = len(group)
    hiu = group != GENERAL
    # HIUs: aged 18+ on 2016-01-01 and at most 75 by 2021-05-31, mostly 20s-40s
    age_hiu = np.minimum(18 + rng.gamma(2.0, 8.5, n), 69.0)
    # general population: working-age bulge, thinning after 60, up to 95
    ages = np.arange(16, 96)
    w = np.where(ages <= 60, 1.0, np.clip(1 - (ages - 60) / 38, 0.05, 1))
    w = np.where((ages >= 25) & (ages <= 45), w * 1.35, w)
    age_gen = rng.choice(ages, size=n, p=w / w.sum()).astype(float)
    frac = rng.random(n)
    age = np.where(hiu, np.floor(age_hiu), age_gen) + frac
    return -np.round(age * 365.2425).astype(np.int64)


def _deaths(rng: np.random.Generator, group: np.ndarray, dob: np.ndarray) -> np.ndarray:
    n = len(group)
    years = N_DAYS / 365.2425
    age_mid = (N_DAYS / 2 - dob) / 365.2425
    hazard = np.where(
        group == GENERAL,
        np.clip(0.0004 * np.exp((age_mid - 40) * 0.085), 0.0003, 0.15),
        HIU_DEATH_RATE,
    )
    dies = rng.random(n) < 1 - np.exp(-hazard * years)
    day = rng.integers(30, N_DAYS, n)
    return np.where(dies, day, NEVER)


def _addresses(
    rng: np.random.Generator, group: np.ndarray, borough: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    n = len(group)
    hiu = group != GENERAL
    years = N_DAYS / 365.2425
    n_moves = rng.poisson(np.where(hiu, HIU_MOVE_RATE, GENERAL_MOVE_RATE) * years)
    persons = [np.arange(n)]
    days = [np.zeros(n, dtype=np.int64)]
    prio = [np.zeros(n, dtype=np.int64)]
    mv_person = np.repeat(np.arange(n), n_moves)
    persons.append(mv_person)
    days.append(rng.integers(1, N_DAYS, len(mv_person)))
    prio.append(np.ones(len(mv_person), dtype=np.int64))
    # no-fixed-abode stretches (HIUs mostly): postcode '' from s to s+L, then a new home
    nfa = np.nonzero(rng.random(n) < np.where(hiu, HIU_NFA_SHARE, 0.003))[0]
    s = rng.integers(0, N_DAYS - 60, len(nfa))
    length = rng.integers(60, 421, len(nfa))
    persons += [nfa, nfa]
    days += [s, s + length]
    prio += [np.full(len(nfa), 2), np.full(len(nfa), 3)]
    person = np.concatenate(persons)
    day = np.concatenate(days)
    pr = np.concatenate(prio)
    is_nfa = np.concatenate([np.zeros(n + len(mv_person), bool), np.ones(len(nfa), bool),
                             np.zeros(len(nfa), bool)])  # fmt: skip
    keep = day < N_DAYS
    # a move inside a no-fixed-abode stretch does not happen
    nfa_start = np.full(n, NEVER)
    nfa_end = np.full(n, -1)
    nfa_start[nfa] = s
    nfa_end[nfa] = s + length
    inside = (pr == 1) & (day >= nfa_start[person]) & (day < nfa_end[person])
    keep &= ~inside
    person, day, pr, is_nfa = person[keep], day[keep], pr[keep], is_nfa[keep]
    order = np.lexsort((pr, day, person))
    person, day, is_nfa = person[order], day[order], is_nfa[order]
    # same person and day: the later entry (higher priority) wins
    last = np.ones(len(person), dtype=bool)
    last[:-1] = (person[1:] != person[:-1]) | (day[1:] != day[:-1])
    person, day, is_nfa = person[last], day[last], is_nfa[last]
    pc = noise.random_postcodes(rng, borough[person])
    pc[is_nfa] = ""
    return person, day, pc


def build_population(
    rng: np.random.Generator, n_programme: int, n_comparison: int, n_general: int
) -> Population:
    """Draw every person's identity, address history and death date.

    ``n_programme`` is the programme's places; about 10% more people are referred
    (``referred``), so the first ``sum(referred(places))`` people are the referred group.
    """
    if n_programme != sum(PROGRAMME_BOROUGH_COUNTS.values()):
        raise ValueError(f"the programme has {sum(PROGRAMME_BOROUGH_COUNTS.values())} places")
    n_referred = sum(referred(c) for c in PROGRAMME_BOROUGH_COUNTS.values())
    n = n_referred + n_comparison + n_general
    group = np.array(
        [PROGRAMME] * n_referred + [COMPARISON] * n_comparison + [GENERAL] * n_general,
        dtype=object,
    )
    hiu = group != GENERAL
    # ids do not reveal the group: T000001.. assigned in a random order
    pid = np.array([f"T{i + 1:06d}" for i in rng.permutation(n)], dtype=object)
    borough = _group_boroughs(rng, n_comparison, n_general)
    assert set(borough[:n_referred]) <= set(PROGRAMME_BOROUGHS)
    trust = np.array([BOROUGH_TRUST[b] for b in borough], dtype=object)
    sex = np.where(rng.random(n) < np.where(hiu, 0.5, 0.49), "M", "F").astype(object)
    eth, origin = _ethnicity(rng, hiu)
    given, family = _names(rng, origin, sex, eth)
    dob = _birth_days(rng, group)
    nhs = noise.synthetic_nhs_numbers(rng, n)
    death = _deaths(rng, group, dob)
    u_ae = rng.random(n)
    ae = np.empty(n, dtype=object)
    for i in range(n):
        opts = BOROUGH_AE[borough[i]]
        acc = 0.0
        for folder, w in opts:
            acc += w
            if u_ae[i] < acc or folder == opts[-1][0]:
                ae[i] = folder
                break
    # marriages: some women aged 18-45 take a new family name part-way through
    age0 = -dob / 365.2425
    marry = (sex == "F") & (age0 >= 18) & (age0 <= 45) & (rng.random(n) < MARRIAGE_SHARE)
    marriage_day = np.where(marry, rng.integers(60, N_DAYS - 30, n), NEVER)
    new_family = np.full(n, "", dtype=object)
    mi = np.nonzero(marry)[0]
    same_origin = rng.random(len(mi)) < 0.6
    for k, i in enumerate(mi):
        pool = ORIGINS[origin[i] if same_origin[k] else "british"][2]
        cand = noise.zipf_choice(rng, pool, 3)
        new_family[i] = next((c for c in cand if c != family[i]), family[i] + "-Smith")
    twin_of = np.full(n, "", dtype=object)
    twin_src = np.full(n, -1, dtype=np.int64)

    # twins: a general-population person becomes the twin of someone (same DOB, family name,
    # home; different given name and NHS number)
    general_idx = np.arange(n_referred + n_comparison, n)
    n_pairs = max(1, round(TWIN_SHARE * n / 2)) if n_general >= 4 else 0
    if n_pairs:
        twins = rng.choice(general_idx, size=n_pairs, replace=False)
        others = np.setdiff1d(np.arange(n), twins)
        anchors = rng.choice(others, size=n_pairs, replace=False)
        twin_sex = np.where(rng.random(n_pairs) < 0.5, "M", "F")
        for t, a, s in zip(twins, anchors, twin_sex, strict=True):
            sex[t] = s
            dob[t] = dob[a]
            family[t] = family[a]
            new_family[t], marriage_day[t] = "", NEVER
            for arr in (borough, trust, ae, eth, origin):
                arr[t] = arr[a]
            pool = ORIGINS[origin[a]][0 if s == "M" else 1]
            cand = noise.zipf_choice(rng, pool, 4)
            given[t] = next((c for c in cand if c != given[a]), pool[-1])
            twin_of[t], twin_of[a] = pid[a], pid[t]
            twin_src[t] = a
    # look-alikes: same given name, family name, sex and birth date as someone else
    free = np.setdiff1d(general_idx, np.nonzero(twin_of != "")[0])
    n_look = round(LOOKALIKE_SHARE * n_general)
    if n_look and len(free) > n_look:
        look = rng.choice(free, size=n_look, replace=False)
        src = rng.choice(np.setdiff1d(np.arange(n), look), size=n_look, replace=False)
        for t, a in zip(look, src, strict=True):
            sex[t], given[t], family[t], dob[t] = sex[a], given[a], family[a], dob[a]
            new_family[t], marriage_day[t] = "", NEVER

    addr_person, addr_from, addr_pc = _addresses(rng, group, borough)
    # twins share their anchor's address history
    if (twin_src >= 0).any():
        t_idx = np.nonzero(twin_src >= 0)[0]
        keep = ~np.isin(addr_person, t_idx)
        parts_p, parts_f, parts_c = [addr_person[keep]], [addr_from[keep]], [addr_pc[keep]]
        for t in t_idx:
            sel = addr_person == twin_src[t]
            parts_p.append(np.full(sel.sum(), t))
            parts_f.append(addr_from[sel])
            parts_c.append(addr_pc[sel])
        addr_person = np.concatenate(parts_p)
        addr_from = np.concatenate(parts_f)
        addr_pc = np.concatenate(parts_c)
        order = np.lexsort((addr_from, addr_person))
        addr_person, addr_from, addr_pc = addr_person[order], addr_from[order], addr_pc[order]

    # the trust's own record: local id, NHS number (97%), names/DOB nearly clean (1% slips)
    lpid = np.empty(n, dtype=object)
    for t in sorted(TRUST_ID_PREFIX):
        sel = np.nonzero(trust == t)[0]
        nums = rng.choice(9_000_000, size=len(sel), replace=False) + 1_000_000
        lpid[sel] = [f"{TRUST_ID_PREFIX[t]}-P{k:07d}" for k in nums]
    known = rng.random(n) < 0.97
    mh_nhs = np.where(known, nhs, "").astype(object)
    status_known = rng.choice(["01", "02"], size=n, p=[0.95, 0.05])
    status_unknown = rng.choice(["03", "04", "05", "07"], size=n, p=[0.3, 0.3, 0.1, 0.3])
    mh_nhs_status = np.where(known, status_known, status_unknown).astype(object)
    mh_given = given.copy()
    mh_family = family.copy()
    slip = rng.random((3, n)) < 0.01
    mh_given[slip[0]] = noise.typo(rng, given[slip[0]])
    mh_family[slip[1]] = noise.typo(rng, family[slip[1]])
    mh_dob = noise.dob_strings(rng, dob, p_digit=0.0)
    slipped = noise.dob_strings(rng, dob[slip[2]], p_swap=0.5, p_digit=0.5)
    mh_dob[slip[2]] = slipped
    mh_ethnic = eth.copy()
    mh_ethnic[rng.random(n) < 0.04] = ""
    mh_marriage_day = np.where(marriage_day < NEVER, marriage_day + rng.integers(90, 366, n), NEVER)

    return Population(
        pid=pid, group=group, sex=sex, dob=dob, given=given, family=family,
        new_family=new_family, marriage_day=marriage_day, ethnic=eth, origin=origin,
        borough=borough, trust=trust, ae=ae, nhs=nhs, death=death, twin_of=twin_of,
        addr_person=addr_person, addr_from=addr_from, addr_pc=addr_pc, lpid=lpid,
        mh_nhs=mh_nhs, mh_nhs_status=mh_nhs_status, mh_given=mh_given, mh_family=mh_family,
        mh_dob=mh_dob, mh_ethnic=mh_ethnic, mh_marriage_day=mh_marriage_day,
    )  # fmt: skip
