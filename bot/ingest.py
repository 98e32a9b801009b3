"""Importing sources into the store: files, folders, JSON Lines archives, feeds, pages, URLs.

Every item's failure is reported with its file (and line) and never stops the rest.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path

from tqdm import tqdm

from bot.feeds import Duplicates, articles_from_url, counts_text
from bot.related import RelatedImport, embed_words_with_file
from bot.workers import worker_pool
from news.articles import Article, ParseError
from news.feeds import FeedError, entry_to_article, parse_feed
from news.fetch import Fetcher, FetchError
from news.pages import PageError, extract_page, page_to_article
from news.parse import (
    MAX_RECORD_BYTES,
    OversizedLine,
    decode,
    parse_jsonl,
    parse_text_article,
    sniff,
)
from news.related import FloatArray
from news.text import words
from news.urls import is_http_url
from storage import AddResult, Prepared, Store

log = logging.getLogger(__name__)

BATCH = 1000
_SNIFF_BYTES = 4096


@dataclass
class SourceReport:
    """What one source gave: counts, and the reason of each failure."""

    source: str
    new: int = 0
    duplicate: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)
    new_ids: list[int] = field(default_factory=list)
    # Stories stored with a change (a field cut to its bound, a date set aside), "where: what".
    warnings: list[str] = field(default_factory=list)
    # Why the source was not read at all (a link out of the folder), or None.
    skipped: str | None = None
    duplicates: Duplicates = field(default_factory=Duplicates)

    def count(self, results: Iterable[AddResult]) -> None:
        """Add store results to the counts (duplicates by reason)."""
        for result in results:
            if result.status == "new":
                self.new += 1
                self.new_ids.append(result.story_id)
            else:
                self.duplicate += 1
                self.duplicates.add(result.reason, result.story_id)

    def counts_line(self) -> str:
        """ "3 new, 2 duplicate (2 same guid as #4), 1 failed"."""
        return counts_text(self.new, self.duplicate, self.failed, self.duplicates)

    def fail(self, where: str, reason: str) -> None:
        """Record one item that could not be imported."""
        self.failed += 1
        self.errors.append(f"{where}: {reason}")

    def note(self, where: str, articles: Iterable[Article]) -> None:
        """Record what the Article bounds changed in these stories, each as a warning (the
        story is still imported), at `where` and the record's line when it has one."""
        for article in articles:
            for note in article.notes:
                at = f"{where}:{article.line}" if article.line is not None else where
                self.warnings.append(f"{at}: {note}")

    @property
    def failed_entirely(self) -> bool:
        """Whether nothing at all could be read from this source."""
        return self.failed > 0 and self.new + self.duplicate == 0


# What a folder import reads; a file named on the command line is read whatever its name.
ARTICLE_SUFFIXES = frozenset(
    {"", ".txt", ".text", ".jsonl", ".ndjson", ".xml", ".rss", ".atom", ".rdf", ".html", ".htm"}
)


@dataclass(frozen=True, slots=True)
class Skipped:
    """A folder entry that is not read, and why."""

    path: str
    reason: str


def expand(sources: Sequence[str]) -> Iterator[str | Skipped]:
    """Article files of each folder (sorted; hidden files and other types such as README.md
    skipped), other sources as they are. A folder's symbolic links are followed only when
    they lead to a file inside that folder: one out of it (to `~/.env`, say) is a Skipped."""
    for source in sources:
        path = Path(source)
        if is_http_url(source) or not path.is_dir():
            # A file named on the command line is read as given, link or not.
            yield source
            continue
        root = path.resolve()
        # (rglob does not descend into linked folders; a link itself is listed, below.)
        for entry in sorted(path.rglob("*")):
            if entry.name.startswith(".") or entry.suffix.lower() not in ARTICLE_SUFFIXES:
                continue
            if entry.is_symlink():
                try:
                    target = entry.resolve(strict=True)
                except (OSError, RuntimeError):
                    yield Skipped(str(entry), "a broken or looping symbolic link: not followed")
                    continue
                if not target.is_relative_to(root):
                    yield Skipped(
                        str(entry),
                        f"a symbolic link to {target}, outside {source}: not followed",
                    )
                    continue
            if entry.is_file():
                yield str(entry)


async def ingest(
    store: Store,
    sources: Sequence[str],
    *,
    progress: bool | None = None,
    on_report: Callable[[SourceReport], None] | None = None,
    fetcher: Fetcher | None = None,
    allow_private_hosts: bool = False,
    related: RelatedImport | None = None,
) -> list[SourceReport]:
    """Import every source; one report per file or URL. URLs are fetched with `fetcher`
    (one is made, and closed, when none is given; it refuses private addresses unless
    `allow_private_hosts`); with `related`, JSON Lines stories are embedded for the
    related-stories index as they are imported."""
    reports: list[SourceReport] = []
    own_fetcher: Fetcher | None = None
    items = await asyncio.to_thread(lambda: list(expand(sources)))
    # A bar over files when there are several (None: only on a terminal, as tqdm decides).
    disable = True if len(items) < 2 else (None if progress is None else not progress)
    bar = tqdm(total=len(items), unit="file", desc="files", disable=disable, leave=False)
    try:
        for item in items:
            bar.update(1)
            if isinstance(item, Skipped):
                report = SourceReport(item.path, skipped=item.reason)
                reports.append(report)
                if on_report is not None:
                    on_report(report)
                continue
            source = item
            report = SourceReport(source)
            try:
                if is_http_url(source):
                    if fetcher is None:
                        fetcher = own_fetcher = Fetcher(allow_private_hosts=allow_private_hosts)
                    articles, errors = await articles_from_url(fetcher, source)
                    for error in errors:
                        report.fail(source, error)
                    report.note(source, articles)
                    report.count(await store.add_articles(articles))
                else:
                    await _ingest_file(store, Path(source), report, progress, related)
            except ParseError as error:
                where = f"{source}:{error.line}" if error.line else source
                report.fail(where, str(error))
            except (FeedError, PageError) as error:
                report.fail(source, str(error))
            except FetchError as error:
                report.fail(source, error.reason)
            except OSError as error:
                report.fail(source, error.strerror or str(error))
            except sqlite3.Error:
                raise  # the database itself failed (full, read-only): no source can go on
            except Exception as error:
                # A bug met by one source is reported as its failure; the others still go in.
                log.exception("importing %s failed", source)
                report.fail(source, f"internal error ({type(error).__name__}: {error})")
            reports.append(report)
            if on_report is not None:
                on_report(report)
    finally:
        bar.close()
        if own_fetcher is not None:
            await own_fetcher.aclose()
    return reports


async def _ingest_file(
    store: Store,
    path: Path,
    report: SourceReport,
    progress: bool | None,
    related: RelatedImport | None = None,
) -> None:
    # File reads run in a thread: the bot's event loop must never wait on the disk.
    kind = await asyncio.to_thread(_sniff_file, path)
    if kind == "jsonl":
        await _ingest_jsonl(store, path, report, progress, related)
        return
    data = await asyncio.to_thread(path.read_bytes)
    uri = (await asyncio.to_thread(path.resolve)).as_uri()
    if kind == "text":
        articles = [parse_text_article(decode(data))]
    elif kind == "feed":
        # A saved feed: its items as they are (no page is fetched for a local file); an
        # unusable item is reported by position and skipped, the others import.
        parsed = await asyncio.to_thread(parse_feed, data, url=uri)
        for position, reason in parsed.skipped:
            report.fail(f"{path} item {position}", reason)
        articles = []
        for entry in parsed.entries:
            try:
                articles.append(entry_to_article(entry, feed_title=parsed.title))
            except ParseError as error:
                report.fail(f"{path} {entry.name}", str(error))
    else:
        page = await asyncio.to_thread(extract_page, data, url=uri)
        article = page_to_article(page)
        # A saved page's own address is a file, not a link a reader can open.
        articles = [article if is_http_url(article.url or "") else replace(article, url=None)]
    report.note(str(path), articles)
    report.count(await store.add_articles(articles))


# A plain-text article, saved feed or page is read whole; none is near this (a feed fetched
# over HTTP has the same cap). JSON Lines archives have no size cap, only a per-record one.
MAX_FILE_BYTES = 5 * 1024 * 1024


def _sniff_file(path: Path) -> str:
    if not path.exists():
        raise ParseError("no such file or folder")
    with path.open("rb") as handle:
        kind = sniff(handle.read(_SNIFF_BYTES), path.name)
        size = os.fstat(handle.fileno()).st_size
    if kind != "jsonl" and size > MAX_FILE_BYTES:
        raise ParseError(
            f"file of {size:,} bytes is larger than {MAX_FILE_BYTES // 2**20} MB, the limit for "
            "a plain-text article, feed or page"
        )
    return kind


# Archives larger than this are parsed and prepared in a separate process, which takes
# the pure-Python half of an import off the GIL that SQLite's thread needs.
PROCESS_BYTES = 4_000_000
WORKERS = 2


def jsonl_records(sources: Sequence[str]) -> list[tuple[str, int]]:
    """The JSON Lines archives among `sources` (folders expanded), each with its number of
    non-blank lines: what an import is about to store, before it starts."""
    found: list[tuple[str, int]] = []
    for source in expand(sources):
        if isinstance(source, Skipped):
            continue
        path = Path(source)
        if is_http_url(source) or not path.is_file():
            continue
        try:
            if _sniff_file(path) != "jsonl":
                continue
            with path.open("rb") as handle:
                count = sum(1 for line in handle if line.strip())
        except (OSError, ParseError):
            continue  # the import itself reports it
        found.append((source, count))
    return found


Batch = tuple[list[Prepared], list[tuple[int, str]], FloatArray | None]


def prepare_lines(
    lines: list[str], first_line: int, with_doc: bool, model_path: str | None = None
) -> Batch:
    """Parse JSON Lines (the first one is line `first_line` of its file) and prepare each
    good record for storing; the bad ones as (line number, reason); with `model_path`,
    each good record's related-stories vector too (one row per prepared record). Pure:
    runs in a thread or a worker process."""
    prepared: list[Prepared] = []
    errors: list[tuple[int, str]] = []
    docs: list[list[str]] = []
    for line_no, result in parse_jsonl(lines):
        if isinstance(result, ParseError):
            errors.append((first_line + line_no - 1, str(result)))
            continue
        # Split once: the dedup keys and the vector are made from the same words.
        title_words, body_words = words(result.title), words(result.text)
        prepared.append(Prepared.of_words(result, title_words, body_words, with_doc=with_doc))
        if model_path is not None:
            docs.append(title_words + body_words)
    vectors = embed_words_with_file(model_path, docs) if model_path is not None else None
    return prepared, errors, vectors


class _JsonlReader:
    """Reads a JSON Lines archive a batch of lines at a time, advancing a progress bar by
    bytes read."""

    def __init__(self, path: Path, progress: bool | None) -> None:
        self._handle = path.open("rb")
        self._next_line = 1
        self._bar = tqdm(
            total=path.stat().st_size,
            unit="B",
            unit_scale=True,
            desc=path.name[:30],
            disable=not progress if progress is not None else None,
            leave=False,
        )

    def next_lines(self) -> tuple[list[str], int]:
        """Up to BATCH lines and the number of the first; a line longer than
        MAX_RECORD_BYTES is skipped unread and stands as an OversizedLine."""
        first = self._next_line
        lines: list[str] = []
        readline = self._handle.readline
        while len(lines) < BATCH:
            # Bounded: a 50 MB line is never held whole (json.loads would need ~30x that).
            raw = readline(MAX_RECORD_BYTES + 1)
            if not raw:
                break
            self._bar.update(len(raw))
            if len(raw) > MAX_RECORD_BYTES and not raw.endswith(b"\n"):
                lines.append(OversizedLine(len(raw) + self._skip_line()))
                continue
            lines.append(raw.decode("utf-8", errors="replace"))
        self._next_line += len(lines)
        return lines, first

    def _skip_line(self) -> int:
        """Read past the rest of the current line, a chunk at a time; its length in bytes."""
        skipped = 0
        while chunk := self._handle.readline(1 << 20):
            skipped += len(chunk)
            self._bar.update(len(chunk))
            if chunk.endswith(b"\n"):
                break
        return skipped

    def close(self) -> None:
        """Close the file and the progress bar."""
        self._bar.close()
        self._handle.close()


async def _ingest_jsonl(
    store: Store,
    path: Path,
    report: SourceReport,
    progress: bool | None,
    related: RelatedImport | None = None,
) -> None:
    reader = await asyncio.to_thread(_JsonlReader, path, progress)
    size = (await asyncio.to_thread(path.stat)).st_size
    loop = asyncio.get_running_loop()
    pool = (
        worker_pool(WORKERS)  # its workers die with us, even after kill -9
        if size > PROCESS_BYTES
        else None
    )

    reading = asyncio.Lock()  # FIFO: batches are read in the order they were asked for

    async def next_batch() -> tuple[Batch, datetime | None]:
        async with reading:
            lines, first = await asyncio.to_thread(reader.next_lines)
        # The model the vectors are made with, read when the batch starts: a model that
        # arrives meanwhile (an early fit) applies to the next batches.
        model_path = related.model_path if related is not None else None
        fitted_at = related.fitted_at if related is not None else None
        if not lines:
            return ([], [], None), None
        # A store that matches topics gets each story's Doc prepared here too.
        job = (lines, first, store.matches_topics, model_path)
        if pool is None:
            return await asyncio.to_thread(prepare_lines, *job), fitted_at
        return await loop.run_in_executor(pool, prepare_lines, *job), fitted_at

    # Parse and prepare the next batches while SQLite stores this one (in file order: the
    # reader hands out batches in order and they are stored in the order started).
    ahead = WORKERS if pool is not None else 1
    pending = [asyncio.ensure_future(next_batch()) for _ in range(ahead)]
    try:
        while True:
            (batch, errors, vectors), fitted_at = await pending.pop(0)
            for line_no, reason in errors:
                report.fail(f"{path}:{line_no}", reason)
            if not batch and not errors:
                break
            pending.append(asyncio.ensure_future(next_batch()))
            if batch:
                report.note(str(path), (prepared.article for prepared in batch))
                results = await store.add_articles(batch)
                report.count(results)
                if related is not None:
                    await related.stored(results, vectors, fitted_at)
    finally:
        # Let the reader finish before its file closes (its error, if any, is already the
        # one being raised or is irrelevant now).
        for future in pending:
            with contextlib.suppress(Exception):
                await future
        reader.close()
        if pool is not None:
            pool.shutdown()
