"""Counter-based draws: uniforms keyed by an event, not by a position in a random stream.

``Keyed`` draws an event's attributes from its own key, so an event that exists in two runs
(e.g. with different ``true_effect``) gets the same attributes in both. ``keys`` builds the
uint64 key of each (tag, person, day, occurrence on that day): the crisis processes use tags
0..5 (``latent.event_keys``), community contacts their own tag (``contacts.CONTACT_TAG``).
Times of day follow ``HOUR_WEIGHTS`` (evening and night heavy).
"""

from __future__ import annotations

import numpy as np

# Relative frequency of each hour of the day for crisis events (evening/night heavy).
HOUR_WEIGHTS = np.array(
    [3, 2.5, 2, 1.5, 1.2, 1, 1, 1.3, 1.8, 2.2, 2.5, 2.7,
     2.8, 2.9, 3, 3.1, 3.3, 3.6, 4, 4.2, 4.3, 4.2, 3.9, 3.5]
)  # fmt: skip
_HOUR_CDF = np.cumsum(HOUR_WEIGHTS) / HOUR_WEIGHTS.sum()


class Keyed:
    """Counter-based uniforms: the same (seed, event key, salt) always gives the same value.

    Event attributes are drawn from their own key rather than from a stream position, so an
    event that exists in two runs (e.g. with different ``true_effect``) gets the same length,
    outcome, time of day and so on in both.
    """

    def __init__(self, seed: int) -> None:
        self.base = _mix(np.array([seed & 0xFFFFFFFFFFFFFFFF], dtype=np.uint64))[0]

    def u(self, key: np.ndarray, salt: int) -> np.ndarray:
        z = np.asarray(key, dtype=np.uint64) ^ self.base
        z = _mix(z + np.uint64((salt * 0xD6E8FEB86659FD93) & 0xFFFFFFFFFFFFFFFF))
        return (z >> np.uint64(11)).astype(np.float64) * (1.0 / 9007199254740992.0)

    def child(self, key: np.ndarray, salt: int) -> np.ndarray:
        """A new key derived from ``key`` (for events caused by another event)."""
        z = np.asarray(key, dtype=np.uint64)
        return _mix(z ^ np.uint64((salt * 0x9E3779B97F4A7C15) & 0xFFFFFFFFFFFFFFFF))

    def pick(self, key: np.ndarray, salt: int, options, probs) -> np.ndarray:
        cdf = np.cumsum(np.asarray(probs, dtype=float))
        idx = np.searchsorted(cdf / cdf[-1], self.u(key, salt), side="right")
        return np.asarray(options, dtype=object)[np.minimum(idx, len(options) - 1)]

    def integers(self, key: np.ndarray, salt: int, low: int, high: int) -> np.ndarray:
        """Integers in [low, high)."""
        return low + np.floor(self.u(key, salt) * (high - low)).astype(np.int64)

    def geometric(self, key: np.ndarray, salt: int, mean: float) -> np.ndarray:
        """Geometric on 1, 2, ... with the given mean."""
        p = 1.0 / mean
        u = self.u(key, salt)
        return 1 + np.floor(np.log1p(-u) / np.log1p(-p)).astype(np.int64)

    def times(self, key: np.ndarray, salt: int, min_hour: int = 0) -> np.ndarray:
        """Seconds of the day, evening-heavy, no earlier than ``min_hour``."""
        lo = _HOUR_CDF[min_hour - 1] if min_hour else 0.0
        u = lo + self.u(key, salt) * (1 - lo)
        hour = np.minimum(np.searchsorted(_HOUR_CDF, u, side="right"), 23)
        return hour * 3600 + self.integers(key, salt + 1, 0, 3600)


def _mix(z: np.ndarray) -> np.ndarray:
    """SplitMix64 finaliser on uint64 arrays (wrap-around arithmetic is intended)."""
    z = z + np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def keys(tag: int, person: np.ndarray, day: np.ndarray) -> np.ndarray:
    person = np.asarray(person, dtype=np.int64)
    day = np.asarray(day, dtype=np.int64)
    order = np.lexsort((day, person))
    occ = np.zeros(len(person), dtype=np.int64)
    if len(person):
        sp, sd = person[order], day[order]
        new = np.ones(len(person), dtype=bool)
        new[1:] = (sp[1:] != sp[:-1]) | (sd[1:] != sd[:-1])
        grp_start = np.maximum.accumulate(np.where(new, np.arange(len(person)), 0))
        occ[order] = np.arange(len(person)) - grp_start
    key = (((person << 12) | day) << 6 | np.minimum(occ, 63)) << 4 | tag
    return key.astype(np.uint64)
