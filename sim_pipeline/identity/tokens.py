"""Keyed tokens and Bloom-filter encodings: the only place raw identifiers are turned into data.

- Exact tokens: HMAC-SHA256 under the project key with a domain label per identifier kind, so an
  NHS-number token can never equal a postcode token and nothing can be reversed by brute force
  without the key (an unkeyed hash of ~10^9 NHS numbers falls in minutes). Stored as 32 hex
  characters (128 bits).
- Name encodings: Schnell-style Bloom filters of padded character bigrams, 1024 bits, 20 positions
  per bigram, each position derived from a keyed HMAC-SHA512 of the bigram (keyed hashing per
  position). Compared by Dice similarity in linkage. Stored as 256 hex characters.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field

import pandas as pd

BLOOM_BITS = 1024
BLOOM_HASHES = 20
TOKEN_HEX = 32
DEMO_KEY = b"sim-pipeline DEMO pseudonymisation key - not secret - synthetic data only"


@dataclass
class Tokeniser:
    """Keyed tokeniser. ``demo`` marks every output made with the public demo key."""

    key: bytes = field(repr=False)
    demo: bool = False

    def __post_init__(self) -> None:
        if len(self.key) < 16:
            raise ValueError("pseudonymisation key must be at least 16 bytes")

    @property
    def key_id(self) -> str:
        """A fingerprint of the key (safe to log and store; reveals nothing about the key)."""
        return hmac.new(self.key, b"sim-pipeline/key-fingerprint", hashlib.sha256).hexdigest()[:12]

    def _token(self, domain: str, value: str) -> str:
        msg = f"{domain}\x1f{value}".encode()
        return hmac.new(self.key, msg, hashlib.sha256).hexdigest()[:TOKEN_HEX]

    def tokens(self, values: pd.Series, domain: str) -> pd.Series:
        """Token per non-null value (computed once per distinct value); NA stays NA."""
        s = values.astype("string")
        mapping = {v: self._token(domain, v) for v in s.dropna().unique()}
        return s.map(mapping, na_action="ignore").astype("string")

    def _bloom(self, domain: str, name: str) -> str:
        padded = f"_{name}_"
        bits = 0
        for i in range(len(padded) - 1):
            digest = hmac.new(
                self.key, f"bf\x1f{domain}\x1f{padded[i : i + 2]}".encode(), hashlib.sha512
            ).digest()
            for j in range(BLOOM_HASHES):
                pos = int.from_bytes(digest[2 * j : 2 * j + 2], "big") % BLOOM_BITS
                bits |= 1 << pos
        return f"{bits:0{BLOOM_BITS // 4}x}"

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
