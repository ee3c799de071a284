"""Philox4x32-10 (Salmon et al. 2011, "Parallel random numbers: as easy as 1, 2, 3"; Random123, cuRAND) in
numpy, and the derivation of a parameter's key from ``(seed, name)``.

The counter is 128 bits (four 32-bit words), the key 64 bits (two words); ten rounds of two 32x32->64-bit
multiplies, with the key bumped by the Weyl constants between rounds. Verified against Random123's
known-answer vectors (tests/scale/test_philox.py).
"""

from __future__ import annotations

import hashlib

import numpy as np

from ..checks import check_seed

M0, M1 = 0xD2511F53, 0xCD9E8D57  # round multipliers
W0, W1 = 0x9E3779B9, 0xBB67AE85  # key bumps (golden ratio, sqrt(3) - 1)
MASK32 = 0xFFFFFFFF
ROUNDS = 10


def derive_key(seed: int, name: str) -> tuple[int, int]:
    """The 64-bit Philox key of parameter ``name`` under ``seed``: the 8-byte BLAKE2b digest (personalization
    ``initlab-ctr``) of ``"<seed>\\0<name>"`` in UTF-8, read as two little-endian 32-bit words. Stable across
    processes, platforms and Python versions (unlike ``hash()``)."""
    seed = check_seed(seed)
    digest = hashlib.blake2b(f"{int(seed)}\0{name}".encode(), digest_size=8, person=b"initlab-ctr").digest()
    return int.from_bytes(digest[:4], "little"), int.from_bytes(digest[4:], "little")


def round_keys(key: tuple[int, int], rounds: int = ROUNDS) -> list[tuple[int, int]]:
    """The key used by each round."""
    k0, k1 = key
    return [((k0 + r * W0) & MASK32, (k1 + r * W1) & MASK32) for r in range(rounds)]


def philox4x32(counter: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray], key: tuple[int, int],
               rounds: int = ROUNDS) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Philox4x32-``rounds`` of the counters ``(c0, c1, c2, c3)`` (arrays or scalars of 32-bit words)."""
    c0, c1, c2, c3 = (np.asarray(c, dtype=np.uint64) for c in counter)
    m0, m1, mask = np.uint64(M0), np.uint64(M1), np.uint64(MASK32)
    s32 = np.uint64(32)
    for k0, k1 in round_keys(key, rounds):
        p0 = c0 * m0
        p1 = c2 * m1
        hi0, hi1 = p0 >> s32, p1 >> s32
        c0, c1, c2, c3 = hi1 ^ c1 ^ np.uint64(k0), p1 & mask, hi0 ^ c3 ^ np.uint64(k1), p0 & mask
    return tuple(c.astype(np.uint32) for c in (c0, c1, c2, c3))  # type: ignore[return-value]
