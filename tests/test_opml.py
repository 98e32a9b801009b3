"""OPML import and export (one case per file, expected result beside it)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from news.opml import OpmlError, OpmlFeed, parse_opml, write_opml

OPML = Path(__file__).parent / "data" / "opml"
CASES = sorted(OPML.glob("*.json"))


def test_every_saved_file_has_a_case() -> None:
    assert {p.stem for p in OPML.iterdir() if p.suffix != ".json"} == {c.stem for c in CASES}


@pytest.mark.parametrize("case_path", CASES, ids=[c.stem for c in CASES])
def test_saved_opml(case_path: Path) -> None:
    case = json.loads(case_path.read_text("utf-8"))
    source = next(p for p in OPML.glob(case_path.stem + ".*") if p.suffix != ".json")
    if "error" in case:
        with pytest.raises(OpmlError, match=case["error"]):
            parse_opml(source.read_bytes())
        return
    feeds = parse_opml(source.read_bytes())
    assert [
        {"url": f.url, "title": f.title, "folder": f.folder, "html_url": f.html_url} for f in feeds
    ] == case["feeds"]


def test_write_then_read_round_trip() -> None:
    feeds = [
        OpmlFeed("https://a.example/feed", 'A <b>bold</b> & "quoted" feed', "News & Views"),
        OpmlFeed("https://b.example/rss?x=1&y=2", None, "News & Views", "https://b.example/"),
        OpmlFeed("https://c.example/atom", "Северный вестник"),
    ]
    text = write_opml(feeds, "newsbot feeds", now=datetime(2024, 9, 7, 10, 15, tzinfo=UTC))
    assert text.startswith('<?xml version="1.0" encoding="UTF-8"?>\n<opml version="2.0">')
    assert "<dateCreated>Sat, 07 Sep 2024 10:15:00 GMT</dateCreated>" in text
    assert "&amp; &quot;quoted&quot;" in text
    back = parse_opml(text.encode("utf-8"))
    assert back == [
        feeds[0],
        OpmlFeed(
            "https://b.example/rss?x=1&y=2",
            "https://b.example/rss?x=1&y=2",
            "News & Views",
            "https://b.example/",
        ),
        feeds[2],
    ]


def test_write_empty_list() -> None:
    assert parse_opml(write_opml([], "none").encode()) == []


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"<opml><head/></opml>",
        b'<?xml version="1.0"?><!DOCTYPE opml SYSTEM "http://127.0.0.1:9/x.dtd"><opml/>',
    ],
)
def test_bad_documents(data: bytes) -> None:
    with pytest.raises(OpmlError):
        parse_opml(data)
