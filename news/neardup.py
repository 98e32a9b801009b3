"""Near-duplicate detection: MinHash signatures of word shingles, with LSH band keys.

A story's body (its title too when the body is short) is folded to words and cut into
overlapping 4-word shingles; 256 MinHash values estimate the Jaccard similarity of two
stories' shingle sets. The values are grouped into 32 bands of 8: two stories that agree on
any band are candidates (a lookup on an indexed column, no scan), and a candidate is a
duplicate when the estimated similarity reaches `THRESHOLD`. Hashes are stable across
processes and machines, so signatures can be stored.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from news.text import words

FORMAT_VERSION = 3
NUM_PERM = 256
# LSH bands are built from the first BANDS * ROWS values: 16 bands of 4 find a pair at
# similarity 0.8 with probability 0.9998 (0.5: 0.64, 0.1: 0.002), with half the index rows
# of 32 bands of 8; all NUM_PERM values still estimate the similarity of a candidate.
BANDS = 16
ROWS = 4
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
_BAND_MUL = _rng.integers(1, 1 << 63, ROWS, dtype=np.uint64) | np.uint64(1)
_BAND_SALT = np.arange(BANDS, dtype=np.uint64) * np.uint64(0x9E3779B97F4A7C15)
_HEADER = struct.Struct("<BHI")


@dataclass(frozen=True, slots=True)
class NearDupSignature:
    """MinHash values of a story's shingles; `bands` are its LSH keys (0..2**63-1),
    computed once with the signature."""

    values: npt.NDArray[np.uint32]
    shingles: int
    bands: tuple[int, ...] = field(default=(), compare=False)

    @property
    def empty(self) -> bool:
        """True for a story with no words: it is a duplicate of nothing."""
        return self.shingles == 0

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
        return _signed(values.astype(np.uint32), shingles)


def _band_keys(values: npt.NDArray[np.uint32]) -> tuple[int, ...]:
    """One key per band of ROWS values, the band number mixed in: a fixed multiply-add
    hash in wrapping 64-bit arithmetic, identical on every machine."""
    rows = values[: BANDS * ROWS].reshape(BANDS, ROWS).astype(np.uint64)
    with np.errstate(over="ignore"):
        keys = (rows * _BAND_MUL).sum(axis=1, dtype=np.uint64) + _BAND_SALT
        keys ^= keys >> np.uint64(29)
        keys *= np.uint64(0xBF58476D1CE4E5B9)
        keys ^= keys >> np.uint64(32)
    return tuple(int(k) & ((1 << 63) - 1) for k in keys)


def _signed(values: npt.NDArray[np.uint32], shingles: int) -> NearDupSignature:
    return NearDupSignature(values, shingles, _band_keys(values) if shingles else ())


_WORD_HASHES: dict[str, int] = {}


def _word_hash(word: str) -> int:
    """CRC-32 of a word (stable across processes), remembered: news repeats its words."""
    found = _WORD_HASHES.get(word)
    if found is None:
        if len(_WORD_HASHES) > 200_000:
            _WORD_HASHES.clear()
        found = _WORD_HASHES[word] = zlib.crc32(word.encode("utf-8"))
    return found


def _shingle_hashes(title_words: list[str], body_words: list[str]) -> npt.NDArray[np.uint64]:
    """Distinct hashes of the story's overlapping SHINGLE-word runs: each word hashed
    once, the runs combined with numpy."""
    tokens = body_words if len(body_words) >= SHORT_BODY else title_words + body_words
    if not tokens:
        return np.zeros(0, dtype=np.uint64)
    hashed = np.fromiter(map(_word_hash, tokens), dtype=np.uint64, count=len(tokens))
    if len(hashed) < SHINGLE:
        hashed = np.concatenate([hashed, np.zeros(SHINGLE - len(hashed), dtype=np.uint64)])
    runs = len(hashed) - SHINGLE + 1
    combined = np.zeros(runs, dtype=np.uint64)
    with np.errstate(over="ignore"):
        for offset in range(SHINGLE):
            combined = combined * np.uint64(0x100000001B3) + hashed[offset : offset + runs]
    return np.unique(combined)


def signature(title: str, text: str) -> NearDupSignature:
    """The MinHash signature of a story (body text, plus the title when the body is short)."""
    return signature_of_words(words(title), words(text))


def signature_of_words(title_words: list[str], body_words: list[str]) -> NearDupSignature:
    """`signature` for a story already split into folded words (news.text.words)."""
    hashes = _shingle_hashes(title_words, body_words)
    if not len(hashes):
        return NearDupSignature(np.full(NUM_PERM, 0xFFFFFFFF, dtype=np.uint32), 0)
    # In place, in one buffer: (a*x + b) mod 2**64 >> 32 for every hash and permutation.
    permuted = np.empty((len(hashes), NUM_PERM), dtype=np.uint64)
    np.multiply(hashes[:, None], _A[None, :], out=permuted)
    permuted += _B
    permuted >>= _SHIFT
    return _signed(permuted.min(axis=0).astype(np.uint32), len(hashes))


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


def containment(a: NearDupSignature, b: NearDupSignature) -> float:
    """Estimated share of the smaller story's shingles found in the larger one (0 if either
    is empty): high for a feed's teaser of a full story, from the Jaccard estimate and the
    two shingle counts."""
    if a.empty or b.empty:
        return 0.0
    jaccard = similarity(a, b)
    shared = jaccard * (a.shingles + b.shingles) / (1 + jaccard)
    return min(1.0, shared / min(a.shingles, b.shingles))


def same_content(a: NearDupSignature, b: NearDupSignature, threshold: float = THRESHOLD) -> bool:
    """True when two stories at one address carry one text: near-duplicates, or one (a
    teaser) contained in the other."""
    return is_near_duplicate(a, b, threshold) or containment(a, b) >= threshold
