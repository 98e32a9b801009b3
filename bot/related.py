"""The related-stories index as the bot and the CLI use it: the model fitted in a child
process (scikit-learn's memory never enters the bot), stories embedded as they arrive
(no rebuild), similar stories found in memory.

    python -m bot.related DB   fits the model on DB's stories and stores it
"""

from __future__ import annotations

import asyncio
import logging
import random
import sys
import time
from dataclasses import dataclass, replace

import numpy as np

from news.related import RelatedIndex, RelatedModel, pack_vector, story_text, unpack_vector
from storage import Store

log = logging.getLogger(__name__)

EMBED_BATCH = 1000
# How long a loaded index is trusted before the database is asked for news.
REFRESH_SECONDS = 30.0


@dataclass(frozen=True, slots=True)
class RelatedStatus:
    """What `ensure_model` did."""

    fitted: bool
    embedded: int
    seconds: float


async def fit_in_child(store: Store) -> None:
    """Fit the model on the store's stories in a child process and store it there."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot.related", str(store.path)
    )
    if await process.wait() != 0:
        raise RuntimeError(f"fitting the related-stories model failed ({process.returncode})")


async def embed_missing(store: Store, model: RelatedModel) -> int:
    """Embed every story the model has not embedded yet; returns how many."""
    done = 0
    while batch := await store.stories_without_vectors(EMBED_BATCH):
        texts = [story_text(title, body.split("\n\n")) for _, title, body in batch]
        vectors = await asyncio.to_thread(model.embed, texts)
        await store.save_vectors(
            [
                (story_id, pack_vector(v))
                for (story_id, _, _), v in zip(batch, vectors, strict=True)
            ]
        )
        done += len(batch)
    return done


async def ensure_model(store: Store) -> RelatedStatus:
    """Fit the model when there is none or the archive has doubled since, then embed the
    stories it has not seen. Cheap when everything is up to date."""
    started = time.perf_counter()
    stories = await store.count_stories()
    stored = await store.related_model()
    fitted = False
    if stories >= 2 and (
        stored is None or RelatedModel.from_bytes(stored[0]).should_refit(stories)
    ):
        await fit_in_child(store)
        stored = await store.related_model()
        fitted = True
    if stored is None:
        return RelatedStatus(False, 0, time.perf_counter() - started)
    embedded = await embed_missing(store, RelatedModel.from_bytes(stored[0]))
    return RelatedStatus(fitted, embedded, time.perf_counter() - started)


class RelatedStories:
    """The in-memory index of one process, kept in step with the database."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._model: RelatedModel | None = None
        self._index: RelatedIndex | None = None
        self._fitted_at: object = None
        self._checked = 0.0
        self._lock = asyncio.Lock()

    async def similar(self, story_id: int, k: int = 5) -> list[int] | None:
        """Ids of the `k` stories most similar to `story_id` (never the story itself nor a
        near-duplicate of it); None while no model has been fitted."""
        async with self._lock:
            if self._index is None or story_id not in self._index or self._stale():
                await self._refresh()
        if self._index is None or story_id not in self._index:
            return None
        return [i for i, _ in self._index.similar(story_id, k)]

    def _stale(self) -> bool:
        return time.monotonic() - self._checked > REFRESH_SECONDS

    async def _refresh(self) -> None:
        store = self._store
        self._checked = time.monotonic()
        fitted_at = await store.related_fitted_at()
        if fitted_at is None:
            self._model = self._index = None
            return
        if fitted_at != self._fitted_at or self._model is None:
            stored = await store.related_model()
            assert stored is not None
            self._model = RelatedModel.from_bytes(stored[0])
            self._index = None
            self._fitted_at = fitted_at
        # New stories join without a rebuild: embed what no one embedded yet, then load
        # every vector this index lacks (other processes embed too).
        await embed_missing(store, self._model)
        if self._index is None:
            self._index = RelatedIndex(self._model.dims)
            self._index.reserve(await store.count_stories() + 1000)
        known = self._index
        rows = [(i, v) for i, v in await store.vectors() if i not in known]
        if rows:
            known.add([i for i, _ in rows], np.stack([unpack_vector(v) for _, v in rows]))


async def _fit(path: str) -> None:
    store = await Store.open(path)
    try:
        ids = await store.story_ids()
        count = len(ids)
        sample = sorted(random.Random(0).sample(ids, min(count, 20_000)))
        texts = []
        for start in range(0, len(sample), 1000):
            for _, title, body in await store.story_texts_by_id(sample[start : start + 1000]):
                texts.append(story_text(title, body.split("\n\n")))
        # Fitted on a sample, but the archive's size decides when to refit.
        model = replace(RelatedModel.fit(texts), fitted_on=count)
        await store.save_related_model(model.to_bytes(), count)
    finally:
        await store.close()


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING)
    asyncio.run(_fit(sys.argv[1]))
