"""Exponential backoff with full jitter, as a delay to store, never a sleep."""

from __future__ import annotations

import random


def delay(attempts: int, *, initial: float, maximum: float, rng: random.Random | None = None) -> float:
    """Seconds before attempt ``attempts + 1``: uniformly up to initial·2^attempts, capped, never below initial/2."""
    ceiling = min(maximum, initial * (2 ** min(attempts, 30)))
    return max(initial / 2, (rng or random).uniform(0, ceiling))
