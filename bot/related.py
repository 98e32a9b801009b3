"""The related-stories index as the bot and the CLI use it: the model fitted in a child
process (scikit-learn's memory never enters the bot or the importer), stories embedded as
they arrive (no rebuild), similar stories found in memory.

`newsbot ingest` embeds stories while it imports them, in the worker processes that
prepare its JSON Lines batches; a large import that needs a model fits one at its start,
in a child process, on a random sample of the stored stories and of the records it is
about to import, instead of after the import (`RelatedImport`).

    python -m bot.related DB [ARCHIVE.jsonl ...]   fits the model on DB's stories (and a
                                                   sample of the archives' records)
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import functools
import logging
import multiprocessing
import os
import random
import sys
import time
from collections import deque
from collections.abc import Sequence
from concurrent.futures import Executor, ProcessPoolExecutor
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path

import numpy as np

from news.articles import Article
from news.parse import parse_jsonl
from news.related import (
    MAX_FIT_STORIES,
    FloatArray,
    RelatedIndex,
    RelatedModel,
    pack_vector,
    refit_due,
    story_text,
    unpack_vector,
)
from storage import AddResult, Store

log = logging.getLogger(__name__)

EMBED_BATCH = 1000
# How long a loaded index is trusted before the database is asked for news.
REFRESH_SECONDS = 30.0
# An import of at least this many JSON Lines records that needs a model fits it at its
# start, beside the import; a smaller one fits after it (the fit is cheap then).
EARLY_FIT_RECORDS = 5_000
# A backlog this large is embedded by worker processes (both cores), not in a thread.
POOL_BACKLOG = 5_000
WORKERS = 2

StoredModel = tuple[bytes, int, datetime]
_BLAS_THREADS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


@dataclass(frozen=True, slots=True)
class RelatedStatus:
    """What `ensure_model` or `RelatedImport.finish` did."""

    fitted: bool
    embedded: int
    seconds: float


def load_model(stored: StoredModel | None) -> RelatedModel | None:
    """The stored model with the archive size the database records for it; None when
    there is none or it is of an older format (it must be refitted)."""
    if stored is None:
        return None
    try:
        model = RelatedModel.from_bytes(stored[0])
    except ValueError:
        log.warning("related-stories model of an older format: it will be refitted")
        return None
    return replace(model, fitted_on=stored[1])


def needs_fit(model: RelatedModel | None, stories: int) -> bool:
    """Whether an archive of `stories` needs a (re)fit: no usable model, or it has
    doubled since the fit."""
    if stories < 2:
        return False
    return model is None or model.should_refit(stories)


async def fit_in_child(store: Store, archives: Sequence[str] = ()) -> None:
    """Fit the model in a child process on the store's stories and a sample of the
    `archives`' records (which are being imported meanwhile), and store it there."""
    # One BLAS thread: the fit runs beside an import or the bot, and BLAS threads that
    # spin-wait for a core would slow both down more than they speed the fit up.
    env = {**os.environ, **dict.fromkeys(_BLAS_THREADS, "1")}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot.related", str(store.path), *archives, env=env
    )
    try:
        code = await process.wait()
    except asyncio.CancelledError:
        # An import that stops (Ctrl-C, an error) takes its fit with it.
        process.kill()
        await process.wait()
        raise
    if code != 0:
        raise RuntimeError(f"fitting the related-stories model failed ({process.returncode})")


@functools.lru_cache(maxsize=1)
def _model_file(path: str) -> RelatedModel:
    return RelatedModel.from_bytes(Path(path).read_bytes())


def embed_with_file(model_path: str, texts: Sequence[str]) -> FloatArray:
    """Vectors of `texts` with the model saved at `model_path`, read once per process (for
    worker processes, which must not be sent 20 MB with every batch)."""
    return _model_file(model_path).embed(texts)


def embed_words_with_file(model_path: str, docs: Sequence[Sequence[str]]) -> FloatArray:
    """`embed_with_file` for texts already split by `news.text.words`."""
    return _model_file(model_path).embed_words(docs)


async def embed_missing(
    store: Store,
    model: RelatedModel,
    fitted_at: datetime,
    *,
    executor: Executor | None = None,
    model_path: str | None = None,
) -> int:
    """Embed every story the model has not embedded yet; returns how many were stored.
    With an `executor` (and the model saved at `model_path`) two batches are embedded at
    once in its processes; else in a thread."""
    loop = asyncio.get_running_loop()

    async def embed(texts: list[str]) -> FloatArray:
        if executor is None or model_path is None:
            return await asyncio.to_thread(model.embed, texts)
        return await loop.run_in_executor(executor, embed_with_file, model_path, texts)

    done = 0
    after = 0
    depth = WORKERS if executor is not None else 1
    in_flight: deque[tuple[list[int], asyncio.Future[FloatArray]]] = deque()
    while True:
        batch = await store.stories_without_vectors(EMBED_BATCH, after_id=after)
        if batch:
            after = batch[-1][0]
            texts = [story_text(title, body.split("\n\n")) for _, title, body in batch]
            in_flight.append(([i for i, _, _ in batch], asyncio.ensure_future(embed(texts))))
        if in_flight and (len(in_flight) >= depth or not batch):
            ids, future = in_flight.popleft()
            vectors = await future
            done += await store.save_vectors(
                [(i, pack_vector(v)) for i, v in zip(ids, vectors, strict=True)],
                fitted_at=fitted_at,
            )
        if not batch and not in_flight:
            return done


async def ensure_model(store: Store) -> RelatedStatus:
    """Fit the model when there is none or the archive has doubled since, then embed the
    stories it has not seen. Cheap when everything is up to date: the model itself is
    only read when there is something to embed (the bot runs this daily)."""
    started = time.perf_counter()
    stories = await store.count_stories()
    stored = await store.related_model()
    fitted = False
    if stories >= 2 and (
        stored is None or not RelatedModel.readable(stored[0]) or refit_due(stored[1], stories)
    ):
        await fit_in_child(store)
        stored = await store.related_model()
        fitted = True
    if stored is None or stories - await store.count_vectors() <= 0:
        return RelatedStatus(fitted, 0, time.perf_counter() - started)
    model = load_model(stored)
    if model is None:
        return RelatedStatus(fitted, 0, time.perf_counter() - started)
    fitted_at = stored[2]
    del stored
    embedded = await embed_missing(store, model, fitted_at)
    return RelatedStatus(fitted, embedded, time.perf_counter() - started)


class RelatedImport:
    """The related-stories index during one import: new stories are embedded in the
    workers that prepare them, with the stored model; when the import needs a model (none
    yet, or the archive will have doubled) and is large, the model is fitted at once, in
    a child process, while the import goes on, and the stories stored before it was ready
    are embedded when it is."""

    def __init__(self, store: Store, folder: Path) -> None:
        self._store = store
        self._folder = folder
        self._started = time.perf_counter()
        self._fit: asyncio.Future[None] | None = None
        self._fitted = False
        self._model: RelatedModel | None = None
        self._fitted_at: datetime | None = None
        self._model_path: str | None = None
        self.embedded = 0

    @classmethod
    async def start(
        cls,
        store: Store,
        archives: Sequence[tuple[str, int]],
        folder: Path,
        *,
        early_fit_records: int = EARLY_FIT_RECORDS,
    ) -> RelatedImport:
        """Ready the import of `archives` ((path, records) of its JSON Lines sources);
        `folder` holds the model file the workers read (the caller removes it)."""
        job = cls(store, folder)
        records = sum(count for _, count in archives)
        stored = await store.related_model()
        model = load_model(stored)
        stories = await store.count_stories()
        if records >= early_fit_records and needs_fit(model, stories + records):
            # While the new model is fitted nothing is embedded: the outgoing model's
            # vectors are all deleted when the new one is stored.
            job._start_fit([path for path, _ in archives])
        elif model is not None and stored is not None:
            await job._use(model, stored)
        return job

    def _start_fit(self, archives: list[str]) -> None:
        log.info("related-stories model: fitting beside the import")
        self._fit = asyncio.ensure_future(fit_in_child(self._store, archives))

    async def _use(self, model: RelatedModel, stored: StoredModel) -> None:
        path = self._folder / f"related-{stored[2].timestamp():.6f}.npz"
        await asyncio.to_thread(path.write_bytes, stored[0])
        self._model, self._fitted_at, self._model_path = model, stored[2], str(path)

    @property
    def model_path(self) -> str | None:
        """The model file workers embed new stories with; None while there is none."""
        return self._model_path

    @property
    def fitted_at(self) -> datetime | None:
        """When the model of `model_path` was fitted (the key its vectors are saved
        under)."""
        return self._fitted_at

    async def stored(
        self,
        results: Sequence[AddResult],
        vectors: FloatArray | None,
        fitted_at: datetime | None,
    ) -> None:
        """Save the vectors of the new stories among `results` (one row of `vectors` per
        result, made with the model fitted at `fitted_at`), and take up the early fit's
        model once it is ready."""
        if vectors is not None and fitted_at is not None and fitted_at == self._fitted_at:
            rows = [
                (result.story_id, pack_vector(vector))
                for result, vector in zip(results, vectors, strict=True)
                if result.status == "new"
            ]
            if rows:
                self.embedded += await self._store.save_vectors(rows, fitted_at=fitted_at)
        if self._fit is not None and self._fit.done():
            await self._fitted_early()

    async def _fitted_early(self) -> None:
        assert self._fit is not None
        fit, self._fit = self._fit, None
        await fit  # raises when the child failed
        log.info("related-stories model: fitted; new stories are embedded as they arrive")
        self._fitted = True
        stored = await self._store.related_model()
        model = load_model(stored)
        if model is not None and stored is not None:
            await self._use(model, stored)

    async def finish(self) -> RelatedStatus:
        """After the import: wait for the early fit (or fit now, when the import needed
        a model and was small), then embed every story still without a vector; `seconds`
        is the time this took after the import."""
        store = self._store
        self._started = time.perf_counter()
        if self._fit is not None:
            await self._fitted_early()
        stories = await store.count_stories()
        if self._fitted:
            # Fitted on a sample of what this import was about to store: it stands for
            # the archive the import ended with.
            await store.set_related_fitted_on(stories)
        else:
            stored = await store.related_model()
            model = load_model(stored)
            if needs_fit(model, stories):
                await fit_in_child(store)
                self._fitted = True
                stored = await store.related_model()
                model = load_model(stored)
            if model is not None and stored is not None and stored[2] != self._fitted_at:
                await self._use(model, stored)
        if self._model is None or self._fitted_at is None:
            return RelatedStatus(self._fitted, self.embedded, time.perf_counter() - self._started)
        backlog = stories - await store.count_vectors()
        log.info("related-stories index: %d stories to embed after the import", backlog)
        if backlog >= POOL_BACKLOG:
            context = multiprocessing.get_context("spawn")
            with ProcessPoolExecutor(WORKERS, mp_context=context) as pool:
                self.embedded += await embed_missing(
                    store, self._model, self._fitted_at, executor=pool, model_path=self._model_path
                )
        elif backlog > 0:
            self.embedded += await embed_missing(store, self._model, self._fitted_at)
        return RelatedStatus(self._fitted, self.embedded, time.perf_counter() - self._started)

    async def abort(self) -> None:
        """Stop an early fit still running (the import failed)."""
        if self._fit is not None:
            self._fit.cancel()
            # The import's own error is the one to report, not this one's.
            with contextlib.suppress(BaseException):
                await self._fit
            self._fit = None


def _release_freed_memory() -> None:
    """Hand the heap freed after loading a model (its 20 MB blob and the arrays read from
    it) back to the system, so the bot's resident memory is what it keeps, not its peak.
    glibc only; elsewhere nothing happens."""
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return
    libc.malloc_trim(0)


class RelatedStories:
    """The in-memory index of one process, kept in step with the database."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._model: RelatedModel | None = None
        self._index: RelatedIndex | None = None
        self._fitted_at: datetime | None = None
        self._max_id = 0
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
            model = load_model(stored)
            if model is None or stored is None:
                # An older format: the daily job refits it; FTS5 stands in meanwhile.
                self._model = self._index = None
                return
            self._model, self._fitted_at, self._index = model, stored[2], None
            del stored
            _release_freed_memory()
        assert self._fitted_at is not None
        # New stories join without a rebuild: embed what no one embedded yet, then load
        # every vector this index lacks (other processes embed too).
        await embed_missing(store, self._model, self._fitted_at)
        if self._index is None:
            self._index = RelatedIndex(self._model.dims)
            self._index.reserve(await store.count_stories() + 1000)
            self._max_id = 0
        await self._load(self._max_id)
        if await store.count_vectors() > len(self._index):
            # Vectors below the newest one arrived (an import embeds its first stories
            # last): one pass over them all picks them up.
            await self._load(0)

    async def _load(self, after_id: int) -> None:
        index = self._index
        assert index is not None
        # Batches of EMBED_BATCH rows: the bytes of 100,000 vectors never sit in memory
        # as Python objects all at once.
        while rows := await self._store.vectors(after_id=after_id, limit=EMBED_BATCH):
            after_id = rows[-1][0]
            fresh = [(i, v) for i, v in rows if i not in index]
            if fresh:
                index.add([i for i, _ in fresh], np.stack([unpack_vector(v) for _, v in fresh]))
            self._max_id = max(self._max_id, after_id)


def _record_offsets(path: Path) -> list[int]:
    """Byte offsets of the non-blank lines of a JSON Lines file."""
    offsets: list[int] = []
    position = 0
    with path.open("rb") as handle:
        for line in handle:
            if line.strip():
                offsets.append(position)
            position += len(line)
    return offsets


def _sampled_records(path: Path, offsets: Sequence[int]) -> list[Article]:
    """The archive's records starting at these offsets (bad ones left out: the import
    reports them)."""
    lines = []
    with path.open("rb") as handle:
        for offset in offsets:
            handle.seek(offset)
            lines.append(handle.readline().decode("utf-8", errors="replace"))
    return [a for _, a in parse_jsonl(lines) if isinstance(a, Article)]


async def _fit(path: str, archives: Sequence[str]) -> None:
    store = await Store.open(path)
    try:
        ids = await store.story_ids()
        offsets = [await asyncio.to_thread(_record_offsets, Path(a)) for a in archives]
        # One random sample of everything the archive will hold once the import is done:
        # the stories stored and the records arriving.
        total = len(ids) + sum(len(o) for o in offsets)
        picked = sorted(random.Random(0).sample(range(total), min(total, MAX_FIT_STORIES)))
        texts = []
        stored_picks = [ids[i] for i in picked if i < len(ids)]
        for start in range(0, len(stored_picks), 1000):
            chunk = stored_picks[start : start + 1000]
            for _, title, body in await store.story_texts_by_id(chunk):
                texts.append(story_text(title, body.split("\n\n")))
        base = len(ids)
        for archive, archive_offsets in zip(archives, offsets, strict=True):
            wanted = [
                archive_offsets[i - base] for i in picked if 0 <= i - base < len(archive_offsets)
            ]
            base += len(archive_offsets)
            for article in await asyncio.to_thread(_sampled_records, Path(archive), wanted):
                texts.append(story_text(article.title, article.body))
        # Fitted on a sample, but the archive's size decides when to refit.
        model = await asyncio.to_thread(RelatedModel.fit, texts, fitted_on=total)
        await store.save_related_model(model.to_bytes(), total)
    finally:
        await store.close()


if __name__ == "__main__":
    # Started by `newsbot ingest` or the bot: a kill -9 of that process must not leave the
    # fit running on (and holding the database) as an orphan.
    from bot.workers import die_with_parent

    die_with_parent(os.getppid())
    logging.basicConfig(level=logging.WARNING)
    parser = argparse.ArgumentParser(prog="python -m bot.related", description=__doc__)
    parser.add_argument("db")
    parser.add_argument("archives", nargs="*")
    args = parser.parse_args()
    asyncio.run(_fit(args.db, args.archives))
