"""Feed parsing on saved feeds (one case per file, expected result beside it), feed items
to articles, and polling through the fake web server."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import feedparser
import pytest

from news.articles import Article, ParseError
from news.feeds import (
    FeedEntry,
    FeedError,
    ParsedFeed,
    content_hash,
    dedup_keys,
    entry_to_article,
    fetch_feed,
    html_to_paragraphs,
    import_entries,
    is_feed_document,
    needs_page,
    parse_feed,
)
from news.fetch import Fetcher, FetchError
from news.pages import PageArticle
from tests.fakes.webserver import WebServer

DATA = Path(__file__).parent / "data"
FEEDS = DATA / "feeds"
CASES = sorted(FEEDS.glob("*.json"))


def load_case(path: Path) -> dict[str, Any]:
    case: dict[str, Any] = json.loads(path.read_text("utf-8"))
    return case


def entry_as_dict(entry: FeedEntry) -> dict[str, Any]:
    return {
        "guid": entry.guid,
        "url": entry.url,
        "title": entry.title,
        "paragraphs": list(entry.paragraphs),
        "published": entry.published.isoformat() if entry.published else None,
        "utc_offset_minutes": entry.utc_offset_minutes,
        "author": entry.author,
        "categories": list(entry.categories),
        "image_url": entry.image_url,
        "truncated": entry.truncated,
        "needs_page": needs_page(entry),
    }


# --- saved feeds, one case per file -------------------------------------------------------


def test_every_saved_feed_has_a_case() -> None:
    data_files = {p.name for p in FEEDS.iterdir() if p.suffix != ".json"}
    assert data_files == {load_case(c)["file"] for c in CASES}


@pytest.mark.parametrize("case_path", CASES, ids=[c.stem for c in CASES])
def test_saved_feed(case_path: Path) -> None:
    case = load_case(case_path)
    data = (FEEDS / case["file"]).read_bytes()
    if "error" in case:
        with pytest.raises(FeedError, match=case["error"]):
            parse_feed(data, url=case["url"], content_type=case["content_type"])
        return
    feed = parse_feed(data, url=case["url"], content_type=case["content_type"])
    expected = case["feed"]
    assert feed.title == expected["title"]
    assert feed.link == expected["link"]
    assert feed.ttl_minutes == expected["ttl_minutes"]
    assert feed.version == expected["version"]
    assert bool(feed.warning) == expected["warning"], feed.warning
    if "entries" in case:
        assert [entry_as_dict(e) for e in feed.entries] == case["entries"]
    else:
        # A long real-world shape: its size and its first items.
        assert len(feed.entries) == case["entry_count"]
        got = [entry_as_dict(e) for e in feed.entries[: len(case["first_entries"])]]
        assert got == case["first_entries"]
    for entry in feed.entries:
        assert entry.published is None or entry.published.tzinfo is UTC
        assert "<" not in entry.text
        assert "&lt;" not in entry.text


# --- dangerous documents ------------------------------------------------------------------


def test_billion_laughs_is_refused_fast_and_never_expanded() -> None:
    data = (FEEDS / "attack-billion-laughs.xml").read_bytes()
    started = time.perf_counter()
    with pytest.raises(FeedError, match="lol1"):
        parse_feed(data, url="https://attacker.example/feed")
    assert time.perf_counter() - started < 1.0


def test_feedparser_alone_does_not_expand_the_attacks_either() -> None:
    # What feedparser really does with them: the strict parser fails, its lenient parser
    # takes over and leaves the references unexpanded. We refuse before it gets there,
    # but this pins down that no code path behind us expands them.
    for name, expanded in [
        ("attack-billion-laughs.xml", "lol" * 10),
        ("attack-quadratic-blowup.xml", "a" * 1000),
    ]:
        started = time.perf_counter()
        parsed = feedparser.parse((FEEDS / name).read_bytes())
        assert time.perf_counter() - started < 10
        assert parsed.bozo
        assert parsed.entries
        for entry in parsed.entries:
            text = entry.get("title", "") + entry.get("summary", "")
            assert expanded not in text, name
            assert len(text) < 400_000, name


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "cp037"])
def test_entity_attack_is_refused_in_any_encoding(encoding: str) -> None:
    text = (FEEDS / "attack-billion-laughs.xml").read_text("utf-8")
    text = text.replace(' encoding="utf-8"', "")
    with pytest.raises(FeedError, match="refused"):
        parse_feed(
            text.encode(encoding),
            url="https://attacker.example/feed",
            content_type=f"application/rss+xml; charset={encoding}",
        )


def test_single_character_entities_of_old_feeds_are_allowed() -> None:
    feed = parse_feed(
        (FEEDS / "rss091-netscape-doctype.xml").read_bytes(), url="http://oldmill.example/rss"
    )
    assert feed.title == "Old Mill Radio"
    assert feed.entries[0].title == "Station celebrates 25 years on air — with a party"


@pytest.mark.parametrize(
    "data",
    [b"", b"   \n", b"just some text", b'{"json": "feed?"}', b"\x89PNG\r\n\x1a\n\x00\x00"],
)
def test_not_a_feed(data: bytes) -> None:
    with pytest.raises(FeedError, match="feed"):
        parse_feed(data, url="https://example.org/x")


@pytest.mark.parametrize(
    "path",
    sorted([*FEEDS.glob("*.xml"), *FEEDS.glob("*.html"), *(DATA / "pages").glob("*.html")]),
    ids=lambda p: p.name,
)
def test_is_feed_document(path: Path) -> None:
    assert is_feed_document(path.read_bytes()) is (path.suffix == ".xml")


def test_is_feed_document_trusts_a_feed_content_type() -> None:
    assert is_feed_document(b"", "application/atom+xml; charset=utf-8")
    assert not is_feed_document(b"<html></html>", "text/html")
    assert not is_feed_document(b"<!doctype html><title>x</title>", None)


# --- encodings ----------------------------------------------------------------------------


def test_charset_from_http_header_is_what_decodes_the_feed() -> None:
    data = (FEEDS / "rss20-cp1251-http-header.xml").read_bytes()
    right = parse_feed(data, url="https://v.example/", content_type="text/xml; charset=cp1251")
    assert right.title == "Городские вести"
    assert right.warning is None
    # Without the header the document says nothing, UTF-8 fails, and a guess is flagged.
    guessed = parse_feed(data, url="https://v.example/")
    assert guessed.warning is not None
    assert "encoding" in guessed.warning


def test_text_xml_without_charset_uses_the_xml_declaration() -> None:
    # RFC 3023 said text/xml without charset is US-ASCII; RFC 7303 and every feed reader
    # follow the document's own declaration instead.
    data = (FEEDS / "rss20-windows-1251.xml").read_bytes()
    feed = parse_feed(data, url="https://v.example/", content_type="text/xml")
    assert feed.title == "Северный вестник: новости"
    assert feed.warning is None


def test_utf8_feed_without_any_declaration_or_header() -> None:
    data = '<rss version="2.0"><channel><title>Café Zürich</title></channel></rss>'.encode()
    assert parse_feed(data, url="https://c.example/").title == "Café Zürich"


# --- HTML to text -------------------------------------------------------------------------


def test_html_to_paragraphs() -> None:
    html = (
        "<p>First <b>bold</b>\n   line.</p><script>alert(1)</script>"
        "<figure><img src='x.jpg'><figcaption>A caption</figcaption></figure>"
        "Loose text<br><br>after two breaks<br>and one break"
        "<ul><li>one</li><li>two</li></ul><p>&ldquo;Quoted&rdquo; &amp; done</p>"
    )
    assert html_to_paragraphs(html) == (
        "First bold line.",
        "Loose text",
        "after two breaks\nand one break",
        "one",
        "two",
        "“Quoted” & done",
    )


def test_html_to_paragraphs_survives_junk() -> None:
    assert html_to_paragraphs("") == ()
    assert html_to_paragraphs("plain words") == ("plain words",)
    assert html_to_paragraphs("<div><p>unclosed <i>tags") == ("unclosed tags",)
    deep = "<div>" * 5000 + "deep" + "</div>" * 5000
    assert html_to_paragraphs(deep) == ("deep",)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Why 5 &lt; 6 &amp; so on", "Why 5 < 6 & so on"),
        ("Bees learn to &lt;em&gt;count&lt;/em&gt;", "Bees learn to count"),
        ("A &lt;b or 3&gt;2", "A <b or 3>2"),
        ("<![CDATA[Tom &amp; Jerry]]>", "Tom & Jerry"),
        ("  Spaced\u00a0 out\u200b  ", "Spaced out"),
    ],
)
def test_titles_are_plain_text(raw: str, expected: str) -> None:
    feed = (
        f'<rss version="2.0"><channel><title>{raw}</title><item><title>{raw}</title>'
        "<link>https://n.example/1</link></item></channel></rss>"
    )
    parsed = parse_feed(feed.encode(), url="https://n.example/rss")
    assert parsed.title == expected
    assert parsed.entries[0].title == expected


# --- teasers ------------------------------------------------------------------------------


def make_entry(**changes: Any) -> FeedEntry:
    fields: dict[str, Any] = {
        "guid": "g-1",
        "url": "https://news.example/story?utm_source=rss",
        "title": "A title",
        "text": "word " * 200,
        "published": None,
        "author": None,
        "categories": (),
        "image_url": None,
    }
    fields.update(changes)
    return FeedEntry(**fields)


def test_needs_page() -> None:
    assert not needs_page(make_entry())
    assert needs_page(make_entry(text="Short teaser."))
    assert needs_page(make_entry(truncated=True))
    assert not needs_page(make_entry(text="Short teaser.", url=None))  # nothing to fetch
    assert needs_page(make_entry(), threshold=5000)


@pytest.mark.parametrize(
    ("html", "text", "truncated"),
    [
        ("<p>The story so far…</p>", "The story so far…", True),
        ("<p>The story so far [&#8230;]</p>", "The story so far…", True),
        ("<p>The story so far [...]</p>", "The story so far…", True),
        ("<p>It happened. <a href='/x'>Read more</a></p>", "It happened.", True),
        ("<p>It happened.</p><p><a href='/x'>Continue reading →</a></p>", "It happened.", True),
        ("<p>It happened.</p><p>Read the full story</p>", "It happened.", True),
        (
            "<p>It happened.</p><p>The post It happened appeared first on Site.</p>",
            "It happened.",
            False,
        ),
        ("<p>We will read more books.</p>", "We will read more books.", False),
    ],
)
def test_teaser_markers(html: str, text: str, truncated: bool) -> None:
    feed = (
        '<rss version="2.0"><channel><title>T</title><item><title>I</title>'
        f"<link>https://n.example/1</link><description><![CDATA[{html}]]></description>"
        "</item></channel></rss>"
    )
    entry = parse_feed(feed.encode(), url="https://n.example/rss").entries[0]
    assert entry.text == text
    assert entry.truncated is truncated


# --- items to articles --------------------------------------------------------------------


def test_entry_to_article_from_a_full_feed_item() -> None:
    feed = parse_feed(
        (FEEDS / "rss20-content-encoded.xml").read_bytes(),
        url="https://gazette.example/feed/",
        content_type="application/rss+xml",
    )
    article = entry_to_article(feed.entries[0], feed_title=feed.title)
    assert isinstance(article, Article)
    assert article.title == "Ferry timetable cut as council budget tightens"
    assert article.source == "Harbour Town Gazette"
    assert article.category == "transport"
    assert article.author == "Mira Okafor"
    assert article.guid == "https://gazette.example/?p=48213"
    assert article.url == "https://gazette.example/2024/09/03/ferry-timetable-cut/"
    assert article.published == datetime(2024, 9, 3, 16, 45, tzinfo=UTC)
    assert article.utc_offset_minutes == 60
    assert article.image_url == "https://gazette.example/wp-content/uploads/2024/09/ferry.jpg"
    assert article.body[0].startswith("The evening crossing to Gull Island will stop")
    assert len(article.body) == 7


def page(**changes: Any) -> PageArticle:
    fields: dict[str, Any] = {
        "url": "https://news.example/story",
        "title": "Page title",
        "paragraphs": ("A long paragraph from the page. " * 10, "Second paragraph."),
        "author": "Page Author",
        "published": datetime(2024, 1, 2, 3, 4, tzinfo=UTC),
        "utc_offset_minutes": 120,
        "image_url": "https://news.example/img.jpg",
        "sitename": "Page Site",
        "categories": ("World",),
        "canonical_url": "https://news.example/story-canonical",
    }
    fields.update(changes)
    return PageArticle(**fields)


def test_page_fills_what_the_teaser_lacks() -> None:
    entry = make_entry(text="Teaser…", truncated=True, categories=("Politics", "Europe"))
    article = entry_to_article(entry, feed_title="Feed Title", page=page())
    assert article.body == page().paragraphs
    assert article.title == "A title"  # the feed's own title wins
    assert article.author == "Page Author"
    assert article.published == datetime(2024, 1, 2, 3, 4, tzinfo=UTC)
    assert article.utc_offset_minutes == 120
    assert article.image_url == "https://news.example/img.jpg"
    assert article.category == "politics"  # feed categories first
    assert article.source == "Feed Title"
    assert article.url == "https://news.example/story-canonical"
    assert article.guid == "g-1"


def test_page_without_canonical_gives_its_final_url() -> None:
    entry = make_entry(url="https://feeds.example/~r/story/123", text="Teaser…")
    landed = page(canonical_url=None, url="https://publisher.example/story?utm_source=feed")
    article = entry_to_article(entry, feed_title="F", page=landed)
    assert article.url == "https://publisher.example/story"


def test_entry_data_wins_over_the_page() -> None:
    when = datetime(2023, 5, 6, 7, 8, tzinfo=UTC)
    entry = make_entry(
        author="Feed Author", published=when, utc_offset_minutes=0, image_url="https://i/x.png"
    )
    article = entry_to_article(entry, feed_title=None, page=page(paragraphs=("short",)))
    assert article.body == entry.paragraphs  # the feed text is longer than the page's
    assert (article.author, article.published, article.utc_offset_minutes) == (
        "Feed Author",
        when,
        0,
    )
    assert article.image_url == "https://i/x.png"
    assert article.source == "Page Site"  # no feed title: the page's site name
    assert article.category == "world"


def test_entry_without_title_or_text() -> None:
    title_only_from_text = entry_to_article(make_entry(title=None), feed_title=None)
    assert title_only_from_text.title.startswith("word word")
    assert len(title_only_from_text.title) <= 101
    with pytest.raises(ParseError):
        entry_to_article(make_entry(title=None, text=""), feed_title=None)


def test_same_story_in_two_feeds_has_the_same_keys() -> None:
    a = entry_to_article(
        make_entry(guid="feed-a-1", url="https://news.example/story?utm_source=a&fbclid=1"),
        feed_title="A",
    )
    b = entry_to_article(
        make_entry(guid="feed-b-9", url="HTTPS://NEWS.example:443/story?utm_medium=b#top"),
        feed_title="B",
    )
    assert dedup_keys(a)[0] != dedup_keys(b)[0]
    assert (
        dedup_keys(a)[1:] == dedup_keys(b)[1:] == ("https://news.example/story", content_hash(a))
    )
    # The hash ignores case and spacing but not the words.
    c = entry_to_article(make_entry(text="WORD " * 200, url=None), feed_title="C")
    d = entry_to_article(make_entry(text="word " * 199 + "other", url=None), feed_title="C")
    assert content_hash(c) == content_hash(a)
    assert content_hash(d) != content_hash(a)


# --- polling through a local web server ---------------------------------------------------


def serve_teaser_site(web: WebServer) -> str:
    web.serve_file("/feeds/teasers.xml", "feeds/rss20-teasers.xml")
    web.serve_file("/pages/gazette-harbour-wall.html", "pages/gazette-harbour-wall.html")
    web.serve_file("/pages/courier-rail-strike.html", "pages/courier-rail-strike.html")
    web.serve_file("/pages/subscribe-wall.html", "pages/subscribe-wall.html")
    return web.url("/feeds/teasers.xml")


async def test_teaser_feed_gets_full_text_from_the_pages(web: WebServer, fetcher: Fetcher) -> None:
    polled = await fetch_feed(fetcher, serve_teaser_site(web))
    assert polled.feed is not None
    imported = await import_entries(fetcher, polled.feed.entries, feed_title=polled.feed.title)
    by_guid = {item.entry.guid: item for item in imported}
    wall = by_guid["headlines-7781"].article
    assert wall is not None
    assert len(wall.body) == 6
    assert wall.body[0].startswith("Engineers will begin repairing the cracked section")
    assert wall.author == "Mira Okafor"
    assert wall.image_url == "https://gazette.example/wp-content/uploads/2024/09/harbour-wall.jpg"
    assert wall.published == datetime(2024, 9, 4, 6, 31, tzinfo=UTC)  # the feed's date
    assert wall.category == "harbour"
    assert wall.source == "Coast & Valley Headlines"
    assert wall.url is not None
    assert "utm_" not in wall.url
    strike = by_guid["headlines-7779"].article
    assert strike is not None
    assert len(strike.body) == 6
    assert [r.title for r in strike.related] == ["Drivers vote to strike in ballot over rosters"]
    # A page without an article leaves the teaser, with the reason.
    board = by_guid["headlines-7770"]
    assert board.article is not None
    assert board.article.body == ("The board discussed the sale of the old customs house…",)
    assert board.page_error == "no article text found on the page"
    # A full item needs no page: nothing was fetched for it.
    assert by_guid["headlines-7765"].page_error is None
    assert web.requests_for("/pages/planning-list.html") == []
    assert all(
        r.headers["user-agent"].startswith("Mozilla/5.0 (compatible; newsbot/")
        for r in web.requests
    )


async def test_page_that_fails_to_fetch_keeps_the_teaser(web: WebServer, fetcher: Fetcher) -> None:
    serve_teaser_site(web)
    web.serve_status("/pages/courier-rail-strike.html", 503, Retry_After="120")
    web.hang("/pages/gazette-harbour-wall.html")
    polled = await fetch_feed(fetcher, web.url("/feeds/teasers.xml"))
    assert polled.feed is not None
    imported = {
        i.entry.guid: i for i in await import_entries(fetcher, polled.feed.entries, feed_title="H")
    }
    assert imported["headlines-7779"].page_error == "HTTP 503 Service Unavailable"
    assert imported["headlines-7779"].article is not None
    assert imported["headlines-7781"].page_error is not None
    assert "timeout" in imported["headlines-7781"].page_error
    assert imported["headlines-7781"].article is not None


def rss(items: list[tuple[str, str]]) -> bytes:
    body = "".join(
        f"<item><title>{title}</title><link>https://n.example/{guid}</link>"
        f"<guid>{guid}</guid><description>{title} happened, in some detail.</description></item>"
        for guid, title in items
    )
    return f'<rss version="2.0"><channel><title>N</title>{body}</channel></rss>'.encode()


class Poller:
    """What the polling job will do, reduced to its feed logic: conditional GET, parse,
    keep only unseen items (by the dedup keys), make articles."""

    def __init__(self, fetcher: Fetcher) -> None:
        self.fetcher = fetcher
        self.seen: set[str] = set()
        self.etag: str | None = None
        self.last_modified: str | None = None

    async def poll(self, url: str) -> list[Article]:
        polled = await fetch_feed(
            self.fetcher, url, etag=self.etag, last_modified=self.last_modified
        )
        self.etag, self.last_modified = polled.result.etag, polled.result.last_modified
        if polled.feed is None:
            return []
        new = [e for e in polled.feed.entries if (e.guid or e.url or "") not in self.seen]
        imported = await import_entries(
            self.fetcher, new, feed_title=polled.feed.title, fetch_pages=False
        )
        articles = []
        for item in imported:
            assert item.article is not None
            keys = {k for k in dedup_keys(item.article) if k}
            if keys & self.seen:
                continue
            self.seen |= keys
            articles.append(item.article)
        return articles


async def test_unchanged_feed_imports_nothing_the_second_time(
    web: WebServer, fetcher: Fetcher
) -> None:
    web.serve_bytes("/rss", rss([("a1", "Alpha"), ("b2", "Beta")]))
    poller = Poller(fetcher)
    assert [a.title for a in await poller.poll(web.url("/rss"))] == ["Alpha", "Beta"]
    assert await poller.poll(web.url("/rss")) == []
    first, second = web.requests_for("/rss")
    assert "if-none-match" not in first.headers
    assert second.headers["if-none-match"] == poller.etag
    assert second.headers["if-modified-since"] == poller.last_modified
    # A changed feed: only the new item comes in.
    web.set_body("/rss", rss([("c3", "Gamma"), ("a1", "Alpha"), ("b2", "Beta")]))
    assert [a.title for a in await poller.poll(web.url("/rss"))] == ["Gamma"]
    assert await poller.poll(web.url("/rss")) == []


async def test_server_without_etag_still_gets_if_modified_since(
    web: WebServer, fetcher: Fetcher
) -> None:
    route = web.serve_bytes("/rss", rss([("a1", "Alpha")]))
    poller = Poller(fetcher)
    await poller.poll(web.url("/rss"))
    poller.etag = None  # as if the server had sent only Last-Modified
    assert await poller.poll(web.url("/rss")) == []
    assert web.requests_for("/rss")[-1].headers["if-modified-since"] == route.last_modified


async def test_same_story_from_two_feeds_is_imported_once(
    web: WebServer, fetcher: Fetcher
) -> None:
    web.serve_bytes("/one", rss([("one-1", "Shared story")]))
    web.serve_bytes(
        "/two",
        rss([("two-7", "Shared story")]).replace(
            b"https://n.example/two-7", b"https://n.example/one-1?utm_source=two"
        ),
    )
    poller = Poller(fetcher)
    assert len(await poller.poll(web.url("/one"))) == 1
    poller.etag = poller.last_modified = None
    assert await poller.poll(web.url("/two")) == []


async def poll_source(fetcher: Fetcher, url: str) -> tuple[str, ParsedFeed | str]:
    try:
        polled = await fetch_feed(fetcher, url)
    except (FetchError, FeedError) as exc:
        return url, str(exc)
    assert polled.feed is not None
    return url, polled.feed


async def test_each_bad_source_is_reported_and_the_others_still_import(
    web: WebServer, fetcher: Fetcher
) -> None:
    good = {
        "/rss20": ("feeds/rss20-content-encoded.xml", "application/rss+xml; charset=UTF-8"),
        "/atom": ("feeds/atom10.xml", "application/atom+xml"),
        "/rdf": ("feeds/rss10-rdf.xml", "application/rdf+xml"),
        "/cp1251": ("feeds/rss20-cp1251-http-header.xml", "application/rss+xml; charset=cp1251"),
        "/malformed": ("feeds/rss20-malformed.xml", "application/rss+xml"),
    }
    for path, (name, content_type) in good.items():
        web.serve_file(path, name, content_type=content_type)
    web.redirect("/moved", "/atom", 301)
    web.serve_status("/error", 500)
    web.serve_large("/huge", 20 * 1024 * 1024)
    web.hang("/never")
    web.serve_file("/laughs", "feeds/attack-billion-laughs.xml")
    web.serve_file("/html", "feeds/not-a-feed.html", content_type="text/html")
    paths = [*good, "/moved", "/error", "/huge", "/never", "/laughs", "/html"]
    started = time.perf_counter()
    results = dict(await asyncio.gather(*(poll_source(fetcher, web.url(p)) for p in paths)))
    assert time.perf_counter() - started < 6
    outcome = {p: results[web.url(p)] for p in paths}
    for path in [*good, "/moved"]:
        assert isinstance(outcome[path], ParsedFeed), (path, outcome[path])
    assert isinstance(outcome["/malformed"], ParsedFeed)
    assert outcome["/malformed"].warning
    assert isinstance(outcome["/cp1251"], ParsedFeed)
    assert outcome["/cp1251"].entries[0].title == "В Заречье открыли новый мост через реку"
    assert outcome["/error"] == "HTTP 500 Internal Server Error"
    assert str(outcome["/huge"]).startswith("too large")
    assert "timeout" in str(outcome["/never"])
    assert str(outcome["/laughs"]).startswith("refused")
    assert "HTML page" in str(outcome["/html"])
