"""What the attack suite (`identity.attacks`) attacks: the two schemes (``legacy``, REFERENCE
ONLY, and ``diffused``, the pipeline's encoding), the public name-frequency list the attacker
holds, and the attacked database drawn from it."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from typing import Any

import numpy as np

from sim_pipeline.identity.tokens import Tokeniser

# --------------------------------------------------------------------------------------------
# Schemes
# --------------------------------------------------------------------------------------------


class LegacyScheme:
    """REFERENCE ONLY: the pre-issue-16 balanced encoding, kept to show the attacks work.

    Base 512 bits, 15 positions per bigram from HMAC-SHA512(field, bigram), concatenated with its
    complement, shuffled by one keyed permutation per field. Never used by the pipeline."""

    name = "legacy"
    bits = 1024

    def __init__(self, key: bytes, domain: str):
        self.key, self.domain = key, domain
        h = hmac.new(key, f"bf-permutation\x1f{domain}".encode(), hashlib.sha512)
        seed = np.frombuffer(h.digest(), dtype=np.uint32)
        self.permutation = np.random.Generator(np.random.PCG64(seed)).permutation(1024)
        self._masks: dict[str, np.ndarray] = {}

    def _positions(self, bigram: str) -> np.ndarray:
        pos = self._masks.get(bigram)
        if pos is None:
            d = hmac.new(self.key, f"bf\x1f{self.domain}\x1f{bigram}".encode(), hashlib.sha512)
            digest = d.digest()
            pos = np.array(
                [int.from_bytes(digest[2 * j : 2 * j + 2], "big") % 512 for j in range(15)]
            )
            self._masks[bigram] = pos
        return pos

    def encode(self, names: list[str]) -> np.ndarray:
        base = np.zeros((len(names), 512), dtype=bool)
        for i, name in enumerate(names):
            for g in bigrams(name):
                base[i, self._positions(g)] = True
        return np.concatenate([base, ~base], axis=1)[:, self.permutation]


class DiffusedScheme:
    """The pipeline's encoding, through `Tokeniser.encode` (the same code staging runs)."""

    name = "diffused"
    bits = 1024

    def __init__(self, key: bytes, domain: str):
        self.tokeniser, self.domain = Tokeniser(key), domain

    def encode(self, names: list[str]) -> np.ndarray:
        return self.tokeniser.encode(names, self.domain)


SCHEMES = {"legacy": LegacyScheme, "diffused": DiffusedScheme}


# --------------------------------------------------------------------------------------------
# The public list and the attacked database
# --------------------------------------------------------------------------------------------


def bigrams(name: str) -> list[str]:
    padded = f"_{name}_"
    return [padded[i : i + 2] for i in range(len(padded) - 1)]


def norm(name: str) -> str:
    return "".join(ch for ch in name.upper() if "A" <= ch <= "Z")


def public_list(kind: str = "family") -> tuple[list[str], np.ndarray]:
    """(normalised names, frequency) from the generator's lists: origin shares from its ethnic
    mix, Zipf weights 1/rank**s within an origin (s 0.9 family, 0.8 given), as it samples."""
    from sim_pipeline.synthetic.names import ETHNIC_MIX, ORIGINS

    share: dict[str, float] = {}
    for _, p, origins in ETHNIC_MIX:
        for o in origins:
            share[o] = share.get(o, 0.0) + p / len(origins)
    weights: dict[str, float] = {}
    for o in sorted(ORIGINS):
        male, female, family = ORIGINS[o]
        pools = [(family, 0.9, 1.0)] if kind == "family" else [(male, 0.8, 0.5), (female, 0.8, 0.5)]
        for pool, s, part in pools:
            w = 1.0 / np.arange(1, len(pool) + 1) ** s
            w = w / w.sum() * share.get(o, 0.0) * part
            for name, x in zip(pool, w, strict=True):
                n = norm(name)
                if n:
                    weights[n] = weights.get(n, 0.0) + float(x)
    names = sorted(weights, key=lambda n: (-weights[n], n))
    freq = np.array([weights[n] for n in names])
    return names, freq / freq.sum()


@dataclass
class Database:
    """The attacked database: one encoding per record, grouped by distinct name."""

    names: list[str]  # distinct names (the truth, hidden from the attacker)
    counts: np.ndarray  # records per distinct name
    enc: np.ndarray  # bool, distinct x bits (what the attacker holds, with the counts)


def database(scheme: Any, public: tuple[list[str], np.ndarray], records: int, seed: int):
    names, freq = public
    rng = np.random.default_rng(seed)
    drawn = rng.choice(len(names), size=records, p=freq)
    idx, counts = np.unique(drawn, return_counts=True)
    distinct = [names[i] for i in idx]
    return Database(distinct, counts, scheme.encode(distinct))
