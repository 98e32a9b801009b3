"""Importing sources into the store: files, folders, JSON Lines archives, feeds, pages, URLs.

Every item's failure is reported with its file (and line) and never stops the rest.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from news.articles import Article, ParseError
from news.parse import decode, parse_jsonl, parse_text_article, sniff
from storage import AddResult, Store

log = logging.getLogger(__name__)

BATCH = 500
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

    def count(self, results: Iterable[AddResult]) -> None:
        """Add store results to the counts."""
        for result in results:
            if result.status == "new":
                self.new += 1
                self.new_ids.append(result.story_id)
            else:
                self.duplicate += 1

    def fail(self, where: str, reason: str) -> None:
        """Record one item that could not be imported."""
        self.failed += 1
        self.errors.append(f"{where}: {reason}")

    @property
    def failed_entirely(self) -> bool:
        """Whether nothing at all could be read from this source."""
        return self.failed > 0 and self.new + self.duplicate == 0


# What a folder import reads; a file named on the command line is read whatever its name.
ARTICLE_SUFFIXES = frozenset(
    {"", ".txt", ".text", ".jsonl", ".ndjson", ".xml", ".rss", ".atom", ".rdf", ".html", ".htm"}
)


def expand(sources: Sequence[str]) -> Iterator[str]:
    """Article files of each folder (sorted; hidden files and other types such as README.md
    skipped), other sources as they are."""
    for source in sources:
        path = Path(source)
        if not source.startswith(("http://", "https://")) and path.is_dir():
            yield from (
                str(p)
                for p in sorted(path.rglob("*"))
                if p.is_file()
                and not p.name.startswith(".")
                and p.suffix.lower() in ARTICLE_SUFFIXES
            )
        else:
            yield source


async def ingest(
    store: Store,
    sources: Sequence[str],
    *,
    progress: bool | None = None,
    on_report: Callable[[SourceReport], None] | None = None,
) -> list[SourceReport]:
    """Import every source; one report per file or URL."""
    reports: list[SourceReport] = []
    for source in expand(sources):
        report = SourceReport(source)
        try:
            await _ingest_one(store, source, report, progress)
        except ParseError as error:
            where = f"{source}:{error.line}" if error.line else source
            report.fail(where, str(error))
        except OSError as error:
            report.fail(source, error.strerror or str(error))
        reports.append(report)
        if on_report is not None:
            on_report(report)
    return reports


async def _ingest_one(
    store: Store, source: str, report: SourceReport, progress: bool | None
) -> None:
    path = Path(source)
    if not path.exists():
        raise ParseError("no such file or folder")
    with path.open("rb") as handle:
        head = handle.read(_SNIFF_BYTES)
    kind = sniff(head, path.name)
    if kind == "jsonl":
        await _ingest_jsonl(store, path, report, progress)
    elif kind == "text":
        article = parse_text_article(decode(path.read_bytes()))
        report.count(await store.add_articles([article]))
    else:
        raise ParseError(f"{kind} files are not supported here yet")


async def _ingest_jsonl(
    store: Store, path: Path, report: SourceReport, progress: bool | None
) -> None:
    size = path.stat().st_size
    batch: list[Article] = []
    with (
        path.open("rb") as handle,
        tqdm(
            total=size,
            unit="B",
            unit_scale=True,
            desc=path.name[:30],
            disable=not progress if progress is not None else None,
            leave=False,
        ) as bar,
    ):

        def lines() -> Iterator[str]:
            for raw in handle:
                bar.update(len(raw))
                yield raw.decode("utf-8", errors="replace")

        for line_no, result in parse_jsonl(lines()):
            if isinstance(result, ParseError):
                report.fail(f"{path}:{line_no}", str(result))
                continue
            batch.append(result)
            if len(batch) >= BATCH:
                report.count(await store.add_articles(batch))
                batch = []
        if batch:
            report.count(await store.add_articles(batch))
