"""Property tests of the import path: random JSON Lines lines (valid records and hostile ones:
random JSON values, lone surrogates, huge integers, deep nesting, random bytes) and random
RSS/Atom items go through `bot.ingest.ingest` into a real temporary SQLite store. No
exception escapes, every bad record is reported with its line, every good record is stored."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import tempfile
from pathlib import Path
from xml.sax.saxutils import escape

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.ingest import SourceReport, ingest
from news.articles import MAX_TITLE
from storage import Store

FIELDS = ["id", "title", "text", "published", "url", "summary", "source", "author", "category"]

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.integers()
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.sampled_from(FIELDS) | st.text(max_size=5), children, max_size=6)
    ),
    max_leaves=20,
)
surrogates = st.integers(0xD800, 0xDFFF).map(chr)
words = st.text("abcdefghijklmnopqrstuvwxyz", min_size=1, max_size=12)


@st.composite
def hostile_line(draw: st.DrawFn) -> bytes:
    """One line that is probably not a valid record (it may happen to be one)."""
    kind = draw(st.sampled_from(["value", "record", "surrogate", "huge", "deep", "bytes"]))
    if kind == "value":
        return json.dumps(draw(json_values)).encode()
    if kind == "record":
        record = draw(st.dictionaries(st.sampled_from(FIELDS), json_values, max_size=8))
        return json.dumps(record).encode()
    if kind == "surrogate":
        field = draw(st.sampled_from(["title", "text", "author", "source"]))
        text = draw(words) + draw(surrogates) + draw(words)
        record = {"title": "Some title", "text": "Some body.", field: text}
        return json.dumps(record).encode()  # ensure_ascii: the surrogate becomes \udxxx
    if kind == "huge":
        digits = "9" * draw(st.integers(4301, 6000))
        field = draw(st.sampled_from(["id", "published", "title"]))
        return f'{{"title": "T", "text": "B.", "{field}": {digits}}}'.encode()
    if kind == "deep":
        depth = draw(st.integers(1000, 5000))
        return (
            '{"title": "T", "text": "B.", "category": ' + "[" * depth + "]" * depth + "}"
        ).encode()
    raw = draw(st.binary(min_size=1, max_size=200))
    return raw.replace(b"\n", b" ")


def good_line(number: int, title: str, author: str | None, date: str | None) -> bytes:
    """A valid record, distinct from every other by its id and its text."""
    record: dict[str, object] = {
        "id": f"good-{number}",
        "title": f"{title} {number}",
        "text": f"Story number {number} opens here.\n\nIt goes on, {number} times.",
    }
    if author is not None:
        record["author"] = author
    if date is not None:
        record["published"] = date
    return json.dumps(record).encode()


good_fields = st.tuples(
    st.text(max_size=400).map(lambda s: "Title " + " ".join(s.split())),
    st.none() | st.text(max_size=300).map(lambda s: "A " + " ".join(s.split())),
    st.none() | st.sampled_from(["2024-05-01", "2020-08-17T22:12:00+05:30", "9999-12-31"]),
)


def run_ingest(path: Path) -> tuple[SourceReport, set[str]]:
    """`newsbot ingest`'s import of one file into a fresh database: the report and the
    external ids stored."""

    async def go() -> SourceReport:
        store = await Store.open(path.parent / "prop.db")
        try:
            [report] = await ingest(store, [str(path)], progress=False)
        finally:
            await store.close()
        return report

    report = asyncio.run(go())
    with sqlite3.connect(path.parent / "prop.db") as db:
        ids = {row[0] for row in db.execute("SELECT external_id FROM stories")}
        longest = db.execute("SELECT coalesce(max(length(title)), 0) FROM stories").fetchone()[0]
    assert longest <= MAX_TITLE
    return report, ids


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(
    st.lists(
        st.one_of(
            good_fields.map(lambda f: ("good", f)), hostile_line().map(lambda b: ("bad", b))
        ),
        min_size=1,
        max_size=25,
    )
)
def test_random_jsonl_lines_never_break_an_import(
    lines: list[tuple[str, object]],
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "random.jsonl"
        # A good record first: line 1 is then never a bare BOM or blank.
        encoded = [good_line(0, "First", None, None)]
        good_ids = {"good-0"}
        hostile: set[int] = set()
        for number, (kind, value) in enumerate(lines, 1):
            if kind == "good":
                title, author, date = value  # type: ignore[misc]
                encoded.append(good_line(number, title, author, date))
                good_ids.add(f"good-{number}")
            else:
                assert isinstance(value, bytes)
                encoded.append(value)
                if value.decode("utf-8", errors="replace").strip():
                    hostile.add(number + 1)  # (line 1 is the first good record)
        path.write_bytes(b"\n".join(encoded) + b"\n")

        report, ids = run_ingest(path)

    assert not any("internal error" in error for error in report.errors), report.errors
    assert good_ids <= ids, (good_ids - ids, report.errors)
    failed_lines = {int(error.split(":")[1]) for error in report.errors}
    # Every reported line is a hostile one, and every hostile line is reported or stored.
    assert failed_lines <= hostile
    assert report.failed == len(failed_lines)
    assert report.new + report.duplicate + report.failed == len(good_ids) + len(hostile)


feed_text = st.text(
    st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00"), max_size=400
)
feed_date = (
    st.none()
    | st.sampled_from(
        ["Mon, 17 Aug 2020 22:12:00 +0000", "Fri, 31 Dec 9999 23:59:59 -1400", "not a date", "0"]
    )
    | st.text(max_size=30)
)
feed_item = st.fixed_dictionaries(
    {
        "title": feed_text,
        "link": st.none()
        | st.sampled_from(["https://example.org/a", "javascript:x", ""])
        | st.text(max_size=50).map(lambda s: "https://example.org/" + s),
        "guid": st.none() | st.text(max_size=60),
        "date": feed_date,
        "author": st.none() | feed_text,
        "category": st.none() | feed_text,
        "description": feed_text,
    }
)


def feed_document(kind: str, items: list[dict[str, str | None]], raw: bool) -> bytes:
    """An RSS 2.0 or Atom document of `items`; `raw` leaves text unescaped (often broken XML)."""

    def x(value: str | None) -> str:
        return (value or "") if raw else escape(value or "")

    parts: list[str] = []
    for item in items:
        if kind == "rss":
            fields = [
                f"<title>{x(item['title'])}</title>",
                f"<description>{x(item['description'])}</description>",
            ]
            tags = {
                "link": "link",
                "guid": "guid",
                "date": "pubDate",
                "author": "author",
                "category": "category",
            }
            fields += [
                f"<{tag}>{x(item[key])}</{tag}>"
                for key, tag in tags.items()
                if item[key] is not None
            ]
            parts.append("<item>" + "".join(fields) + "</item>")
        else:
            fields = [
                f"<title>{x(item['title'])}</title>",
                f"<summary>{x(item['description'])}</summary>",
            ]
            if item["link"] is not None:
                fields.append(f'<link href="{escape(item["link"], {chr(34): "&quot;"})}"/>')
            if item["guid"] is not None:
                fields.append(f"<id>{x(item['guid'])}</id>")
            if item["date"] is not None:
                fields.append(f"<updated>{x(item['date'])}</updated>")
            if item["author"] is not None:
                fields.append(f"<author><name>{x(item['author'])}</name></author>")
            if item["category"] is not None:
                fields.append(
                    f'<category term="{escape(item["category"], {chr(34): "&quot;"})}"/>'
                )
            parts.append("<entry>" + "".join(fields) + "</entry>")
    if kind == "rss":
        doc = (
            '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>'
            "<title>Random Wire</title><link>https://example.org/</link><description>d</description>"
            + "".join(parts)
            + "</channel></rss>"
        )
    else:
        doc = (
            '<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom">'
            "<title>Random Atom</title><id>urn:random</id>" + "".join(parts) + "</feed>"
        )
    return doc.encode("utf-8")


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(st.sampled_from(["rss", "atom"]), st.lists(feed_item, max_size=6), st.booleans())
# news/feeds.py asks feedparser for `updated_parsed` when an item's date did not parse, and
# feedparser 6 warns about its fallback mapping (a DeprecationWarning, silent in production).
# Not this test's subject; left to the feeds code (see the report of issue 10, part C).
@pytest.mark.filterwarnings("ignore:To avoid breaking existing software:DeprecationWarning")
def test_random_feed_items_never_break_an_import(
    kind: str, items: list[dict[str, str | None]], raw: bool
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"random.{'rss' if kind == 'rss' else 'atom'}"
        path.write_bytes(feed_document(kind, items, raw))
        report, _ = run_ingest(path)
    assert not any("internal error" in error for error in report.errors), report.errors
    # Every failure names what went wrong (the feed as a whole, or an item of it).
    assert all(
        error.startswith(str(path)) and len(error) > len(str(path)) + 2 for error in report.errors
    )
    if report.failed_entirely:
        assert report.errors
