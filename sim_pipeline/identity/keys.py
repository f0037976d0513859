"""Project keys: made by `sim-pipeline keygen`, checked before any token is made.

A project key is ``simkey1.<key id>.<secret>``: 32 bytes from the operating system's CSPRNG
(``secrets``), base64url, and a key id of 16 hex characters drawn at random beside it. The key
id is what the warehouse, the ledger and the run log store as the key's fingerprint: it is not
derived from the secret, so nothing stored lets anyone test a guessed key offline (a hash of the
key would: about 0.5 million guesses a second in pure Python against a passphrase). A guess at
the secret itself is a guess at 256 random bits.

Refused, with a message that names the rule and never echoes the key: anything not in this
form (passphrases, short or hand-made strings, the public demo key's text), a secret that is not
exactly 32 bytes, and a secret with few distinct bytes (a hand-made "aaaa..." in the right form:
32 random bytes have fewer than 12 distinct values with probability below 10^-20).
"""

from __future__ import annotations

import base64
import binascii
import re
import secrets

KEY_PREFIX = "simkey1"
SECRET_BYTES = 32
MIN_DISTINCT_BYTES = 12
_FORM = re.compile(rf"{KEY_PREFIX}\.([0-9a-f]{{16}})\.([A-Za-z0-9_-]{{43}})")


class KeyRejected(ValueError):
    """The key text is not a usable project key (the message never holds the key)."""


def generate_key() -> str:
    """A new project key (``simkey1.<id>.<secret>``) from the CSPRNG."""
    secret = base64.urlsafe_b64encode(secrets.token_bytes(SECRET_BYTES)).rstrip(b"=").decode()
    return f"{KEY_PREFIX}.{secrets.token_hex(8)}.{secret}"


def parse_key(text: str) -> tuple[bytes, str]:
    """(secret, key id) of a project key; `KeyRejected` naming the rule otherwise."""
    m = _FORM.fullmatch(text.strip())
    if m is None:
        raise KeyRejected(
            f"not a project key made by `sim-pipeline keygen` (expected {KEY_PREFIX}.<16 hex "
            "characters>.<43 base64url characters>): passphrases and hand-made keys are refused"
        )
    try:
        secret = base64.urlsafe_b64decode(m.group(2) + "=")
    except (binascii.Error, ValueError):
        raise KeyRejected("the key's secret is not valid base64url") from None
    if len(secret) != SECRET_BYTES:
        raise KeyRejected(f"the key's secret is not {SECRET_BYTES} bytes")
    if len(set(secret)) < MIN_DISTINCT_BYTES:
        raise KeyRejected(
            "the key's secret has too few distinct bytes to be random: make one with "
            "`sim-pipeline keygen`"
        )
    return secret, m.group(1)
