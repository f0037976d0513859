"""The attacks on the encoded database alone, with the public list (`identity.attacks` runs
them): (a) bit-pair / complement recovery, (b) pattern mining, (c) frequency alignment and
(d) length leakage."""

from __future__ import annotations

from typing import Any

import numpy as np

from sim_pipeline.identity.attack_targets import Database, LegacyScheme, bigrams, norm, public_list

TOP_BIGRAMS = 30  # bigrams the pattern-mining attack tries to locate


def _corr(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Weighted (by record count) correlation matrix of the columns of a 0/1 matrix."""
    x = x.astype(np.float64)
    w = w / w.sum()
    mean = w @ x
    xc = x - mean
    cov = (xc * w[:, None]).T @ xc
    sd = np.sqrt(np.clip(np.diag(cov), 1e-12, None))
    return cov / np.outer(sd, sd)


# --------------------------------------------------------------------------------------------
# (a) bit pairs
# --------------------------------------------------------------------------------------------


def bit_pairs(db: Database, scheme: Any = None) -> dict[str, Any]:
    """Pair each bit with its most anti-correlated bit; pairs that choose each other with
    r <= -0.99 are taken as (base, complement). Scored against the truth when the scheme has a
    complement (legacy); chance is 0 pairs at r <= -0.99 for independent bits."""
    c = _corr(db.enc, db.counts)
    np.fill_diagonal(c, 0.0)
    partner = c.argmin(axis=1)
    mutual = partner[partner] == np.arange(len(partner))
    strong = mutual & (c[np.arange(len(c)), partner] <= -0.99)
    pairs = {(min(i, int(partner[i])), max(i, int(partner[i]))) for i in np.flatnonzero(strong)}
    correct = None
    if isinstance(scheme, LegacyScheme):
        inv = np.argsort(scheme.permutation)  # stored position of each pre-shuffle bit
        truth = {(min(inv[j], inv[j + 512]), max(inv[j], inv[j + 512])) for j in range(512)}
        correct = len(pairs & {(int(a), int(b)) for a, b in truth})
    off = c[~np.eye(len(c), dtype=bool)]
    # Chance: the same statistic with every column shuffled on its own (densities kept).
    rng = np.random.default_rng(0)
    shuffled = np.stack([rng.permutation(col) for col in db.enc.T], axis=1)
    null = _corr(shuffled, db.counts)
    np.fill_diagonal(null, 0.0)
    return {
        "chance_max_abs_correlation": round(float(np.abs(null).max()), 4),
        "pairs_found": len(pairs),
        "pairs_correct": correct,
        "possible_pairs": db.enc.shape[1] // 2,
        "min_correlation": round(float(off.min()), 4),
        "max_abs_correlation": round(float(np.abs(off).max()), 4),
        "pairs": sorted(pairs),
    }


def reduce(db: Database, pairs: list[tuple[int, int]]) -> np.ndarray:
    """What the bit-pair attack gives back: one bit per found pair, the sparser one (a base
    filter is under half full), so complement bits are dropped; all bits when none found."""
    if not pairs:
        return db.enc
    w = db.counts / db.counts.sum()
    keep = [a if w @ db.enc[:, a] <= w @ db.enc[:, b] else b for a, b in pairs]
    return db.enc[:, keep]


# --------------------------------------------------------------------------------------------
# (b) pattern mining
# --------------------------------------------------------------------------------------------


def _bigram_support(public: tuple[list[str], np.ndarray]) -> dict[str, float]:
    names, freq = public
    out: dict[str, float] = {}
    for n, f in zip(names, freq, strict=True):
        for g in set(bigrams(n)):
            out[g] = out.get(g, 0.0) + float(f)
    return out


def pattern_mining(
    db: Database, public: tuple[list[str], np.ndarray], x: np.ndarray, k: int = 15
) -> dict[str, Any]:
    """Frequent-pattern mining on the filters ``x`` (distinct x bits, weighted by counts).

    The k bits of a bigram are set together in every record holding it, so they form a bit
    pattern whose joint support is at least the bigram's frequency, while k unrelated bits are
    rarely all set. From every bit, grow a pattern greedily to k bits, each time adding the bit
    that keeps the joint support highest; keep the distinct patterns (overlap <= 3 bits with a
    stronger one) in order of support and align them, rank for rank, with the TOP_BIGRAMS most
    frequent public bigrams. A filter holds the bigram when all the pattern's bits are set
    (scored by F1 against the truth, per bigram; chance F1 is about the bigram's frequency).
    Names are then read off: a filter's name is the public name whose bigrams among the mined
    ones are exactly those found (ties to the more frequent name)."""
    w = (db.counts / db.counts.sum()).astype(np.float64)
    support = _bigram_support(public)
    top = [g for g, s in sorted(support.items(), key=lambda kv: -kv[1]) if s < 0.9][:TOP_BIGRAMS]
    xf = x.astype(np.float64)
    n_bits = x.shape[1]
    chosen = np.zeros((n_bits, n_bits), dtype=bool)  # seed -> bits in its pattern
    chosen[np.arange(n_bits), np.arange(n_bits)] = True
    masks = x.T.copy()  # seed -> filters holding every bit of its pattern so far
    for _ in range(k - 1):
        joint = (masks * w) @ xf  # seed x bit: support of pattern + bit
        joint[chosen] = -1.0
        add = joint.argmax(axis=1)
        chosen[np.arange(n_bits), add] = True
        masks &= x.T[add]
    patt_support = masks.astype(np.float64) @ w
    patterns: list[np.ndarray] = []
    for s in np.argsort(-patt_support, kind="stable"):
        if all((chosen[s] & chosen[p]).sum() <= 3 for p in patterns):
            patterns.append(s)
        if len(patterns) == len(top):
            break
    found = {g: masks[p] for g, p in zip(top, patterns, strict=False)}
    # Which patterns are a bigram's at all (labelled with hindsight: the best-matching bigram of
    # the whole list): what mining recovers before the attacker has to name the bigram.
    grams = sorted({g for n in db.names for g in bigrams(n)})
    truth = np.array([[g in set(bigrams(n)) for g in grams] for n in db.names])
    is_bigram = 0
    for p in patterns:
        pred = masks[p]
        tp = (w * pred) @ truth
        prec = tp / max(float(w @ pred), 1e-12)
        rec = tp / np.maximum(w @ truth, 1e-12)
        f1 = np.where(tp > 0, 2 * prec * rec / np.maximum(prec + rec, 1e-12), 0.0)
        is_bigram += bool(f1.max() >= 0.9)
    f1s, chance = [], []
    for g in top:
        t = np.array([g in bigrams(n) for n in db.names])
        pred = found.get(g, np.zeros(len(t), dtype=bool))
        tp = float(w @ (pred & t))
        prec = tp / max(float(w @ pred), 1e-12)
        rec = tp / max(float(w @ t), 1e-12)
        f1s.append(0.0 if tp == 0 else 2 * prec * rec / (prec + rec))
        chance.append(float(w @ t))
    # decode: public names by their mined-bigram signature
    signature: dict[frozenset[str], str] = {}
    for n in public[0]:  # most frequent first: ties go to the more frequent name
        signature.setdefault(frozenset(g for g in set(bigrams(n)) if g in found), n)
    decoded = decoded_records = 0
    for i, n in enumerate(db.names):
        if signature.get(frozenset(g for g in found if found[g][i])) == n:
            decoded += 1
            decoded_records += int(db.counts[i])
    return {
        "bigrams_mined": len(top),
        "patterns_that_are_a_bigram": int(is_bigram),
        "mean_f1": round(float(np.mean(f1s)), 4),
        "mean_chance_f1": round(float(np.mean(chance)), 4),
        "bigrams_f1_over_0_9": int(sum(f >= 0.9 for f in f1s)),
        "names_decoded": decoded,
        "records_decoded": decoded_records,
        "distinct_names": len(db.names),
    }


# --------------------------------------------------------------------------------------------
# (c) frequency alignment, (d) length
# --------------------------------------------------------------------------------------------


def frequency_alignment(
    db: Database, public: tuple[list[str], np.ndarray], top: int = 20
) -> dict[str, Any]:
    """Align the ``top`` most frequent distinct encodings with the ``top`` most frequent public
    names, rank for rank; count those aligned to their true name."""
    order = np.lexsort((np.arange(len(db.counts)), -db.counts))[:top]
    names = public[0][:top]
    hits = [i for r, i in enumerate(order) if r < len(names) and db.names[i] == names[r]]
    return {
        "top": top,
        "aligned_correctly": len(hits),
        "records_reidentified": int(db.counts[hits].sum()) if hits else 0,
        "records": int(db.counts.sum()),
    }


def _pearson(a: np.ndarray, b: np.ndarray, w: np.ndarray) -> float:
    a, b = a.astype(float), b.astype(float)
    w = w / w.sum()
    ac, bc = a - w @ a, b - w @ b
    den = np.sqrt((w @ ac**2) * (w @ bc**2))
    return 0.0 if den == 0 else float((w @ (ac * bc)) / den)


def length_corpus(kind: str, seed: int) -> list[str]:
    """Distinct names for the length test: the public list plus three generator typos of each
    (substitution, transposition or deletion: lengths vary within a name too)."""
    from sim_pipeline.synthetic.noise import typo

    names = public_list(kind)[0]
    rng = np.random.default_rng(seed + 2)
    variants = [typo(rng, np.array(names, dtype=object)) for _ in range(3)]
    return sorted({*names, *(norm(v) for vs in variants for v in vs)} - {""})


def length_leakage(scheme: Any, names: list[str], pairs: list[tuple[int, int]]) -> dict:
    """Correlation over distinct names (``names``: the length corpus) of name length with: the
    Hamming weight; the weight's distance from its mean; the weight of the base half that the
    bit-pair attack recovered (``pairs``, found on the record database). The leak is the largest
    |r| of the three."""
    enc = scheme.encode(names)
    length = np.array([len(n) for n in names])
    ones = np.ones(len(names))
    weight = enc.sum(axis=1)
    r_weight = _pearson(weight, length, ones)
    r_spread = _pearson(np.abs(weight - weight.mean()), length, ones)
    r_base = 0.0
    if pairs:
        db = Database(names, ones, enc)
        r_base = _pearson(reduce(db, pairs).sum(axis=1), length, ones)
    return {
        "names": len(names),
        "r_weight": round(r_weight, 4),
        "r_weight_spread": round(r_spread, 4),
        "r_recovered_base": round(r_base, 4),
        "max_abs_r": round(max(abs(r_weight), abs(r_spread), abs(r_base)), 4),
    }
