"""Feeds polled into the store through a local web server: conditional GETs, changes,
dedup across feeds, bad sources reported while the others import, backoff and pausing."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from bot.feeds import poll_due, poll_feed
from news.fetch import Fetcher
from storage import Store
from tests.conftest import DATA
from tests.fakes.webserver import WebServer

NOW = datetime(2025, 5, 1, 12, 0, tzinfo=UTC)


# Saved feeds whose case says what one poll of them stores (tests/data/feeds/*.json).
POLL_CASES = sorted(
    p for p in (DATA / "feeds").glob("*.json") if "poll" in json.loads(p.read_text("utf-8"))
)


def _details(name: str, guid: str) -> str:
    return " ".join(f"{name} detail {i} of item {guid}." for i in range(25))


def rss(items: list[tuple[str, str]], *, title: str = "Valley Wire") -> bytes:
    """An RSS 2.0 feed whose items are (guid, title), each with a full text."""
    entries = "".join(
        f"<item><title>{name}</title><link>https://valley.example/{guid}</link>"
        f'<guid isPermaLink="false">{guid}</guid>'
        f"<pubDate>Thu, 01 May 2025 09:00:00 +0000</pubDate>"
        f"<description>&lt;p&gt;{name}: {_details(name, guid)}&lt;/p&gt;</description></item>"
        for guid, name in items
    )
    return (
        f'<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel>'
        f"<title>{title}</title><link>https://valley.example/</link>{entries}</channel></rss>"
    ).encode()


async def test_unchanged_feed_imports_nothing_and_sends_conditional_headers(
    store: Store, web: WebServer, fetcher: Fetcher
) -> None:
    web.serve_bytes("/feed.xml", rss([("a1", "First story"), ("a2", "Second story")]))
    feed, created = await store.add_feed(web.url("/feed.xml"), 600)
    assert created
    first = await poll_feed(store, fetcher, feed, NOW)
    assert (first.new, first.duplicate, first.error) == (2, 0, None)
    feed = await store.feed(feed.id)
    assert feed.etag is not None
    assert feed.title == "Valley Wire"
    assert feed.stories_imported == 2
    assert feed.next_poll_at == NOW + timedelta(seconds=600)

    second = await poll_feed(store, fetcher, feed, NOW + timedelta(minutes=10))
    assert second.not_modified
    assert second.new == 0
    request = web.requests_for("/feed.xml")[-1]
    assert request.headers["if-none-match"] == feed.etag
    assert "if-modified-since" in request.headers
    assert await store.count_stories() == 2

    # A changed feed imports only its new item.
    web.set_body(
        "/feed.xml", rss([("a3", "Third story"), ("a1", "First story"), ("a2", "Second story")])
    )
    third = await poll_feed(store, fetcher, await store.feed(feed.id), NOW + timedelta(minutes=20))
    assert (third.new, third.duplicate) == (1, 2)
    [newest] = await store.latest(1)
    assert newest.title == "Third story"
    assert (await store.feed(feed.id)).stories_imported == 3


async def test_the_same_story_from_two_feeds_is_stored_once(
    store: Store, web: WebServer, fetcher: Fetcher
) -> None:
    # Same link (with tracking parameters on one side), different numeric guids.
    web.serve_bytes(
        "/one.xml", rss([("1", "Shared story")]).replace(b"/1</link>", b"/shared</link>")
    )
    web.serve_bytes(
        "/two.xml",
        rss([("1", "Shared story")], title="Other Wire").replace(
            b"/1</link>", b"/shared?utm_source=rss&amp;fbclid=x</link>"
        ),
    )
    web.serve_bytes("/three.xml", rss([("1", "Different story")], title="Third Wire"))
    for path in ("/one.xml", "/two.xml", "/three.xml"):
        await store.add_feed(web.url(path), 600)
    reports = await poll_due(store, fetcher, NOW, interval=timedelta(minutes=10))
    assert sorted((r.new, r.duplicate) for r in reports) == [(0, 1), (1, 0), (1, 0)]
    # The numeric guid "1" of two feeds did not make their different stories one.
    assert await store.count_stories() == 2


async def test_bad_sources_are_reported_and_the_others_still_import(
    store: Store, web: WebServer, fetcher: Fetcher
) -> None:
    good = {
        "/rss2.xml": "feeds/rss20-content-encoded.xml",
        "/atom.xml": "feeds/atom10.xml",
        "/rss1.xml": "feeds/rss10-rdf.xml",
        "/cp1251.xml": "feeds/rss20-windows-1251.xml",
    }
    for path, name in good.items():
        web.serve_file(path, name)
    web.serve_file("/malformed.xml", "feeds/rss20-malformed.xml")
    web.serve_file("/laughs.xml", "feeds/attack-billion-laughs.xml")
    web.serve_status("/broken.xml", 500)
    web.serve_large("/huge.xml", 20_000_000)
    web.hang("/silent.xml")
    web.serve_file("/moved-here.xml", "feeds/rss20-teasers.xml")
    web.redirect("/old.xml", "/moved-here.xml", status=301)
    web.serve_file("/pages/gazette-harbour-wall.html", "pages/gazette-harbour-wall.html")
    web.serve_file("/pages/courier-rail-strike.html", "pages/courier-rail-strike.html")
    web.serve_file("/pages/subscribe-wall.html", "pages/subscribe-wall.html")
    paths = [
        *good,
        "/malformed.xml",
        "/laughs.xml",
        "/broken.xml",
        "/huge.xml",
        "/silent.xml",
        "/old.xml",
    ]
    for path in paths:
        await store.add_feed(web.url(path), 600)
    reports = {
        r.feed.url.rsplit("/", 1)[1]: r
        for r in await poll_due(store, fetcher, NOW, interval=timedelta(hours=1), burst=20)
    }
    for path in good:
        report = reports[path[1:]]
        assert report.error is None, report.line()
        assert report.new > 0, report.line()
    assert reports["malformed.xml"].error is None  # feedparser reads what it can
    assert reports["malformed.xml"].new >= 1
    assert "entit" in (reports["laughs.xml"].error or "").lower()
    assert "500" in (reports["broken.xml"].error or "")
    assert "MB" in (reports["huge.xml"].error or "")
    assert "timeout" in (reports["silent.xml"].error or "").lower()
    # The redirect was followed, the teasers' pages fetched, and the feed's URL updated.
    moved = reports["old.xml"]
    assert moved.new == 4, moved.line()
    assert (await store.feed(moved.feed.id)).url == web.url("/moved-here.xml")
    title = "Harbour wall repairs to close north quay for six weeks"
    found = await store.ids_by_title([title])
    story = await store.story(found[title])
    assert story.author == "Mira Okafor"
    assert len(story.body) == 6
    # Failed feeds back off beyond their interval; good ones come back after it.
    broken = await store.feed(reports["broken.xml"].feed.id)
    assert broken.consecutive_failures == 1
    assert broken.next_poll_at is not None
    assert broken.next_poll_at > NOW + timedelta(seconds=600)
    assert broken.last_error == reports["broken.xml"].error


async def test_a_feed_failing_for_days_is_paused(
    store: Store, web: WebServer, fetcher: Fetcher
) -> None:
    web.serve_status("/dead.xml", 500)
    feed, _ = await store.add_feed(web.url("/dead.xml"), 600)
    rng = random.Random(1)
    now = NOW
    paused = []
    for _ in range(40):
        [report] = await poll_due(store, fetcher, now, interval=timedelta(minutes=10), rng=rng)
        paused.append(report.paused)
        if report.paused:
            break
        current = await store.feed(feed.id)
        assert current.next_poll_at is not None
        now = current.next_poll_at
    assert paused[-1]
    assert not any(paused[:-1])
    dead = await store.feed(feed.id)
    assert dead.paused_at is not None
    assert now - NOW >= timedelta(days=3)
    # A paused feed is not polled again, until an admin adds it again.
    assert (
        await poll_due(store, fetcher, now + timedelta(days=30), interval=timedelta(minutes=10))
        == []
    )
    _, created = await store.add_feed(web.url("/dead.xml"), 600)
    assert not created
    assert (await store.feed(feed.id)).paused_at is None


async def test_a_burst_of_due_feeds_is_spread_over_the_interval(
    store: Store, web: WebServer, fetcher: Fetcher
) -> None:
    for n in range(12):
        web.serve_bytes(f"/f{n}.xml", rss([(f"g{n}", f"Story {n}")], title=f"Feed {n}"))
        await store.add_feed(web.url(f"/f{n}.xml"), 600)
    reports = await poll_due(store, fetcher, NOW, interval=timedelta(minutes=10))
    assert len(reports) == 8
    later = [f for f in await store.feeds() if f.last_poll_at is None]
    assert len(later) == 4
    times = sorted(f.next_poll_at for f in later if f.next_poll_at)
    assert len(times) == 4
    assert NOW < times[0] < times[-1] <= NOW + timedelta(minutes=10)


# --- the command line and the admin chat commands -------------------------------------


def test_cli_feeds_poll_ingest_url_and_opml(tmp_path: Path, web: WebServer) -> None:
    from tests.test_cli import newsbot

    web.serve_bytes("/feed.xml", rss([("a1", "First story"), ("a2", "Second story")]))
    web.serve_file("/pages/gazette-harbour-wall.html", "pages/gazette-harbour-wall.html")
    web.serve_file("/teasers.xml", "feeds/rss20-teasers.xml")

    added = newsbot(tmp_path, "feeds", "add", web.url("/feed.xml?utm_source=x"), "--every", "30")
    assert added.returncode == 0, added.stderr
    assert f"Added feed #1: {web.url('/feed.xml')}" in added.stdout
    again = newsbot(tmp_path, "feeds", "add", web.url("/feed.xml"))
    assert "Already polling feed #1" in again.stdout
    bad = newsbot(tmp_path, "feeds", "add", "ftp://nope")
    assert bad.returncode == 2
    assert "http" in bad.stderr

    local = {"NEWSBOT_ALLOW_PRIVATE_HOSTS": "1"}  # the web server is on 127.0.0.1
    polled = newsbot(tmp_path, "poll", **local)
    assert "#1 " in polled.stdout
    assert "2 new, 0 duplicate, 0 failed" in polled.stdout
    listed = newsbot(tmp_path, "feeds", "list")
    assert "every 30 min" in listed.stdout
    assert "2 stories imported" in listed.stdout
    assert "Valley Wire" in listed.stdout

    exported = newsbot(tmp_path, "feeds", "export")
    assert web.url("/feed.xml") in exported.stdout
    assert exported.stdout.lstrip().startswith("<?xml")
    opml = tmp_path / "feeds.opml"
    opml.write_text(exported.stdout.replace(web.url("/feed.xml"), web.url("/teasers.xml")))
    imported = newsbot(tmp_path, "feeds", "import", str(opml))
    assert "1 feeds added, 0 already polled" in imported.stdout
    attack = newsbot(
        tmp_path, "feeds", "import", str(DATA / "opml" / "attack-billion-laughs.opml")
    )
    assert attack.returncode == 1
    assert "cannot import" in attack.stderr
    assert "No such file" not in attack.stderr

    removed = newsbot(tmp_path, "feeds", "remove", "1")
    assert "Removed feed #1" in removed.stdout
    missing = newsbot(tmp_path, "feeds", "remove", "99")
    assert missing.returncode == 1
    assert "no feed 99" in missing.stderr

    page = newsbot(tmp_path, "ingest", web.url("/pages/gazette-harbour-wall.html"), **local)
    assert "1 new, 0 duplicate, 0 failed" in page.stdout, page.stdout
    web.serve_status("/gone.html", 404)
    gone = newsbot(tmp_path, "ingest", web.url("/gone.html"), **local)
    assert gone.returncode == 1
    assert "404" in gone.stdout


def test_ingest_saved_feed_and_page_files(tmp_path: Path) -> None:
    from tests.test_cli import newsbot

    result = newsbot(
        tmp_path,
        "ingest",
        str(DATA / "feeds" / "rss20-content-encoded.xml"),
        str(DATA / "pages" / "courier-rail-strike.html"),
        str(DATA / "feeds" / "attack-billion-laughs.xml"),
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert any("rss20-content-encoded.xml: 2 new" in line for line in lines)
    assert any("courier-rail-strike.html: 1 new" in line for line in lines)
    assert any("attack-billion-laughs.xml: 0 new, 0 duplicate, 1 failed" in line for line in lines)


async def test_admin_feed_commands(bot: object, botapi: object, web: WebServer) -> None:
    from tests.chat import Reader
    from tests.conftest import ADMIN_ID

    web.serve_bytes("/feed.xml", rss([("a1", "Chat story one"), ("a2", "Chat story two")]))
    admin = Reader(botapi, ADMIN_ID)  # type: ignore[arg-type]
    added, report = await admin.say(f"/addfeed {web.url('/feed.xml')} 45", replies=2)
    assert f"Added feed #1: {web.url('/feed.xml')}" in added.plain_text
    assert "2 new, 0 duplicate, 0 failed" in report.plain_text
    listing = await admin.ask("/feeds")
    assert "Valley Wire" in listing
    assert "every 45 min (set for this feed)" in listing
    assert "2 stories" in listing
    for bad, expected in [
        ("/addfeed", "/addfeed needs"),
        ("/addfeed javascript:alert(1)", "/addfeed needs"),
        (f"/addfeed {web.url('/feed.xml')} soon", "in minutes"),
        ("/removefeed", "needs a feed number"),
        ("/removefeed 77", "There is no feed 77"),
    ]:
        assert expected in await admin.ask(bad), bad
    assert "Removed feed #1" in await admin.ask("/removefeed 1")
    assert "No feeds yet" in await admin.ask("/feeds")
    reader = Reader(botapi, 9191)  # type: ignore[arg-type]
    for command in ("/addfeed https://example.com/feed", "/feeds", "/removefeed 1"):
        assert "operators only" in await reader.ask(command)


async def test_the_running_bot_polls_feeds_and_tells_admins_of_a_paused_one(
    db_path: Path, web: WebServer, botapi: object, settings: object
) -> None:
    from bot.app import build_application, running
    from tests.conftest import ADMIN_ID

    web.serve_bytes("/feed.xml", rss([("b1", "Polled story")]))
    web.serve_status("/dead.xml", 500)
    store = await Store.open(db_path)
    good, _ = await store.add_feed(web.url("/feed.xml"), 600)
    dead, _ = await store.add_feed(web.url("/dead.xml"), 600)
    # The dead feed has failed for four days already.
    await store.save_poll(
        dead.id,
        polled_at=NOW,
        next_poll_at=None,
        consecutive_failures=9,
        first_failure_at=datetime.now(UTC) - timedelta(days=4),
        last_success_at=None,
        last_error="HTTP 500",
    )
    await store.close()
    app = build_application(settings)  # type: ignore[arg-type]
    async with running(app):
        [alert] = await botapi.wait_for_messages(1, chat_id=ADMIN_ID, timeout=15)  # type: ignore[attr-defined]
        store = app.bot_data.store
        assert store is not None
        assert (await store.feed(good.id)).stories_imported == 1
    assert f"Feed #{dead.id} has failed for days and is paused" in alert.plain_text
    assert "/removefeed" in alert.plain_text


async def test_stories_from_a_feed_queue_topic_alerts(
    store: Store, web: WebServer, fetcher: Fetcher
) -> None:
    from news.query import parse_query

    topic = parse_query("ferry")
    await store.subscribe(77, topic.canonical, topic.display)
    web.serve_bytes("/feed.xml", rss([("f1", "Ferry timetable cut"), ("f2", "Cup final")]))
    feed, _ = await store.add_feed(web.url("/feed.xml"), 600)
    report = await poll_feed(store, fetcher, feed, NOW)
    assert report.new == 2
    stats = await store.stats()
    assert stats["alerts_queued"] == 1


# --- real-world shapes (issue 9) --------------------------------------------------------


def _case(path: Path) -> dict[str, Any]:
    case: dict[str, Any] = json.loads(path.read_text("utf-8"))
    return case


def _served_case(web: WebServer, case: dict[str, Any], path: str) -> None:
    """Serve a saved feed with its site moved onto the local server (nothing leaves it)."""
    site = f"https://{urlsplit(case['feed']['link']).netloc}"
    body = (
        (DATA / "feeds" / case["file"]).read_bytes().replace(site.encode(), web.base_url.encode())
    )
    web.serve_bytes(path, body, content_type="application/rss+xml")


@pytest.mark.parametrize("case_path", POLL_CASES, ids=[c.stem for c in POLL_CASES])
async def test_real_world_feed_shapes_keep_their_distinct_items(
    case_path: Path, store: Store, web: WebServer, fetcher: Fetcher
) -> None:
    case = _case(case_path)
    expected = case["poll"]
    _served_case(web, case, "/feed.xml")
    feed, _ = await store.add_feed(web.url("/feed.xml"), 600)
    report = await poll_feed(store, fetcher, feed, NOW)
    assert (report.new, report.duplicate, report.failed) == (
        expected["new"],
        expected["duplicate"],
        expected["failed"],
    ), report.errors
    assert await store.count_stories() == expected["new"]
    assert len(report.errors) == expected["failed"]
    # A link many items share (or the feed's homepage) is not their page: never fetched.
    assert web.requests_for("/") == []
    # The same items through a second feed: stored once, each duplicate named by kind.
    _served_case(web, case, "/mirror.xml")
    mirror, _ = await store.add_feed(web.url("/mirror.xml"), 600)
    again = await poll_feed(store, fetcher, mirror, NOW)
    assert (again.new, again.duplicate) == (0, expected["new"])
    assert await store.count_stories() == expected["new"]
    assert sum(len(ids) for ids in again.duplicates.by_reason.values()) == expected["new"]


async def test_a_link_only_item_is_reported_by_position_and_the_rest_import(
    store: Store, web: WebServer, fetcher: Fetcher
) -> None:
    case = _case(DATA / "feeds" / "rss20-link-only-item.json")
    _served_case(web, case, "/feed.xml")
    feed, _ = await store.add_feed(web.url("/feed.xml"), 600)
    report = await poll_feed(store, fetcher, feed, NOW)
    [error] = report.errors
    assert error.startswith("item 2 (")
    assert "untitled-draft.html" in error
    assert report.new == 2


async def test_feed_polled_every_minute_when_the_setting_says_so(
    store: Store, web: WebServer, fetcher: Fetcher
) -> None:
    web.serve_bytes("/feed.xml", rss([("m1", "Minute story")]))
    feed, _ = await store.add_feed(web.url("/feed.xml"), 60)
    await poll_feed(store, fetcher, feed, NOW)
    assert (await store.feed(feed.id)).next_poll_at == NOW + timedelta(minutes=1)
    # The feed's own ttl lengthens it, and the feed remembers why.
    web.set_body(
        "/feed.xml", rss([("m2", "Ttl story")]).replace(b"<link>", b"<ttl>5</ttl><link>", 1)
    )
    await poll_feed(store, fetcher, await store.feed(feed.id), NOW + timedelta(minutes=1))
    polled = await store.feed(feed.id)
    assert polled.next_poll_at == NOW + timedelta(minutes=6)
    assert polled.ttl_minutes == 5


async def test_admin_addfeed_names_the_items_that_failed(
    bot: object, botapi: object, web: WebServer
) -> None:
    from tests.chat import Reader
    from tests.conftest import ADMIN_ID

    case = _case(DATA / "feeds" / "rss20-link-only-item.json")
    _served_case(web, case, "/bulletin.xml")
    admin = Reader(botapi, ADMIN_ID)  # type: ignore[arg-type]
    _, report = await admin.say(f"/addfeed {web.url('/bulletin.xml')}", replies=2)
    assert "2 new, 0 duplicate, 1 failed" in report.plain_text
    assert f"• item 2 ({web.base_url}/2024/06/untitled-draft.html)" in report.plain_text
    listing = await admin.ask("/feeds")
    assert "every 1 min (NEWSBOT_POLL_SECONDS)" in listing
