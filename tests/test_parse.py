"""Tests for news.parse and news.dates: plain-text articles (the real WION sample and the cases
in tests/data/articles, one file each with its expected fields beside it), JSON Lines archives,
format sniffing, decoding, and the bundled demo stories in news/samples."""

from __future__ import annotations

import json
import os
import re
import sys
import unicodedata
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import news.parse as parse_module
from news.articles import Article, ParseError, RelatedLink
from news.dates import ZONES, parse_date, parse_iso
from news.parse import decode, parse_jsonl, parse_text_article, sniff
from news.text import clean

HERE = Path(__file__).resolve().parent
CASES = HERE / "data" / "articles"
SAMPLES = Path(parse_module.__file__).resolve().parent / "samples"
SHARED = Path(os.environ.get("NEWSBOT_SHARED", HERE.parents[1] / "shared"))
WION = SHARED / "samples" / "wion-belarus-2020-08-17.txt"
CORPUS = SHARED / "corpus"


# --- the real sample ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def wion() -> Article:
    """The WION sample from the shared folder, read in place."""
    if not WION.is_file():
        pytest.skip(f"shared sample not found at {WION} (set NEWSBOT_SHARED to the shared folder)")
    return parse_text_article(decode(WION.read_bytes()))


def test_wion_header(wion: Article) -> None:
    assert wion.title == "Now, Putin offers 'military assistance' to Lukashenko to handle protests"
    assert wion.author == "Palki Sharma"
    assert wion.source == "WION"
    assert wion.place == "New Delhi, Delhi, India"
    assert wion.published == datetime(2020, 8, 17, 16, 42, tzinfo=UTC)
    assert wion.published.isoformat() == "2020-08-17T16:42:00+00:00"
    assert wion.utc_offset_minutes == 330
    assert wion.zone == "IST"
    assert wion.caption == "Lukashenko and Putin (Photograph: Reuters)"


def test_wion_highlights_and_related(wion: Article) -> None:
    assert len(wion.highlights) == 2
    assert wion.highlights[0].startswith("This is the freedom march.")
    assert wion.highlights[1].startswith("Belarus protests are the biggest")
    assert wion.highlights[1].endswith("sending its military to Europe.")
    assert wion.related == (
        RelatedLink(
            "Belarus: Lukashenko gives nod to fresh elections, says it will happen after "
            "adoption of new constitution"
        ),
        RelatedLink("Find out how the political crisis in Belarus could unfold"),
    )


def test_wion_body(wion: Article) -> None:
    assert wion.body[0].startswith("The independence square at the centre of the city")
    assert len(wion.body) == 12
    assert wion.body[-1].startswith("Last month, 33 men were arrested")
    for paragraph in wion.body:
        assert "Also read" not in paragraph
        assert "Read in App" not in paragraph
        assert "\u00a0" not in paragraph
        assert "  " not in paragraph
        assert paragraph == paragraph.strip()
    # NBSP runs around the dash collapse to single spaces.
    assert "red and white - the colours of the Opposition" in wion.body[1]
    assert "\u201ccomprehensive military assistance\u201d" in wion.body[9]


# --- variation files ---------------------------------------------------------------------------

CASE_NAMES = sorted(path.stem for path in CASES.glob("*.txt"))


def test_every_case_has_its_expectation() -> None:
    assert len(CASE_NAMES) >= 20
    assert sorted(path.stem for path in CASES.glob("*.json")) == CASE_NAMES


def _plain(value: Any) -> Any:
    """An Article field as it is written in the expectation files."""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, RelatedLink):
        return {"title": value.title, "url": value.url}
    if isinstance(value, tuple):
        return [_plain(item) for item in value]
    return value


@pytest.mark.parametrize("name", CASE_NAMES)
def test_article_case(name: str) -> None:
    expected = json.loads((CASES / f"{name}.json").read_text(encoding="utf-8"))
    expected.pop("_about")
    text = decode((CASES / f"{name}.txt").read_bytes())
    source_name = expected.pop("source_name", None)
    error = expected.pop("error", None)
    if error is not None:
        with pytest.raises(ParseError) as caught:
            parse_text_article(text, source_name=source_name)
        assert error["message"] in str(caught.value)
        assert caught.value.line == error["line"]
        return
    article = parse_text_article(text, source_name=source_name)
    assert expected, "an expectation file must check something"
    for key, value in expected.items():
        assert _plain(getattr(article, key)) == value, key
    assert article.published is None or article.published.tzinfo is UTC


def test_crlf_and_bom_case_is_really_crlf() -> None:
    # Guards against a checkout that rewrote line endings (add `-text` for tests/data).
    data = (CASES / "crlf-bom.txt").read_bytes()
    assert data.startswith(b"\xef\xbb\xbf")
    assert data.count(b"\r\n") == data.count(b"\n") > 5


@pytest.mark.parametrize("newline", ["\r\n", "\r", "\u2028"])
def test_line_endings_do_not_matter(newline: str) -> None:
    text = (SAMPLES / "larkhaven-tidal-barrier.txt").read_text(encoding="utf-8")
    assert parse_text_article(text.replace("\n", newline)) == parse_text_article(text)


def test_byline_variants() -> None:
    def byline(line: str) -> tuple[str | None, str | None]:
        article = parse_text_article(f"Headline\n\n{line}\n\nBody text.")
        return article.author, article.source

    assert byline("By Jane Doe, Reuters") == ("Jane Doe", "Reuters")
    assert byline("By JANE DOE and JOHN ROE") == ("Jane Doe and John Roe", None)
    assert byline("Edited By: Palki Sharma WION") == ("Palki Sharma", "WION")
    assert byline("By Jane Doe, John Roe and Ann Poe") == ("Jane Doe, John Roe and Ann Poe", None)
    assert byline("By Jane Doe, Health Correspondent") == ("Jane Doe", None)
    assert byline("Written by Jane Doe in Geneva") == ("Jane Doe", None)
    assert byline("By Jane Doe | The Guardian") == ("Jane Doe", "The Guardian")
    assert byline("By Jean-Luc O'Neil III") == ("Jean-Luc O'Neil III", None)
    assert byline("By Ludwig van Beethoven, Associated Press") == (
        "Ludwig van Beethoven",
        "Associated Press",
    )
    # Not bylines: the line stays in the body.
    for sentence in ("By the numbers: a year of floods", "By 2030, half the fleet is electric"):
        article = parse_text_article(f"Headline\n\n{sentence}\n\nMore.")
        assert article.author is None
        assert article.body[0] == sentence


def test_dateline_variants() -> None:
    def header(line: str) -> Article:
        return parse_text_article(f"Headline\n\n{line}\n\nBody text.")

    article = header("Published on 17 August 2020 at 09:30 CEST")
    assert article.published == datetime(2020, 8, 17, 7, 30, tzinfo=UTC)
    assert article.body == ("Body text.",)
    article = header("Last updated: 18 Aug 2020")
    assert article.published == datetime(2020, 8, 18, tzinfo=UTC)
    # In the header, "Published:" with an unreadable date is still a dateline (no date).
    article = header("London | Published: 3 hours ago")
    assert (article.place, article.published, article.body) == ("London", None, ("Body text.",))
    # Without a colon the date must parse: otherwise the line is the story.
    article = header("Updated figures show a rise in visitors.")
    assert article.body == ("Updated figures show a rise in visitors.", "Body text.")


def test_title_skips_page_furniture_only() -> None:
    article = parse_text_article("Skip to content\nMenu\n***\n\nReal headline\n\nBody.")
    assert article.title == "Real headline"
    photo = parse_text_article("Photo: The best pictures of the week\n\nBody.")
    assert photo.title == "Photo: The best pictures of the week"
    assert photo.caption is None


def test_source_name_only_as_fallback() -> None:
    named = parse_text_article("Headline\nBy Jane Doe, Reuters\n\nBody.", source_name="Feed")
    unnamed = parse_text_article("Headline\nBy Jane Doe\n\nBody.", source_name="Feed")
    assert (named.source, unnamed.source) == ("Reuters", "Feed")


# --- dates -------------------------------------------------------------------------------------

DATES = [
    ("Aug 17, 2020, 10:12 PM(IST)", "2020-08-17T16:42:00+00:00", 330, "IST"),
    ("August 17, 2020 10:12 PM IST", "2020-08-17T16:42:00+00:00", 330, "IST"),
    ("17 August 2020, 22:12 GMT", "2020-08-17T22:12:00+00:00", 0, "GMT"),
    ("2020-08-17T22:12:00+05:30", "2020-08-17T16:42:00+00:00", 330, None),
    ("2020-08-17T22:12:00Z", "2020-08-17T22:12:00+00:00", 0, None),
    ("2020-08-17 22:12", "2020-08-17T22:12:00+00:00", None, None),
    ("2020-08-17", "2020-08-17T00:00:00+00:00", None, None),
    ("Mon, 17 Aug 2020 22:12:00 +0000", "2020-08-17T22:12:00+00:00", 0, None),
    ("Mon, 17 Aug 2020 22:12:00 -0400", "2020-08-18T02:12:00+00:00", -240, None),
    ("17.08.2020 22:12 MSK", "2020-08-17T19:12:00+00:00", 180, "MSK"),
    ("17-08-2020 22:12", "2020-08-17T22:12:00+00:00", None, None),
    ("Sat 17 Aug 2020 09.30 BST", "2020-08-17T08:30:00+00:00", 60, "BST"),
    ("Monday, 17th August 2020 at 22:12 hrs CEST", "2020-08-17T20:12:00+00:00", 120, "CEST"),
    ("Aug. 17, 2020 10:12 a.m. EDT", "2020-08-17T14:12:00+00:00", -240, "EDT"),
    ("Jan 17, 2020 10 pm ET", "2020-01-18T03:00:00+00:00", -300, "ET"),
    ("Jul 4, 2020 9:00 AM PT", "2020-07-04T16:00:00+00:00", -420, "PT"),
    ("2020/08/17 10:00 UTC+3", "2020-08-17T07:00:00+00:00", 180, None),
    ("17 Aug 2020 12:00 PM JST", "2020-08-17T03:00:00+00:00", 540, "JST"),
    ("17 Aug 2020 12:00 AM AEST", "2020-08-16T14:00:00+00:00", 600, "AEST"),
    ("17 Aug 2020 08:00 WIB", "2020-08-17T01:00:00+00:00", 420, "WIB"),
    ("17 Aug 2020 08:00 pkt", "2020-08-17T03:00:00+00:00", 300, "PKT"),
]


@pytest.mark.parametrize(("text", "utc", "offset", "zone"), DATES)
def test_parse_date(text: str, utc: str, offset: int | None, zone: str | None) -> None:
    parsed = parse_date(text)
    assert parsed is not None
    assert parsed.utc.tzinfo is UTC
    assert (parsed.utc.isoformat(), parsed.utc_offset_minutes, parsed.zone) == (utc, offset, zone)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "yesterday",
        "3 hours ago",
        "The council met on 17 August 2020",
        "Aug 17",
        "2020-02-30",
        "31.04.2020",
        "17 Aug 2020 25:00",
        "17 Aug 2020 22:12 +0200 EST",
        "17 Aug 2020 22:12 XYZ",
        "Aug 17, 2020, 10:12 PM(IST) and Aug 18, 2020",
        "Aug 2020-08-17",
        "10:12 PM IST",
    ],
)
def test_parse_date_rejects(text: str) -> None:
    assert parse_date(text) is None


def test_zone_table() -> None:
    assert ZONES["IST"] == 330
    for name in ("GMT", "UTC", "BST", "CET", "CEST", "EET", "EEST", "MSK", "EST", "EDT", "CST"):
        assert name in ZONES
    for name in ("CDT", "MST", "MDT", "PST", "PDT", "JST", "KST", "HKT", "SGT", "AEST", "AEDT"):
        assert name in ZONES
    assert all(-12 * 60 <= minutes <= 14 * 60 for minutes in ZONES.values())


def test_parse_iso_only_takes_iso() -> None:
    assert parse_iso("Aug 17, 2020") is None
    parsed = parse_iso(" 2020-08-17T22:12:00.123+01:00 ")
    assert parsed is not None
    assert parsed.utc == datetime(2020, 8, 17, 21, 12, 0, 123000, tzinfo=UTC)


@settings(max_examples=200, deadline=None)
@given(
    st.datetimes(
        min_value=datetime.fromisoformat("1950-01-01"),
        max_value=datetime.fromisoformat("2080-12-31"),
    ),
    st.sampled_from(sorted(ZONES)),
)
def test_parse_date_round_trips(moment: datetime, zone: str) -> None:
    moment = moment.replace(microsecond=0)
    for text in (
        f"{moment:%b %d, %Y, %I:%M:%S %p}({zone})",
        f"{moment:%A, %d %B %Y %H:%M:%S} {zone}",
        f"{moment:%d.%m.%Y %H:%M:%S} {zone}",
    ):
        parsed = parse_date(text)
        assert parsed is not None, text
        assert parsed.zone == ("UTC" if zone == "Z" else zone)
        local = parsed.utc + timedelta(minutes=ZONES[zone])
        assert local.replace(tzinfo=None) == moment, text


# --- JSON Lines --------------------------------------------------------------------------------

GOOD = {
    "id": "demo-1",
    "title": "  A\u00a0title ",
    "category": "science",
    "published": "2015-03-06",
    "url": "https://example.org/a",
    "text": "First paragraph.\n\nSecond, with\na kept line break.\n\n\n \nThird.",
    "summary": ["First paragraph.", " Third. "],
    "source": "Example News",
    "author": "Jane Doe",
}


def _jsonl(*records: object) -> list[str]:
    return [r if isinstance(r, str) else json.dumps(r, ensure_ascii=False) + "\n" for r in records]


def test_jsonl_good_record() -> None:
    [(number, article)] = list(parse_jsonl(_jsonl(GOOD)))
    assert number == 1
    assert isinstance(article, Article)
    assert article.external_id == "demo-1"
    assert article.title == "A title"
    assert article.category == "science"
    assert article.published == datetime(2015, 3, 6, tzinfo=UTC)
    assert article.url == "https://example.org/a"
    assert article.body == ("First paragraph.", "Second, with\na kept line break.", "Third.")
    assert article.highlights == ("First paragraph.", "Third.")
    assert article.reference_summary == article.highlights
    assert (article.source, article.author) == ("Example News", "Jane Doe")


def test_jsonl_optional_fields_and_dates() -> None:
    minimal = {"title": "T", "text": "Body."}
    aware = {**minimal, "id": 7, "published": "2020-08-17T22:12:00+05:30", "url": None}
    naive = {**minimal, "published": "2020-08-17T22:12:00", "summary": None, "category": None}
    results = [result for _, result in parse_jsonl(_jsonl(minimal, aware, naive))]
    assert all(isinstance(result, Article) for result in results)
    first, second, third = results
    assert isinstance(first, Article)
    assert isinstance(second, Article)
    assert isinstance(third, Article)
    assert (first.external_id, first.published, first.highlights) == (None, None, ())
    assert second.external_id == "7"
    assert second.published == datetime(2020, 8, 17, 16, 42, tzinfo=UTC)
    assert second.utc_offset_minutes == 330
    assert third.published == datetime(2020, 8, 17, 22, 12, tzinfo=UTC)
    assert third.utc_offset_minutes is None


def test_jsonl_bad_lines_keep_going() -> None:
    lines = [
        "\ufeff" + json.dumps(GOOD) + "\n",  # 1: BOM on the first line
        "\n",  # 2: blank, skipped
        "{not json\n",  # 3
        "[1, 2]\n",  # 4
        json.dumps({"text": "no title"}) + "\n",  # 5
        json.dumps({"title": " ", "text": "blank title"}) + "\n",  # 6
        json.dumps({"title": "T"}) + "\n",  # 7
        json.dumps({"title": "T", "text": "\u00a0\n\n"}) + "\n",  # 8
        json.dumps({"title": "T", "text": ["list"]}) + "\n",  # 9
        json.dumps({"title": "T", "text": "x", "published": "last Tuesday"}) + "\n",  # 10
        json.dumps({"title": "T", "text": "x", "published": 20200817}) + "\n",  # 11
        json.dumps({"title": "T", "text": "x", "summary": "one string"}) + "\n",  # 12
        json.dumps({"title": "T", "text": "x", "summary": ["ok", 3]}) + "\n",  # 13
        json.dumps({"title": "T", "text": "x", "id": True}) + "\n",  # 14
        json.dumps({"title": "T", "text": "x", "url": "ftp://example.org"}) + "\n",  # 15
        json.dumps({"title": 5, "text": "x"}) + "\n",  # 16
        "[" * 100_000 + "\n",  # 17
        "   \t \n",  # 18: blank, skipped
        json.dumps({**GOOD, "id": "last"}),  # 19: no final newline
    ]
    results = list(parse_jsonl(lines))
    assert [number for number, _ in results] == [1, *range(3, 18), 19]
    reasons = {number: str(result) for number, result in results}
    expected = {
        3: "invalid JSON",
        4: "expected a JSON object, got an array",
        5: "missing 'title'",
        6: "'title' is empty",
        7: "missing 'text'",
        8: "'text' is empty",
        9: "'text' must be a string, not an array",
        10: "'published' is not a date",
        11: "'published' must be a string or null, not a number",
        12: "'summary' must be a list of strings, not a string",
        13: "'summary' items must be strings, not a number",
        14: "'id' must be a string or a number, not a boolean",
        15: "'url' must be an http(s) URL",
        16: "'title' must be a string or null, not a number",
        17: "invalid JSON",
    }
    for number, reason in expected.items():
        result = dict(results)[number]
        assert isinstance(result, ParseError), number
        assert result.line == number
        assert reason in reasons[number], (number, reasons[number])
    assert isinstance(dict(results)[1], Article)
    last = dict(results)[19]
    assert isinstance(last, Article)
    assert last.external_id == "last"


def test_jsonl_is_lazy() -> None:
    def lines() -> Any:
        yield json.dumps(GOOD)
        raise AssertionError("read past the first record")

    number, article = next(parse_jsonl(lines()))
    assert number == 1
    assert isinstance(article, Article)


@pytest.mark.corpus
@pytest.mark.parametrize(
    ("name", "count"),
    [("bbc_news_summary.jsonl", 2225), ("cnndm_validation_sample.jsonl", 1000)],
)
def test_jsonl_corpus(name: str, count: int) -> None:
    path = CORPUS / name
    if not path.is_file():
        pytest.skip(f"corpus file not found at {path} (set NEWSBOT_SHARED to the shared folder)")
    with path.open(encoding="utf-8") as lines:
        results = list(parse_jsonl(lines))
    assert len(results) == count
    errors = [(number, result) for number, result in results if isinstance(result, ParseError)]
    assert errors == []
    articles = [result for _, result in results if isinstance(result, Article)]
    assert all(article.body and article.title and article.external_id for article in articles)
    assert all(article.highlights == article.reference_summary for article in articles)
    assert all(article.highlights for article in articles)
    if name.startswith("cnndm"):
        assert all(a.published is not None and a.published.tzinfo is UTC for a in articles)
        assert all(a.url is not None and a.source == "CNN" for a in articles)
    else:
        assert all(a.published is None and a.source == "BBC News" for a in articles)
        # The BBC bullet lists keep their single line breaks inside a paragraph.
        assert any("\n" in paragraph for a in articles for paragraph in a.body)


# --- sniff and decode --------------------------------------------------------------------------

SNIFF = [
    (b'{"id": "x", "title": "t"}\n', "archive.dat", "jsonl"),
    (b"\xef\xbb\xbf\n\n  {\"id\": 1}", "", "jsonl"),
    (b"not json at all\n", "export.jsonl", "jsonl"),
    (b'<?xml version="1.0" encoding="utf-8"?>\n<rss version="2.0"><channel>', "", "feed"),
    (b'\xef\xbb\xbf<?xml version="1.0"?>\n<!-- c -->\n<feed xmlns="urn:a">', "", "feed"),
    (b'<?xml version="1.0"?><?xml-stylesheet href="s.xsl"?><rdf:RDF xmlns:rdf="x">', "", "feed"),
    (b"<?xml version='1.0'?>\n<unknown/>", "https://example.org/news.xml?page=2", "feed"),
    (b"<!DOCTYPE html>\n<html lang=en><head><title>x</title>", "", "html"),
    (b"  <!doctype HTML><HTML>", "page.txt", "html"),
    (b'<?xml version="1.0"?>\n<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0 Strict//EN" "x">\n'
     b'<html xmlns="http://www.w3.org/1999/xhtml">', "", "html"),
    (b"<div class=story><p>Hello</p></div>", "", "html"),
    (b"", "https://example.org/story.html", "html"),
    (b"Now, Putin offers help\n\nEdited By: Palki Sharma WION\n", "wion.txt", "text"),
    (b"<3 the new library\n\nIt opened today.", "", "text"),
    (b"\xff\xfe" + "Headline\n\nBody".encode("utf-16-le"), "", "text"),
    (b"\xff\xfe" + '<?xml version="1.0"?><rss>'.encode("utf-16-le"), "", "feed"),
]  # fmt: skip


@pytest.mark.parametrize(("head", "name", "kind"), SNIFF)
def test_sniff(head: bytes, name: str, kind: str) -> None:
    assert sniff(head, name) == kind


def test_sniff_real_files() -> None:
    for path in SAMPLES.glob("*.txt"):
        assert sniff(path.read_bytes()[:4096], path.name) == "text"
    if CORPUS.is_dir():
        for path in CORPUS.glob("*.jsonl"):
            with path.open("rb") as handle:
                assert sniff(handle.read(4096), path.name) == "jsonl"


@pytest.mark.parametrize(
    ("data", "text"),
    [
        ("café £5 \u2014 ok".encode(), "café £5 \u2014 ok"),
        (b"\xef\xbb\xbfcaf\xc3\xa9", "café"),
        ("\ufeffcafé".encode("utf-16-le"), "café"),
        (b"\xfe\xff" + "café".encode("utf-16-be"), "café"),
        (b"\xa3100 \x93quoted\x94 \x96 dash", "£100 \u201cquoted\u201d \u2013 dash"),
        (b"\xef\xbb\xbf\xa3 after a BOM", "£ after a BOM"),
        (b"undefined \x81 byte", "undefined \ufffd byte"),
        (b"", ""),
    ],
)
def test_decode(data: bytes, text: str) -> None:
    assert decode(data) == text


def test_decode_real_sample_matches_utf8() -> None:
    if not WION.is_file():
        pytest.skip(f"shared sample not found at {WION} (set NEWSBOT_SHARED to the shared folder)")
    data = WION.read_bytes()
    assert decode(data) == data.decode("utf-8")


# --- Unicode fast path -------------------------------------------------------------------------


def _reference_clean(text: str) -> str:
    return clean(parse_module._DROP.sub("", text))


ODD = "\u00a0\u2009\u200b\u200d\u200e\u202b\u202c\u2066\ufeff\u00ad\u0301\t\r\n\x00\x07 \u212b"


@settings(max_examples=500, deadline=None)
@given(st.text(alphabet=st.one_of(st.characters(), st.sampled_from(ODD)), max_size=60))
def test_fast_clean_matches_clean(text: str) -> None:
    assert parse_module._fast_clean(text) == _reference_clean(text)


def test_fast_clean_every_code_point() -> None:
    # The fast path trusts that every character clean() changes is not printable; check all.
    for code in range(sys.maxunicode + 1):
        char = chr(code)
        if 0xD800 <= code <= 0xDFFF or not char.isprintable():
            continue
        text = f"a{char}b"
        if unicodedata.is_normalized("NFC", text):
            assert clean(text) == text, hex(code)


# --- robustness --------------------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.text(max_size=40),
            st.sampled_from(
                [
                    "",
                    "Story highlights",
                    "Also read: Something else",
                    "By Jane Doe, Reuters",
                    "Published: Aug 17, 2020, 10:12 PM(IST)",
                    "Photo Photograph:( AP )",
                    "Read in App",
                    "• a bullet",
                    "***",
                    "Updated: never",
                ]
            ),
        ),
        max_size=20,
    )
)
def test_text_parser_only_raises_parse_error(lines: list[str]) -> None:
    error: ParseError | None = None
    try:
        article = parse_text_article("\n".join(lines))
    except ParseError as exc:
        error = exc
    if error is not None:
        assert error.line is not None
        assert error.line >= 1
    else:
        assert article.title
        assert article.body
        assert all(paragraph and paragraph == paragraph.strip() for paragraph in article.body)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(st.text(max_size=30), st.builds(json.dumps, st.dictionaries(
    st.sampled_from(["id", "title", "text", "published", "summary", "url", "category"]),
    st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=20),
              st.lists(st.text(max_size=5), max_size=3)),
))), max_size=10))  # fmt: skip
def test_jsonl_parser_never_raises(lines: list[str]) -> None:
    for number, result in parse_jsonl(lines):
        assert isinstance(result, Article | ParseError)
        if isinstance(result, ParseError):
            assert result.line == number


# --- bundled demo stories ----------------------------------------------------------------------

SAMPLE_FILES = sorted(SAMPLES.glob("*.txt"))


@pytest.fixture(scope="module")
def samples() -> dict[str, Article]:
    """Every bundled demo story, parsed, by file name."""
    return {path.name: parse_text_article(decode(path.read_bytes())) for path in SAMPLE_FILES}


def test_samples_parse(samples: dict[str, Article]) -> None:
    assert 6 <= len(samples) <= 8
    for name, article in samples.items():
        assert article.title, name
        assert article.published is not None, name
        assert article.published.tzinfo is UTC, name
        assert len(article.body) >= 5, name
        words = sum(len(paragraph.split()) for paragraph in (*article.highlights, *article.body))
        assert 250 <= words <= 600, (name, words)
        for paragraph in article.body:
            assert not re.match(r"(?i)(also read|read in app|follow|download|share)\b", paragraph)


def test_samples_exercise_the_format(samples: dict[str, Article]) -> None:
    articles = list(samples.values())
    assert sum(bool(a.highlights) for a in articles) >= 2
    assert sum(bool(a.caption) for a in articles) >= 2
    assert sum(bool(a.place) for a in articles) >= 2
    assert any(a.author and a.source for a in articles)
    assert len({(a.utc_offset_minutes, a.zone) for a in articles}) >= 5
    titles = {a.title for a in articles}
    assert len(titles) == len(articles)
    for name, article in samples.items():
        assert article.related, name
        for link in article.related:
            assert link.title in titles, (name, link.title)
            assert link.title != article.title, name


def test_samples_support_the_climate_demo(samples: dict[str, Article]) -> None:
    def words_of(article: Article) -> set[str]:
        text = " ".join((article.title, *article.highlights, *article.body)).lower()
        return set(re.findall(r"\w+", text))

    def mentions_climate_change(article: Article) -> bool:
        text = " ".join((article.title, *article.highlights, *article.body)).lower()
        return "climate change" in text

    opinion = [a for a in samples.values() if "opinion" in words_of(a)]
    climate = [a for a in samples.values() if mentions_climate_change(a)]
    assert len(opinion) == 1
    assert opinion[0] in climate
    assert len(climate) >= 3
    assert not any(words_of(a) & {"opinion", "opinions"} for a in climate if a not in opinion)


@pytest.mark.parametrize(
    "text",
    [
        "9999-12-31T23:59:59-14:00",
        "0001-01-01T00:00:00+14:00",
        "Dec 31, 9999 23:00 EST",
        "Jan 1, 0001 00:10 NZDT",
        "Dec 31, 9999 23:00 ET",
    ],
)
def test_dates_beyond_what_datetime_holds_are_not_dates(text: str) -> None:
    # Their UTC moment falls outside years 1-9999: once an OverflowError that ended the import.
    assert parse_date(text) is None
