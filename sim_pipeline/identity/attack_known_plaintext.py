"""The known-plaintext attacks (`identity.attacks` runs them): (e1) each bigram's positions
learnt from the known (name, encoding) pairs, (e2) the similarity attack."""

from __future__ import annotations

from typing import Any

import numpy as np

from sim_pipeline.identity.attack_targets import Database, bigrams

# --------------------------------------------------------------------------------------------
# (e) known plaintexts
# --------------------------------------------------------------------------------------------


def _known_split(db: Database, n_known: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed + 1)
    perm = rng.permutation(len(db.names))
    return np.sort(perm[:n_known]), np.sort(perm[n_known:])


def known_plaintext_positions(
    db: Database, public: tuple[list[str], np.ndarray], x: np.ndarray, n_known: int, seed: int
) -> dict[str, Any]:
    """(e1) Each bigram's bits = the bits set in every known filter holding it; an unknown
    filter holds the bigram when all those bits are set. Its name: the public name (not among
    the known) whose bigrams are all found, the one with most bigrams (ties: more frequent)."""
    known, unknown = _known_split(db, n_known, seed)
    learned: dict[str, np.ndarray] = {}
    for i in known:
        for g in set(bigrams(db.names[i])):
            learned[g] = x[i] if g not in learned else learned[g] & x[i]
    learned = {g: v for g, v in learned.items() if v.any()}
    known_names = {db.names[i] for i in known}
    cands = [
        (n, set(bigrams(n)))
        for n in public[0]
        if n not in known_names and set(bigrams(n)) <= learned.keys()
    ]
    decoded = 0
    for i in unknown:
        present = {g for g, v in learned.items() if (x[i] | ~v).all()}
        best, best_len = None, -1
        for n, grams in cands:  # most frequent first
            if grams <= present and len(grams) > best_len:
                best, best_len = n, len(grams)
        decoded += best == db.names[i]
    return {"known": n_known, "targets": len(unknown), "decoded_exactly": int(decoded)}


def _bigram_dice(a: str, b: str) -> float:
    ga, gb = set(bigrams(a)), set(bigrams(b))
    return 2 * len(ga & gb) / (len(ga) + len(gb))


def known_plaintext_similarity(
    db: Database, public: tuple[list[str], np.ndarray], n_known: int, seed: int
) -> dict[str, Any]:
    """(e2) Similarity attack: an unknown encoding's Hamming similarities to the known encodings
    are compared (Pearson) with each candidate public name's bigram-Dice to the known names; the
    best-correlated candidate (not among the known) is the guess. Works on any encoding whose
    similarity tracks the names' similarity, which linkage needs."""
    known, unknown = _known_split(db, n_known, seed)
    enc = db.enc.astype(np.float32)
    bits = enc.shape[1]
    ham = enc[unknown] @ enc[known].T + (1 - enc[unknown]) @ (1 - enc[known]).T
    sim_enc = ham / bits  # unknown x known
    known_names = [db.names[i] for i in known]
    cands = [n for n in public[0] if n not in set(known_names)]
    sim_pub = np.array([[_bigram_dice(c, k) for k in known_names] for c in cands])

    def z(m: np.ndarray) -> np.ndarray:
        m = m - m.mean(axis=1, keepdims=True)
        return m / np.maximum(np.linalg.norm(m, axis=1, keepdims=True), 1e-12)

    score = z(sim_enc) @ z(sim_pub).T  # unknown x candidates
    guess = score.argmax(axis=1)
    hits = sum(cands[g] == db.names[i] for g, i in zip(guess, unknown, strict=True))
    return {"known": n_known, "targets": len(unknown), "decoded_exactly": int(hits)}
