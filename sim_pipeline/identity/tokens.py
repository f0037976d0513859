"""Keyed tokens and Bloom-filter encodings: the only place raw identifiers are turned into data.

- Exact tokens: HMAC-SHA256 under the project key with a domain label per identifier kind, so an
  NHS-number token can never equal a postcode token and nothing can be reversed by brute force
  without the key (an unkeyed hash of ~10^9 NHS numbers falls in minutes). Stored as 32 hex
  characters (128 bits).
- Name encodings: hardened Schnell-style Bloom filters (see docs/architecture.md, "Encoding
  hardening"):
  * padded character bigrams hashed into a 512-bit base filter at 15 positions each, every
    position taken from a keyed HMAC-SHA512 of (field, bigram): keyed hashing per position, and a
    different salt per field, so a given-name filter cannot be compared with a family-name one;
  * balanced (Schnell 2016): the base filter is concatenated with its complement, so every stored
    filter has exactly 512 of its 1024 bits set whatever the name's length (no length leak);
  * the 1024 positions are shuffled by a keyed permutation per field, so which half is the
    complement is not visible without the key.
  Compared by Dice similarity in linkage (for balanced filters Dice = 1 - Hamming(base)/512).
  Stored as 256 hex characters.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

BLOOM_BITS = 1024  # stored (balanced) filter
BLOOM_BASE_BITS = BLOOM_BITS // 2  # base filter before balancing
BLOOM_HASHES = 15
TOKEN_HEX = 32
DEMO_KEY = b"sim-pipeline DEMO pseudonymisation key - not secret - synthetic data only"


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
        # Keyed hash states with the key already absorbed; copied per message (cheaper than new).
        self._sha256 = hmac.new(self.key, digestmod=hashlib.sha256)
        self._sha512 = hmac.new(self.key, digestmod=hashlib.sha512)
        # Memo of results under this key: tokens and Bloom filters repeat across months.
        self._token_memo: dict[tuple[str, str], str] = {}
        self._bigram_masks: dict[tuple[str, str], int] = {}
        self._bloom_memo: dict[tuple[str, str], str] = {}
        self._permutations: dict[str, np.ndarray] = {}

    @property
    def key_id(self) -> str:
        """The key's fingerprint (safe to log and store): its key id, which is independent of
        the secret, so nothing stored tests a guessed key."""
        if self.fingerprint:
            return self.fingerprint
        return hmac.new(self.key, b"sim-pipeline/key-fingerprint", hashlib.sha256).hexdigest()[:12]

    def _token(self, domain: str, value: str) -> str:
        memo_key = (domain, value)
        token = self._token_memo.get(memo_key)
        if token is None:
            h = self._sha256.copy()
            h.update(f"{domain}\x1f{value}".encode())
            token = self._token_memo[memo_key] = h.hexdigest()[:TOKEN_HEX]
        return token

    def tokens(self, values: pd.Series, domain: str) -> pd.Series:
        """Token per non-null value (computed once per distinct value); NA stays NA."""
        s = values.astype("string")
        mapping = {v: self._token(domain, v) for v in s.dropna().unique()}
        return s.map(mapping, na_action="ignore").astype("string")

    def _bigram_mask(self, domain: str, bigram: str) -> int:
        """The BLOOM_HASHES bit positions of one bigram, each from the keyed HMAC-SHA512."""
        mask = self._bigram_masks.get((domain, bigram))
        if mask is None:
            h = self._sha512.copy()
            h.update(f"bf\x1f{domain}\x1f{bigram}".encode())
            digest = h.digest()
            mask = 0
            for j in range(BLOOM_HASHES):
                pos = int.from_bytes(digest[2 * j : 2 * j + 2], "big") % BLOOM_BASE_BITS
                mask |= 1 << pos
            self._bigram_masks[(domain, bigram)] = mask
        return mask

    def _permutation(self, domain: str) -> np.ndarray:
        """Keyed permutation of the 1024 stored positions (one per field)."""
        perm = self._permutations.get(domain)
        if perm is None:
            h = self._sha512.copy()
            h.update(f"bf-permutation\x1f{domain}".encode())
            seed = np.frombuffer(h.digest(), dtype=np.uint32)
            perm = np.random.Generator(np.random.PCG64(seed)).permutation(BLOOM_BITS)
            self._permutations[domain] = perm
        return perm

    def _bloom(self, domain: str, name: str) -> str:
        memo = self._bloom_memo.get((domain, name))
        if memo is None:
            padded = f"_{name}_"
            base = 0
            for i in range(len(padded) - 1):
                base |= self._bigram_mask(domain, padded[i : i + 2])
            full = BLOOM_BASE_BITS * 2
            raw = np.frombuffer(base.to_bytes(BLOOM_BASE_BITS // 8, "big"), dtype=np.uint8)
            bits = np.unpackbits(raw)
            balanced = np.concatenate([bits, 1 - bits])[self._permutation(domain)]
            assert balanced.size == full
            memo = self._bloom_memo[(domain, name)] = np.packbits(balanced).tobytes().hex()
        return memo

    def bloom_filters(self, names: pd.Series, domain: str) -> pd.Series:
        """Bloom-filter encoding (hex) per normalised name; NA stays NA."""
        s = names.astype("string")
        mapping = {v: self._bloom(domain, v) for v in s.dropna().unique()}
        return s.map(mapping, na_action="ignore").astype("string")


def dice(a_hex: str, b_hex: str) -> float:
    """Dice similarity of two hex Bloom filters (used in tests and linkage diagnostics)."""
    a, b = int(a_hex, 16), int(b_hex, 16)
    total = a.bit_count() + b.bit_count()
    return 0.0 if total == 0 else 2 * (a & b).bit_count() / total


class ClearTokeniser(Tokeniser):
    """Benchmark anchor only: "tokens" are the normalised cleartext values and there are no
    Bloom filters. Never used by the pipeline; `sim-pipeline bench linkage` uses it to run the
    same linkage engine on cleartext identifiers for comparison."""

    def __init__(self) -> None:
        super().__init__(key=b"cleartext-benchmark-anchor-only (no secret)", demo=True)

    def tokens(self, values: pd.Series, domain: str) -> pd.Series:
        return values.astype("string")

    def bloom_filters(self, names: pd.Series, domain: str) -> pd.Series:
        return pd.Series(pd.NA, index=names.index, dtype="string")
