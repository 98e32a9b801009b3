"""The LSH band keys of every stored story, held in memory by the process that imports:
finding a batch's candidate near-duplicates is one numpy search, and storing a story adds
one small BLOB instead of a row per band to a B-tree."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import numpy.typing as npt

Keys = npt.NDArray[np.int64]


def pack_bands(bands: Sequence[int]) -> bytes:
    """A story's band keys as a BLOB (little-endian int64)."""
    return np.asarray(bands, dtype="<i8").tobytes()


class BandIndex:
    """Band key -> story ids: a sorted array of everything merged so far, plus a dict of
    recent additions (merged once it grows, so that adding stays cheap)."""

    def __init__(self) -> None:
        self._keys: Keys = np.empty(0, dtype=np.int64)
        self._ids: Keys = np.empty(0, dtype=np.int64)
        self._recent: dict[int, list[int]] = {}
        self._recent_count = 0
        self.max_id = 0  # the highest story id known: later ones are loaded incrementally

    def __len__(self) -> int:
        return len(self._keys) + self._recent_count

    def add(self, story_id: int, bands: Sequence[int]) -> None:
        """Index one story's band keys."""
        for band in bands:
            self._recent.setdefault(band, []).append(story_id)
        self._recent_count += len(bands)
        self.max_id = max(self.max_id, story_id)
        if self._recent_count > max(50_000, len(self._keys) // 4):
            self._merge()

    def add_blobs(self, rows: Iterable[tuple[int, bytes]]) -> None:
        """Index stories stored by any process: (story id, pack_bands BLOB)."""
        ids: list[Keys] = []
        keys: list[Keys] = []
        for story_id, blob in rows:
            bands = np.frombuffer(blob, dtype="<i8").astype(np.int64)
            keys.append(bands)
            ids.append(np.full(len(bands), story_id, dtype=np.int64))
            self.max_id = max(self.max_id, story_id)
        if keys:
            self._merge(np.concatenate(keys), np.concatenate(ids))

    def candidates(self, bands: Iterable[int]) -> set[int]:
        """Ids of the stories sharing at least one of `bands`."""
        wanted = np.unique(np.fromiter(bands, dtype=np.int64))
        found: set[int] = set()
        if len(self._keys) and len(wanted):
            start = np.searchsorted(self._keys, wanted, side="left")
            end = np.searchsorted(self._keys, wanted, side="right")
            for low, high in zip(start[start < end], end[start < end], strict=True):
                found.update(self._ids[low:high].tolist())
        for band in wanted.tolist():
            found.update(self._recent.get(band, ()))
        return found

    def _merge(self, keys: Keys | None = None, ids: Keys | None = None) -> None:
        parts_k = [self._keys]
        parts_i = [self._ids]
        if self._recent:
            parts_k.append(
                np.fromiter((k for k, v in self._recent.items() for _ in v), dtype=np.int64)
            )
            parts_i.append(
                np.fromiter((i for v in self._recent.values() for i in v), dtype=np.int64)
            )
        if keys is not None and ids is not None:
            parts_k.append(keys)
            parts_i.append(ids)
        all_keys = np.concatenate(parts_k)
        order = np.argsort(all_keys, kind="stable")
        self._keys = all_keys[order]
        self._ids = np.concatenate(parts_i)[order]
        self._recent = {}
        self._recent_count = 0
