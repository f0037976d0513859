"""Keyed tokens and name encodings: the only place raw identifiers are turned into data.

- Exact tokens: HMAC-SHA256 under the project key with a domain label per identifier kind, so an
  NHS-number token can never equal a postcode token and nothing can be reversed by brute force
  without the key (an unkeyed hash of ~10^9 NHS numbers falls in minutes). Stored as 32 hex
  characters (128 bits). Names get no exact token: their encoding is deterministic under the
  key and serves for exact matching too.
- Name encodings (issue 16; docs/encoding-attacks.md has the attacks and the measurements):
  1. a keyed, field-salted Bloom filter of the padded character bigrams, BASE_BITS = 1024 bits:
     each bigram's positions come from HMAC-SHA512(key, field, bigram, counter), so a
     given-name filter has nothing in common with a family-name one;
  2. length-normalised: a name of n distinct bigrams sets the first ceil(710 / n) positions of
     each bigram, so every base filter is about half full whatever the name's length (shared
     bigrams of names of different lengths still share their first positions);
  3. a keyed diffusion layer (Armknecht, Heng and Schnell, PoPETs 2023): stored bit i is the
     XOR of the base bits at DIFFUSION_TAPS = 3 keyed positions taps[i] (three keyed
     permutations, so every base bit feeds three stored bits). No stored bit is a Bloom-filter
     bit, no two stored bits are complements, and the weight (~50% of 1024) does not track the
     name's length. A half-full base makes each stored bit depend on many names' bigrams: 200
     known (name, encoding) pairs place 43 of 289 other family names by similarity, against
     224 with a base 29% full (docs/encoding-attacks.md).
  The old balanced filter (base plus complement under one permutation) gave its 512 bit pairs
  away by correlation and, with them, the name length and the bigram positions; it survives
  only as a labelled reference in `identity.attacks`.
  Deterministic under a key (same name, same encoding), memoised per distinct name and
  vectorised over a batch of names. Compared by Hamming similarity (1 - differing bits / 1024)
  in linkage. Stored as 256 hex characters.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from sim_pipeline.identity.distinct import per_distinct

BLOOM_BITS = 1024  # stored encoding (after diffusion), 16 x 64-bit words
BASE_BITS = 1024  # keyed, length-normalised Bloom filter before diffusion
BASE_SET_TARGET = 710  # bigram positions per name, whatever its length: base ~50% full
MAX_POSITIONS = 384  # positions drawn per bigram (a 1-letter name has 2 bigrams: 355 each)
DIFFUSION_TAPS = 3  # each stored bit = XOR of this many keyed-chosen base bits (~50% set)
TOKEN_HEX = 32
DEMO_KEY = b"sim-pipeline DEMO pseudonymisation key - not secret - synthetic data only"


def positions_per_bigram(n_bigrams: int) -> int:
    """Positions each bigram sets in a name of ``n_bigrams`` bigrams: the base filter is filled
    to about half whatever the name's length (the first k of the bigram's keyed position list,
    so names of different lengths still share positions for shared bigrams)."""
    return min(MAX_POSITIONS, -(-BASE_SET_TARGET // max(n_bigrams, 1)))


def _hmac_pads(key: bytes, digest) -> tuple:
    """HMAC's inner and outer hash states with the key absorbed (RFC 2104: the key hashed if
    longer than a block, padded with zeros, XORed with 0x36 and 0x5c), so a token is two state
    copies and two updates: the same bytes as `hmac.new`, in about half its time per message
    (`hmac` copies its object and builds a new one for each digest)."""
    block = digest().block_size
    if len(key) > block:
        key = digest(key).digest()
    key = key.ljust(block, b"\0")
    return digest(key.translate(hmac.trans_36)), digest(key.translate(hmac.trans_5C))


@dataclass
class Tokeniser:
    """Keyed tokeniser. ``demo`` marks every output made with the public demo key."""

    key: bytes = field(repr=False)
    demo: bool = False
    # The key's id from its key text (`identity.keys`): the stored fingerprint. Without one
    # (the public demo key, keys made in tests) the fingerprint is derived from the key.
    fingerprint: str | None = None

    def __post_init__(self) -> None:
        if len(self.key) < 32:
            raise ValueError("pseudonymisation key must be at least 32 bytes")
        # Keyed hash states with the key already absorbed; copied per message (cheaper than new):
        # HMAC-SHA512 for the encodings' positions, HMAC-SHA256's two pads for the tokens.
        self._sha512 = hmac.new(self.key, digestmod=hashlib.sha512)
        self._sha256_pads = _hmac_pads(self.key, hashlib.sha256)
        # Memo of results under this key: tokens and encodings repeat across months.
        self._token_memo: dict[str, dict[str, str]] = {}  # domain -> value -> token
        self._bigram_positions: dict[tuple[str, str], np.ndarray] = {}
        self._bloom_memo: dict[tuple[str, str], str] = {}
        self._taps: dict[str, np.ndarray] = {}

    @property
    def key_id(self) -> str:
        """The key's fingerprint (safe to log and store): its key id, which is independent of
        the secret, so nothing stored tests a guessed key."""
        if self.fingerprint:
            return self.fingerprint
        return hmac.new(self.key, b"sim-pipeline/key-fingerprint", hashlib.sha256).hexdigest()[:12]

    def _tokens_of(self, values: pd.Series, domain: str) -> pd.Series:
        """Token per value of a Series of distinct non-missing texts (HMAC-SHA256 of
        ``domain \x1f value``, the first 128 bits in hex), memoised under this key."""
        memo = self._token_memo.setdefault(domain, {})
        prefix = f"{domain}\x1f".encode()
        inner0, outer0 = self._sha256_pads
        out = []
        for value in values.tolist():
            token = memo.get(value)
            if token is None:
                # HMAC-SHA256 from its two keyed states (RFC 2104), as `hmac` computes it
                inner = inner0.copy()
                inner.update(prefix + value.encode())
                outer = outer0.copy()
                outer.update(inner.digest())
                token = memo[value] = outer.hexdigest()[:TOKEN_HEX]
            out.append(token)
        return pd.Series(out, index=values.index, dtype="string")

    def tokens(self, values: pd.Series, domain: str) -> pd.Series:
        """Token per non-null value (computed once per distinct value); NA stays NA."""
        return per_distinct(values, lambda uniques: self._tokens_of(uniques, domain))

    def _positions(self, domain: str, bigram: str) -> np.ndarray:
        """The bigram's MAX_POSITIONS keyed base positions (HMAC-SHA512 in counter mode, salted
        by field): the first k are used, k depending on the name's bigram count."""
        pos = self._bigram_positions.get((domain, bigram))
        if pos is None:
            chunks = []
            for counter in range(-(-MAX_POSITIONS // 32)):
                h = self._sha512.copy()
                h.update(f"bf2\x1f{domain}\x1f{bigram}\x1f{counter}".encode())
                chunks.append(np.frombuffer(h.digest(), dtype=">u2"))
            pos = (np.concatenate(chunks)[:MAX_POSITIONS] % BASE_BITS).astype(np.int64)
            self._bigram_positions[(domain, bigram)] = pos
        return pos

    def _diffusion(self, domain: str) -> np.ndarray:
        """Keyed diffusion taps per field: BLOOM_BITS x DIFFUSION_TAPS distinct base positions
        (every base bit feeds exactly DIFFUSION_TAPS stored bits)."""
        taps = self._taps.get(domain)
        if taps is None:
            h = self._sha512.copy()
            h.update(f"bf2-diffusion\x1f{domain}".encode())
            seed = np.frombuffer(h.digest(), dtype=np.uint32)
            rng = np.random.Generator(np.random.PCG64(seed))
            # DIFFUSION_TAPS independent keyed permutations: column j of output bit i is
            # perm_j[i]; rows with a repeated position are re-drawn so every bit mixes t bits.
            taps = np.stack([rng.permutation(BASE_BITS) for _ in range(DIFFUSION_TAPS)], 1)
            for _ in range(100):
                bad = np.flatnonzero([len(set(r)) < DIFFUSION_TAPS for r in taps.tolist()])
                if not len(bad):
                    break
                col = rng.integers(1, DIFFUSION_TAPS)
                other = rng.permutation(BASE_BITS)[: len(bad)]
                taps[bad, col], taps[other, col] = taps[other, col], taps[bad, col]
            self._taps[domain] = taps
        return taps

    def base_filters(self, names: list[str], domain: str) -> np.ndarray:
        """Length-normalised keyed Bloom filters (bool, len(names) x BASE_BITS) of the padded
        bigrams of each name: not stored, only diffused (exposed for the attack suite).
        Vectorised: one gather and one scatter per batch of names."""
        base = np.zeros((len(names), BASE_BITS), dtype=bool)
        index: dict[str, int] = {}
        rows, gids, ks = [], [], []
        for i, name in enumerate(names):
            padded = f"_{name}_"
            grams = {padded[j : j + 2] for j in range(len(padded) - 1)}
            k = positions_per_bigram(len(grams))
            for g in grams:
                rows.append(i)
                gids.append(index.setdefault(g, len(index)))
                ks.append(k)
        if not rows:
            return base
        table = np.stack([self._positions(domain, g) for g in index])  # bigram x MAX_POSITIONS
        r, gid, k = np.array(rows), np.array(gids), np.array(ks)
        for s in range(0, len(r), 50_000):  # bounded memory: 50k bigrams x 192 positions
            take = np.arange(MAX_POSITIONS) < k[s : s + 50_000, None]
            pos = table[gid[s : s + 50_000]]
            base[np.broadcast_to(r[s : s + 50_000, None], pos.shape)[take], pos[take]] = True
        return base

    def encode(self, names: list[str], domain: str) -> np.ndarray:
        """Stored encodings (bool, len(names) x BLOOM_BITS): the keyed diffusion of each base
        filter, bit i = XOR of the base bits at taps[i]."""
        base = self.base_filters(names, domain)
        taps = self._diffusion(domain)
        out = base[:, taps[:, 0]].copy()
        for j in range(1, DIFFUSION_TAPS):
            out ^= base[:, taps[:, j]]
        return out

    def _encodings_of(self, names: pd.Series, domain: str) -> pd.Series:
        """Encoding (hex) per name of a Series of distinct names, memoised under this key."""
        todo = [v for v in names.tolist() if (domain, v) not in self._bloom_memo]
        if todo:
            packed = np.packbits(self.encode(todo, domain), axis=1)
            for v, row in zip(todo, packed, strict=True):
                self._bloom_memo[(domain, v)] = row.tobytes().hex()
        out = [self._bloom_memo[(domain, v)] for v in names.tolist()]
        return pd.Series(out, index=names.index, dtype="string")

    def bloom_filters(self, names: pd.Series, domain: str) -> pd.Series:
        """Encoding (hex, 256 characters) per normalised name; NA stays NA. Computed once per
        distinct name (memoised under this key)."""
        return per_distinct(names, lambda uniques: self._encodings_of(uniques, domain))


def similarity(a_hex: str, b_hex: str) -> float:
    """Hamming similarity of two hex encodings, 1 - differing bits / bits (what linkage uses)."""
    a, b = int(a_hex, 16), int(b_hex, 16)
    return 1.0 - (a ^ b).bit_count() / (len(a_hex) * 4)


def dice(a_hex: str, b_hex: str) -> float:
    """Dice similarity of two hex Bloom filters (diagnostics; linkage uses `similarity`)."""
    a, b = int(a_hex, 16), int(b_hex, 16)
    total = a.bit_count() + b.bit_count()
    return 0.0 if total == 0 else 2 * (a & b).bit_count() / total


class ClearTokeniser(Tokeniser):
    """Benchmark anchor only: "tokens" and "encodings" are the normalised cleartext values (the
    name columns hold the names). Never used by the pipeline; `sim-pipeline bench linkage` uses
    it to run the same linkage engine on cleartext identifiers for comparison."""

    def __init__(self) -> None:
        super().__init__(key=b"cleartext-benchmark-anchor-only (no secret)", demo=True)

    def tokens(self, values: pd.Series, domain: str) -> pd.Series:
        return values.astype("string")

    def bloom_filters(self, names: pd.Series, domain: str) -> pd.Series:
        return names.astype("string")
