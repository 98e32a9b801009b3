"""Article extraction on saved pages (one case per file, expected result beside it)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from news.articles import RelatedLink
from news.fetch import Fetcher
from news.pages import (
    PageArticle,
    PageError,
    decode_html,
    extract_page,
    fallback_title,
    fetch_page,
    page_to_article,
    parse_datetime,
)
from news.parse import decode, mostly_utf8
from tests.fakes.webserver import WebServer

DATA = Path(__file__).parent / "data"
PAGES = DATA / "pages"
CASES = sorted(PAGES.glob("*.json"))


def load_case(path: Path) -> dict[str, Any]:
    case: dict[str, Any] = json.loads(path.read_text("utf-8"))
    return case


def test_every_saved_page_has_a_case() -> None:
    assert {p.stem for p in PAGES.glob("*.html")} == {c.stem for c in CASES}


@pytest.mark.parametrize("case_path", CASES, ids=[c.stem for c in CASES])
def test_saved_page(case_path: Path) -> None:
    case = load_case(case_path)
    html = case_path.with_suffix(".html").read_bytes()
    if "error" in case:
        with pytest.raises(PageError, match=case["error"]):
            extract_page(html, url=case["url"], content_type=case["content_type"])
        return
    page = extract_page(html, url=case["url"], content_type=case["content_type"])
    assert page.url == case["url"]
    assert page.title == case["title"]
    assert page.author == case["author"]
    assert page.published is not None
    assert page.published.tzinfo is UTC
    assert page.published.isoformat() == case["published"]
    assert page.utc_offset_minutes == case["utc_offset_minutes"]
    assert page.image_url == case["image_url"]
    assert page.sitename == case["sitename"]
    assert list(page.categories) == case["categories"]
    assert list(page.tags) == case["tags"]
    assert page.language == case["language"]
    if "canonical_url" in case:
        assert page.canonical_url == case["canonical_url"]
    assert len(page.paragraphs) == case["paragraph_count"], page.paragraphs
    assert page.paragraphs[0] == case["first_paragraph"]
    assert page.paragraphs[-1] == case["last_paragraph"]
    for wanted in case["contains"]:
        assert wanted in page.text
    for unwanted in case["excludes"]:
        assert unwanted not in page.text, unwanted
    assert [{"title": r.title, "url": r.url} for r in page.related] == case["related"]
    article = page_to_article(page)
    assert article.title == page.title
    assert article.body == page.paragraphs
    assert article.url == case["article"]["url"]
    assert article.category == case["article"]["category"]
    assert article.source == case["article"]["source"]
    assert (article.author, article.published) == (page.author, page.published)


def test_canonical_url_on_another_site_is_ignored() -> None:
    html = (PAGES / "gazette-harbour-wall.html").read_bytes()
    page = extract_page(html, url="https://mirror.example/copied-story")
    assert page.canonical_url is None
    assert page_to_article(page).url == "https://mirror.example/copied-story"


def test_decode_html_order() -> None:
    cyrillic = "<html><head><meta charset='windows-1251'></head><body>Мост</body></html>"
    data = cyrillic.encode("cp1251")
    assert "Мост" in decode_html(data)  # from <meta charset>
    assert "Мост" in decode_html(data, "text/html; charset=windows-1251")
    # The HTTP header beats the meta tag (which here lies).
    koi = cyrillic.encode("koi8-r")
    assert "Мост" in decode_html(koi, "text/html; charset=koi8-r")
    assert "Мост" in decode_html("\ufeffМост".encode())  # BOM
    assert decode_html(b"caf\xe9") == "café"  # neither declared nor UTF-8: windows-1252
    assert decode_html(b"x", "text/html; charset=no-such-charset") == "x"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2024-09-04T07:30:00+01:00", (datetime(2024, 9, 4, 6, 30, tzinfo=UTC), 60)),
        ("2024-09-04T07:30:00Z", (datetime(2024, 9, 4, 7, 30, tzinfo=UTC), 0)),
        ("2024-09-04T07:30:00.123-05:30", (datetime(2024, 9, 4, 13, 0, 0, 123000, UTC), -330)),
        ("2024-09-04T07:30:00", (datetime(2024, 9, 4, 7, 30, tzinfo=UTC), None)),
        ("2024-09-04", (datetime(2024, 9, 4, tzinfo=UTC), None)),
        ("2024-09-04 late edition", (datetime(2024, 9, 4, tzinfo=UTC), None)),
        ("yesterday", None),
        ("", None),
    ],
)
def test_parse_datetime(value: str, expected: tuple[datetime, int | None] | None) -> None:
    assert parse_datetime(value) == expected


@pytest.mark.parametrize(
    "html",
    [b"", b"<html></html>", b"<html><body><p>Too short.</p></body></html>", b"\x00\x01\x02"],
)
def test_no_article(html: bytes) -> None:
    with pytest.raises(PageError):
        extract_page(html, url="https://x.example/")


def test_page_without_a_title_gets_one_from_its_text() -> None:
    text = "Some words about a thing that happened somewhere today. " * 6
    page = PageArticle(url="https://x.example/a", title=None, paragraphs=(text,))
    article = page_to_article(page)
    assert article.title == fallback_title((text,))
    assert article.title.endswith("…")
    assert len(article.title) <= 101
    assert fallback_title(("Short one.",)) == "Short one."
    assert fallback_title(()) is None


def test_page_article_text() -> None:
    page = PageArticle(
        url="https://x.example/a",
        title="T",
        paragraphs=("One.", "Two."),
        related=(RelatedLink("Other", "https://x.example/b"),),
    )
    assert page.text == "One.\n\nTwo."


async def test_fetch_page_uses_the_http_charset(web: WebServer, fetcher: Fetcher) -> None:
    # Served with the charset in the header and the meta tag removed.
    html = (PAGES / "vestnik-bridge-cp1251.html").read_bytes()
    html = html.replace(b"; charset=windows-1251", b"")
    web.serve_bytes("/most.html", html, content_type="text/html; charset=windows-1251")
    page = await fetch_page(fetcher, web.url("/most.html"))
    assert page.title == "В Заречье открыли новый мост через реку"
    assert page.url == web.url("/most.html")
    assert "text/html" in web.requests_for("/most.html")[0].headers["accept"]


async def test_fetch_page_follows_redirects_and_refuses_non_html(
    web: WebServer, fetcher: Fetcher
) -> None:
    web.serve_file("/story.html", "pages/courier-rail-strike.html")
    web.redirect("/s/123", "/story.html", 302)
    page = await fetch_page(fetcher, web.url("/s/123"))
    assert page.url == web.url("/story.html")
    assert page.related == (
        RelatedLink(
            "Drivers vote to strike in ballot over rosters",
            web.url("/news/transport/union-ballot-result-12201.html"),
        ),
    )
    web.serve_bytes("/photo.jpg", b"\xff\xd8\xff\xe0", content_type="image/jpeg")
    with pytest.raises(PageError, match=r"not an HTML page \(image/jpeg\)"):
        await fetch_page(fetcher, web.url("/photo.jpg"))


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ("Seria ataków, urzędy".encode() + b"\xff" + " gmin ąę".encode(), True),
        ("Kraków".encode() + b"\xe2\x80", True),  # a truncated last character
        ("Le café de la gare".encode("cp1252"), False),
        ("Разводной мост".encode("koi8-r"), False),
        ("Мост через реку".encode("cp1251"), False),
        (b"plain ascii", True),
    ],
)
def test_mostly_utf8(data: bytes, expected: bool) -> None:
    assert mostly_utf8(data) is expected


def test_every_decoder_keeps_utf8_with_one_bad_byte() -> None:
    """Issue 9: `ataków` must not become `atakÃ³w` (pages, plain-text files, feeds)."""
    body = "Seria ataków hakerskich na urzędy gmin: żaden urząd nie stracił danych."
    data = body.encode().replace(b"hakerskich", b"haker\xffskich")
    page = decode_html(b"<html><body><p>" + data + b"</p></body></html>", "text/html")
    assert "ataków" in page
    assert "haker\ufffdskich" in page
    assert decode(data) == body.replace("hakerskich", "haker\ufffdskich")
    assert decode("Le café".encode("cp1252")) == "Le café"
