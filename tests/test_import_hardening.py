"""Hostile input against the import path (issue 10, part C): records that used to crash an
import, symbolic links out of a folder, unbounded fields, far-future dates, oversized records
and files. Each saved JSON Lines case in tests/data/jsonl is one hostile line with its
expected reason (or warnings and stored fields) beside it; imports go through
`bot.ingest.ingest` into a real SQLite file."""

from __future__ import annotations

import json
import sqlite3
import tracemalloc
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from bot.ingest import SourceReport, expand, ingest
from news.articles import MAX_TEXT, MAX_TITLE, Article, RelatedLink, shorten
from news.parse import MAX_RECORD_BYTES, parse_jsonl
from storage import Store

DATA = Path(__file__).resolve().parent / "data"
JSONL_CASES = DATA / "jsonl"
CASE_NAMES = sorted(path.stem for path in JSONL_CASES.glob("*.jsonl"))


def case(name: str) -> tuple[str, dict[str, Any]]:
    """One saved hostile line and what is expected of it."""
    line = (JSONL_CASES / f"{name}.jsonl").read_text(encoding="utf-8")
    expected = json.loads((JSONL_CASES / f"{name}.json").read_text(encoding="utf-8"))
    return line, expected


def good(number: int) -> str:
    """A valid record, distinct from every other."""
    return json.dumps(
        {
            "id": f"good-{number}",
            "title": f"Harbour council report number {number}",
            "text": f"The council met for the {number}th time.\n\nIt voted on item {number}.",
            "published": "2024-05-01T10:00:00Z",
        }
    )


def stored(db: Path, column: str) -> set[Any]:
    with sqlite3.connect(db) as conn:
        return {row[0] for row in conn.execute(f"SELECT {column} FROM stories")}


def test_every_jsonl_case_has_its_expectation() -> None:
    assert len(CASE_NAMES) >= 15
    assert sorted(p.stem for p in JSONL_CASES.glob("*.json")) == CASE_NAMES


@pytest.mark.parametrize("name", CASE_NAMES)
def test_hostile_jsonl_line_gets_its_reason_or_warnings(name: str) -> None:
    line, expected = case(name)
    [(number, result)] = list(parse_jsonl([line]))
    assert number == 1
    if "error" in expected:
        assert not isinstance(result, Article), result
        assert expected["error"] in str(result)
        assert result.line == 1
        return
    assert isinstance(result, Article), result
    for warning in expected["warnings"]:
        assert any(warning in note for note in result.notes), (warning, result.notes)
    assert len(result.notes) == len(expected["warnings"])
    for key, value in expected["fields"].items():
        assert getattr(result, key) == value, key


async def test_one_hostile_record_never_loses_its_batch(tmp_path: Path, store: Store) -> None:
    # Good records before and after each hostile one, all in one batch of the reader.
    archive = tmp_path / "mixed.jsonl"
    lines: list[str] = []
    where: dict[str, int] = {}
    for index, name in enumerate(CASE_NAMES):
        lines.append(good(index))
        lines.append(case(name)[0].rstrip("\n"))
        where[name] = len(lines)
    lines.append(good(len(CASE_NAMES)))
    archive.write_text("\n".join(lines) + "\n", encoding="utf-8")

    [report] = await ingest(store, [str(archive)], progress=False)

    errors = [name for name in CASE_NAMES if "error" in case(name)[1]]
    warned = [name for name in CASE_NAMES if "warnings" in case(name)[1]]
    assert report.failed == len(errors)
    assert report.new == len(CASE_NAMES) + 1 + len(warned)
    for name in errors:
        reason = case(name)[1]["error"]
        assert any(
            e.startswith(f"{archive}:{where[name]}: ") and reason in e for e in report.errors
        )
    for name in warned:
        for warning in case(name)[1]["warnings"]:
            assert any(
                w.startswith(f"{archive}:{where[name]}: ") and warning in w
                for w in report.warnings
            ), (name, report.warnings)
    ids = stored(store.path, "external_id")
    assert {f"good-{n}" for n in range(len(CASE_NAMES) + 1)} <= ids
    assert {"long-title", "far-future", "long-fields", "long-url", "emoji"} <= ids


async def test_far_future_date_does_not_pin_a_story_to_the_top(
    tmp_path: Path, store: Store
) -> None:
    pinned = tmp_path / "pinned.jsonl"
    pinned.write_text(case("far-future-date")[0], encoding="utf-8")
    [first] = await ingest(store, [str(pinned)], progress=False)
    assert first.new == 1
    assert first.warnings == [
        f"{pinned}:1: date 9999-12-31 00:00 UTC is more than a day ahead: stored as unknown "
        "(the story is ordered by its import time)"
    ]
    # A story published a little later than that import comes first, as it should.
    later = tmp_path / "later.jsonl"
    soon = (datetime.now(UTC) + timedelta(minutes=5)).isoformat()
    fresh = {"id": "fresh", "title": "Fresh story", "text": "Body.", "published": soon}
    later.write_text(json.dumps(fresh) + "\n", encoding="utf-8")
    await ingest(store, [str(later)], progress=False)
    [top] = await store.latest(1)
    assert top.title == "Fresh story"


def test_a_date_an_hour_ahead_is_kept() -> None:
    # Feeds in zones ahead of UTC, and clocks a little off, are not "the future".
    soon = datetime.now(UTC) + timedelta(hours=1)
    article = Article(title="T", body=("B.",), published=soon)
    assert article.published == soon
    assert article.notes == ()


async def test_folder_import_does_not_follow_links_out_of_the_folder(
    tmp_path: Path, store: Store
) -> None:
    secret = tmp_path / "home" / "env"
    secret.parent.mkdir()
    secret.write_text("TELEGRAM_BOT_TOKEN=123:never-published\n\nSECRET=yes\n")
    outside = tmp_path / "home" / "elsewhere"
    outside.mkdir()
    (outside / "story.txt").write_text("Outside story\n\nIt lives outside the folder.\n")
    folder = tmp_path / "stories"
    (folder / "sub").mkdir(parents=True)
    (folder / "sub" / "real.txt").write_text("Inside story\n\nIt lives inside the folder.\n")
    (folder / "secrets").symlink_to(secret)
    (folder / "notes.txt").symlink_to(secret)
    (folder / "linked-dir").symlink_to(outside)
    (folder / "inside.txt").symlink_to(folder / "sub" / "real.txt")
    (folder / "broken.txt").symlink_to(tmp_path / "nowhere.txt")

    reports = await ingest(store, [str(folder)], progress=False)

    by_source = {Path(r.source).name: r for r in reports}
    for name in ("secrets", "notes.txt", "linked-dir"):
        skipped = by_source[name].skipped
        assert skipped is not None
        assert "outside" in skipped
        assert "not followed" in skipped
    assert "broken" in (by_source["broken.txt"].skipped or "")
    titles = stored(store.path, "title")
    assert "Inside story" in titles
    assert not any("TELEGRAM" in title or "Outside" in title for title in titles)
    # The link inside the folder was read too (a duplicate of the file it points to).
    assert by_source["inside.txt"].new + by_source["inside.txt"].duplicate == 1

    # A file named on the command line is read as given, link or not.
    [named] = await ingest(store, [str(folder / "notes.txt")], progress=False)
    assert named.skipped is None
    assert named.new == 1


def test_expand_lists_links_out_as_skipped(tmp_path: Path) -> None:
    (tmp_path / "out.txt").write_text("x")
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "a.txt").write_text("x")
    (folder / "b.txt").symlink_to(tmp_path / "out.txt")
    items = list(expand([str(folder)]))
    assert items[0] == str(folder / "a.txt")
    assert not isinstance(items[1], str)
    assert items[1].path == str(folder / "b.txt")
    assert str(tmp_path / "out.txt") in items[1].reason


def test_shorten_cuts_at_a_word_boundary() -> None:
    assert shorten("short", 10) == "short"
    assert shorten("alpha beta gamma delta", 12) == "alpha beta…"
    assert shorten("alpha beta gamma delta", 11) == "alpha beta…"  # "beta" ends the cut
    assert shorten("x" * 50, 10) == "x" * 9 + "…"
    assert len(shorten("word, " * 100, 30)) <= 30
    assert shorten("word, " * 100, 30).endswith("word…")


def test_article_bounds_every_field_and_says_so() -> None:
    long = "Lorem ipsum " * 600
    article = Article(
        title=long,
        body=("p " * 60_000, "q " * 60_000),
        source=long,
        author=long,
        place=long,
        category=long,
        caption=long,
        image_url="https://example.org/" + "i" * 3000,
        related=tuple(RelatedLink(long, f"https://example.org/{n}") for n in range(60)),
    )
    assert len(article.title) <= MAX_TITLE
    assert article.title.endswith("ipsum…")
    for name, limit in [("source", 100), ("author", 200), ("place", 100), ("category", 100)]:
        value = getattr(article, name)
        assert len(value) <= limit
        assert value.endswith("…")
    assert article.caption is not None
    assert len(article.caption) <= 500
    assert article.image_url is None
    assert len(article.related) == 50
    assert all(len(link.title) <= MAX_TITLE for link in article.related)
    assert sum(map(len, article.body)) <= MAX_TEXT
    assert article.body[0] == "p " * 60_000
    assert article.body[1].endswith("q…")
    assert any(note.startswith("title cut to 300 characters") for note in article.notes)
    assert any(note.startswith("text cut to 200,000 characters") for note in article.notes)
    assert any(note.startswith("image_url dropped") for note in article.notes)
    # Bounding is idempotent: a copy with a changed field adds no new notes for the others.
    from dataclasses import replace

    copy = replace(article, url=None)
    assert copy.notes == article.notes


def rss_item(title: str, author: str, category: str) -> bytes:
    return f"""<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0"><channel><title>Valley Wire</title><link>https://valley.example/</link>
<description>d</description>
<item><title>{title}</title><link>https://valley.example/a</link>
<guid>https://valley.example/a</guid><author>{author}</author><category>{category}</category>
<description>The council voted to rebuild the harbour wall after the storm.</description>
</item></channel></rss>""".encode()


PAGE = """<!doctype html><html><head><title>{title}</title>
<meta property="og:title" content="{title}"></head><body><article><h1>{title}</h1>
<p>The council voted on Tuesday to rebuild the harbour wall, which the winter storms breached
in three places, at a cost the treasurer put at four million pounds.</p>
<p>Work is due to start in the spring and to take eighteen months, the council said.</p>
</article></body></html>"""


async def test_long_titles_are_bounded_from_every_source(tmp_path: Path, store: Store) -> None:
    words = " ".join(f"word{n}" for n in range(900))
    text_file = tmp_path / "plain.txt"
    text_file.write_text(
        f"A plain title\n\nBy Jane Doe\n\nThe body.\n\nAlso read: {words}\n", encoding="utf-8"
    )
    archive = tmp_path / "archive.jsonl"
    archive.write_text(
        json.dumps({"id": "j", "title": "Archive " + words, "text": "Archive body."}) + "\n"
    )
    feed = tmp_path / "feed.xml"
    feed.write_bytes(rss_item("Feed " + words, "Feed " + words, "cat" * 200))
    page = tmp_path / "page.html"
    page.write_text(PAGE.format(title="Page " + words), encoding="utf-8")

    reports = await ingest(store, [str(p) for p in (text_file, archive, feed, page)])

    assert [r.new for r in reports] == [1, 1, 1, 1], [r.errors for r in reports]
    titles = stored(store.path, "title")
    assert all(len(title) <= MAX_TITLE for title in titles), titles
    assert sum(title.endswith("…") for title in titles) == 3
    related = stored(store.path, "related_links")
    assert any(json.loads(value) and json.loads(value)[0][0].endswith("…") for value in related)
    assert all(len(value or "") <= 100 for value in stored(store.path, "category"))
    by_name = {Path(r.source).name: r for r in reports}
    assert any("related-link title cut" in w for w in by_name["plain.txt"].warnings)
    assert by_name["archive.jsonl"].warnings[0].startswith(f"{archive}:1: title cut to 300")
    assert any(w.startswith(f"{feed}: title cut") for w in by_name["feed.xml"].warnings)
    assert any(w.startswith(f"{page}: title cut") for w in by_name["page.html"].warnings)


async def test_an_oversized_record_is_skipped_without_holding_it(
    tmp_path: Path, store: Store
) -> None:
    archive = tmp_path / "big.jsonl"
    huge = 20 * 1024 * 1024
    with archive.open("w", encoding="utf-8") as out:
        out.write(good(1) + "\n")
        out.write('{"title": "Huge", "text": "' + "a" * huge + '"}\n')
        out.write(good(2) + "\n")
    tracemalloc.start()
    try:
        [report] = await ingest(store, [str(archive)], progress=False)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert report.new == 2
    assert report.errors == [
        f"{archive}:2: record larger than 2 MB ({huge + 30:,} bytes); skipped"
    ]
    # The 20 MB line was never read whole: peak is a small multiple of the 2 MB cap.
    assert peak < 4 * MAX_RECORD_BYTES, peak


async def test_a_record_just_under_the_cap_is_read(tmp_path: Path, store: Store) -> None:
    archive = tmp_path / "edge.jsonl"
    filler = MAX_RECORD_BYTES - 200
    archive.write_text(
        json.dumps({"id": "edge", "title": "Edge", "text": "b " * (filler // 2)}) + "\n"
    )
    [report] = await ingest(store, [str(archive)], progress=False)
    assert report.errors == []
    assert report.new == 1


async def test_an_oversized_text_file_is_refused_and_the_rest_go_on(
    tmp_path: Path, store: Store
) -> None:
    big = tmp_path / "big.txt"
    big.write_text("A title\n\n" + "word " * 1_200_000)
    small = tmp_path / "small.txt"
    small.write_text("Small title\n\nSmall body.\n")
    big_report, small_report = await ingest(store, [str(big), str(small)], progress=False)
    assert big_report.failed == 1
    assert "larger than 5 MB" in big_report.errors[0]
    assert small_report.new == 1


async def test_a_progress_bar_over_files(
    tmp_path: Path, store: Store, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "many"
    folder.mkdir()
    for n in range(5):
        (folder / f"{n}.txt").write_text(f"Story {n}\n\nBody of story {n}.\n")
    seen: list[SourceReport] = []
    await ingest(store, [str(folder)], progress=True, on_report=seen.append)
    assert len(seen) == 5
    err = capsys.readouterr().err
    assert "/5 [" in err
    assert "file" in err


async def test_a_source_that_breaks_a_parser_is_reported_and_the_rest_go_on(
    tmp_path: Path, store: Store
) -> None:
    # feedparser raises UnicodeEncodeError on a character reference to a lone surrogate; that
    # once ended the whole `newsbot ingest` with a traceback.
    feed = tmp_path / "surrogate.rss"
    feed.write_bytes(rss_item("A &#xD800; title", "Jane Doe", "news"))
    after = tmp_path / "after.txt"
    after.write_text("After the feed\n\nThis story still goes in.\n")
    feed_report, after_report = await ingest(store, [str(feed), str(after)], progress=False)
    assert feed_report.failed == 1
    assert feed_report.errors[0].startswith(f"{feed}: ")
    assert after_report.new == 1
