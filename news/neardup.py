"""Near-duplicate detection: MinHash signatures of word shingles, with LSH band keys.

A story's body (its title too when the body is short) is folded to words and cut into
overlapping 4-word shingles; 256 MinHash values estimate the Jaccard similarity of two
stories' shingle sets. The values are grouped into 32 bands of 8: two stories that agree on
any band are candidates (a lookup on an indexed column, no scan), and a candidate is a
duplicate when the estimated similarity reaches `THRESHOLD`. Hashes are stable across
processes and machines, so signatures can be stored.
"""

from __future__ import annotations

import hashlib
import struct
import zlib
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from news.text import words

FORMAT_VERSION = 2
NUM_PERM = 256
BANDS = 32
ROWS = NUM_PERM // BANDS
SHINGLE = 4
# Estimated Jaccard similarity at or above which two stories are one story. Calibrated on
# the shared corpus (benchmarks/quality.py): every listed BBC repeat scores 1.0, and
# the closest pair of distinct stories in BBC + CNN stays far below.
THRESHOLD = 0.8
# Below this many body words the title joins the text, so title-only items still compare.
SHORT_BODY = 20

_rng = np.random.default_rng(20240229)
# Fixed (seeded) hash functions h(x) = (a*x + b) mod 2**64 >> 32, a odd: multiply-shift
# universal hashing, which needs no modulo by a prime (the costly step of MinHash).
_A = _rng.integers(1, 1 << 63, NUM_PERM, dtype=np.uint64) | np.uint64(1)
_B = _rng.integers(0, 1 << 63, NUM_PERM, dtype=np.uint64)
_SHIFT = np.uint64(32)
_HEADER = struct.Struct("<BHI")


@dataclass(frozen=True, slots=True)
class NearDupSignature:
    """MinHash values of a story's shingles; `bands` are its LSH keys (0..2**63-1)."""

    values: npt.NDArray[np.uint32]
    shingles: int

    @property
    def empty(self) -> bool:
        """True for a story with no words: it is a duplicate of nothing."""
        return self.shingles == 0

    @property
    def bands(self) -> tuple[int, ...]:
        """One key per band (band number mixed in), for an indexed candidate lookup."""
        if self.empty:
            return ()
        keys = []
        for band in range(BANDS):
            chunk = self.values[band * ROWS : (band + 1) * ROWS].astype("<u4").tobytes()
            digest = hashlib.blake2b(bytes([band]) + chunk, digest_size=8).digest()
            keys.append(int.from_bytes(digest, "little") & ((1 << 63) - 1))
        return tuple(keys)

    def to_bytes(self) -> bytes:
        """A compact serialisation (header + little-endian uint32 values)."""
        header = _HEADER.pack(FORMAT_VERSION, len(self.values), self.shingles)
        return header + self.values.astype("<u4").tobytes()

    @classmethod
    def from_bytes(cls, data: bytes) -> NearDupSignature:
        """Read a signature written by `to_bytes`."""
        version, count, shingles = _HEADER.unpack_from(data)
        if version != FORMAT_VERSION or count != NUM_PERM:
            raise ValueError(f"unsupported signature (version {version}, {count} values)")
        values = np.frombuffer(data, dtype="<u4", count=count, offset=_HEADER.size)
        return cls(values.astype(np.uint32), shingles)


def _shingles(title: str, text: str) -> list[str]:
    tokens = words(text)
    if len(tokens) < SHORT_BODY:
        tokens = words(title) + tokens
    if len(tokens) < SHINGLE:
        return [" ".join(tokens)] if tokens else []
    return [" ".join(tokens[i : i + SHINGLE]) for i in range(len(tokens) - SHINGLE + 1)]


def signature(title: str, text: str) -> NearDupSignature:
    """The MinHash signature of a story (body text, plus the title when the body is short)."""
    shingles = set(_shingles(title, text))
    if not shingles:
        return NearDupSignature(np.full(NUM_PERM, 0xFFFFFFFF, dtype=np.uint32), 0)
    hashes = np.fromiter(
        (zlib.crc32(s.encode("utf-8")) for s in shingles), dtype=np.uint64, count=len(shingles)
    )
    with np.errstate(over="ignore"):  # wrapping at 2**64 is the point
        permuted = (hashes[:, None] * _A[None, :] + _B[None, :]) >> _SHIFT
    values = permuted.min(axis=0).astype(np.uint32)
    return NearDupSignature(values, len(shingles))


def similarity(a: NearDupSignature, b: NearDupSignature) -> float:
    """Estimated Jaccard similarity of two stories' shingle sets (0 if either is empty)."""
    if a.empty or b.empty:
        return 0.0
    return float(np.count_nonzero(a.values == b.values)) / NUM_PERM


def is_near_duplicate(
    a: NearDupSignature, b: NearDupSignature, threshold: float = THRESHOLD
) -> bool:
    """True when the two stories are the same story (similarity at least `threshold`)."""
    return similarity(a, b) >= threshold
