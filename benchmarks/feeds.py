"""Feed and page import throughput: our parse + extract (to Article) beside feedparser and
trafilatura alone on the same bytes, whose cost is the floor.

    .venv/bin/python -m benchmarks.feeds [--quick] [--folder DIR] [--repeat N]

DIR holds saved feeds (*.xml, *.rss, *.atom) and pages (*.html, *.htm), searched
recursively; by default the test data (tests/data/feeds and tests/data/pages). Files that
are not importable (the attack and not-a-feed cases) are left out of every row alike.
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import feedparser
import trafilatura

from benchmarks.common import ROOT, print_table, write_json
from news.articles import Article
from news.feeds import FeedError, entry_to_article, parse_feed
from news.pages import PageError, extract_page, page_to_article
from storage import Store

FEED_SUFFIXES = {".xml", ".rss", ".atom"}
PAGE_SUFFIXES = {".html", ".htm"}


def load(folder: Path) -> tuple[list[tuple[str, bytes]], list[tuple[str, bytes]]]:
    """The importable feeds and pages under `folder`, as (url, bytes)."""
    feeds: list[tuple[str, bytes]] = []
    pages: list[tuple[str, bytes]] = []
    for path in sorted(folder.rglob("*")):
        url = f"https://bench.example/{path.relative_to(folder).as_posix()}"
        if path.suffix in FEED_SUFFIXES:
            data = path.read_bytes()
            try:
                if parse_feed(data, url=url).entries:
                    feeds.append((url, data))
            except FeedError:
                continue
        elif path.suffix in PAGE_SUFFIXES:
            data = path.read_bytes()
            try:
                extract_page(data, url=url)
            except PageError:
                continue
            pages.append((url, data))
    return feeds, pages


def ours_feeds(feeds: list[tuple[str, bytes]]) -> int:
    """parse_feed + entry_to_article over every feed; returns the stories made."""
    stories = 0
    for url, data in feeds:
        feed = parse_feed(data, url=url)
        for entry in feed.entries:
            entry_to_article(entry, feed_title=feed.title)
            stories += 1
    return stories


def ours_stored(feeds: list[tuple[str, bytes]], pages: list[tuple[str, bytes]]) -> int:
    """Parse + extract + store: every story of the feeds and pages into a fresh database
    (through Store.add_articles, the path of every import: dedup, FTS, alert matching)."""
    articles: list[Article] = []
    for url, data in feeds:
        feed = parse_feed(data, url=url)
        articles.extend(entry_to_article(e, feed_title=feed.title) for e in feed.entries)
    articles.extend(page_to_article(extract_page(data, url=url)) for url, data in pages)

    async def store_all() -> int:
        with tempfile.TemporaryDirectory() as tmp:
            store = await Store.open(Path(tmp) / "bench.db")
            try:
                results = await store.add_articles(articles)
            finally:
                await store.close()
        return sum(r.status == "new" for r in results)

    return asyncio.run(store_all())


def floor_feeds(feeds: list[tuple[str, bytes]]) -> int:
    """feedparser.parse alone; returns the entries it found."""
    return sum(len(feedparser.parse(data).entries) for _, data in feeds)


def ours_pages(pages: list[tuple[str, bytes]]) -> int:
    """extract_page + page_to_article over every page."""
    for url, data in pages:
        page_to_article(extract_page(data, url=url))
    return len(pages)


def floor_pages(pages: list[tuple[str, bytes]]) -> int:
    """trafilatura.bare_extraction alone, with metadata (what extract_page asks of it)."""
    for url, data in pages:
        trafilatura.bare_extraction(data, url=url, with_metadata=True, include_comments=False)
    return len(pages)


def measure(
    ours: Callable[[], int], floor: Callable[[], int], repeat: int
) -> tuple[int, float, int, float]:
    """(stories, best seconds) per pass for ours and for the floor; the passes alternate so
    that load from anything else running hits both sides alike."""
    stories, floor_stories = ours(), floor()  # warm-up: imports, caches, lazy models
    best_ours = best_floor = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        ours()
        best_ours = min(best_ours, time.perf_counter() - started)
        started = time.perf_counter()
        floor()
        best_floor = min(best_floor, time.perf_counter() - started)
    return stories, best_ours, floor_stories, best_floor


def main(argv: list[str] | None = None) -> None:
    """Run the benchmark, print the table and write benchmarks/results/feeds.json."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="a few passes only")
    parser.add_argument("--repeat", type=int, default=None, help="timed passes (best counts)")
    parser.add_argument(
        "--folder", type=Path, default=None, help="saved feeds and pages (default: test data)"
    )
    args = parser.parse_args(argv)
    repeat = args.repeat or (3 if args.quick else 25)
    if args.folder:
        feeds, pages = load(args.folder)
    else:
        feeds, _ = load(ROOT / "tests" / "data" / "feeds")
        _, pages = load(ROOT / "tests" / "data" / "pages")
    if not feeds and not pages:
        raise SystemExit("no importable feeds or pages found")

    rows: list[dict[str, Any]] = []

    def row(name: str, ours: Callable[[], int], floor: Callable[[], int], baseline: str) -> None:
        stories, ours_s, floor_stories, floor_s = measure(ours, floor, repeat)
        rows.append(
            {
                "step": name,
                "stories": stories,
                "ours_stories_per_s": stories / ours_s,
                "baseline": baseline,
                "baseline_stories_per_s": floor_stories / floor_s,
                "cost_ratio": ours_s / floor_s,
            }
        )

    if feeds:
        row(
            "feeds: parse_feed + entry_to_article",
            lambda: ours_feeds(feeds),
            lambda: floor_feeds(feeds),
            "feedparser.parse",
        )
    if pages:
        row(
            "pages: extract_page + page_to_article",
            lambda: ours_pages(pages),
            lambda: floor_pages(pages),
            "trafilatura.bare_extraction",
        )
    if feeds and pages:
        row(
            "feeds + pages together",
            lambda: ours_feeds(feeds) + ours_pages(pages),
            lambda: floor_feeds(feeds) + floor_pages(pages),
            "feedparser + trafilatura",
        )
        row(
            "feeds + pages, parsed and stored",
            lambda: ours_stored(feeds, pages),
            lambda: floor_feeds(feeds) + floor_pages(pages),
            "feedparser + trafilatura",
        )

    print(
        f"{len(feeds)} feeds, {len(pages)} pages; best of {repeat} passes "
        f"(cost ratio = our time / baseline time on the same bytes; 1.00 = no overhead)\n"
    )
    print_table(
        ["step", "stories/pass", "ours stories/s", "baseline", "baseline stories/s", "cost ratio"],
        [
            [
                r["step"],
                r["stories"],
                r["ours_stories_per_s"],
                r["baseline"],
                r["baseline_stories_per_s"],
                r["cost_ratio"],
            ]
            for r in rows
        ],
    )
    path = write_json(
        "feeds",
        {
            "feeds": len(feeds),
            "pages": len(pages),
            "repeat": repeat,
            "quick": args.quick,
            "python": platform.python_version(),
            "feedparser": feedparser.__version__,
            "trafilatura": trafilatura.__version__,
            "rows": rows,
        },
    )
    print(f"\nwritten to {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
