"""The Fetcher against a real local HTTP server: conditional GET, redirects, errors,
time and size limits, per-host concurrency."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from news.fetch import USER_AGENT, Fetcher, FetchError, max_age_of
from tests.fakes.webserver import WebServer

DATA = Path(__file__).parent / "data"
FEED = b'<rss version="2.0"><channel><title>T</title></channel></rss>'


@pytest.fixture
async def fetcher() -> AsyncIterator[Fetcher]:
    async with Fetcher(
        connect_timeout=2, read_timeout=0.5, total_timeout=2, trust_env=False
    ) as client:
        yield client


async def test_get_returns_body_validators_and_headers(web: WebServer, fetcher: Fetcher) -> None:
    route = web.serve_bytes(
        "/feed",
        FEED,
        content_type="application/rss+xml; charset=utf-8",
        headers={"Cache-Control": "public, max-age=1800"},
    )
    result = await fetcher.get(web.url("/feed"))
    assert result.status == 200
    assert result.body == FEED
    assert result.url == web.url("/feed")
    assert result.etag == route.etag
    assert result.last_modified == route.last_modified
    assert result.content_type == "application/rss+xml; charset=utf-8"
    assert result.max_age_seconds == 1800
    assert not result.not_modified
    assert result.permanent_redirect_to is None
    sent = web.requests_for("/feed")[0].headers
    assert sent["user-agent"] == USER_AGENT
    assert "newsbot" in sent["user-agent"]
    assert sent["user-agent"].startswith("Mozilla/5.0")
    assert "application/rss+xml" in sent["accept"]
    assert "if-none-match" not in sent
    assert "if-modified-since" not in sent


async def test_conditional_get_answers_304(web: WebServer, fetcher: Fetcher) -> None:
    route = web.serve_bytes("/feed", FEED)
    result = await fetcher.get(web.url("/feed"), etag=route.etag, last_modified="x")
    assert result.not_modified
    assert result.status == 304
    assert result.body == b""
    assert result.etag == route.etag
    sent = web.requests_for("/feed")[0].headers
    assert sent["if-none-match"] == route.etag
    assert sent["if-modified-since"] == "x"
    # After a change the same validators get the new body.
    old_etag = route.etag
    web.set_body("/feed", FEED + b"\n")
    changed = await fetcher.get(web.url("/feed"), etag=old_etag)
    assert changed.status == 200
    assert changed.body == FEED + b"\n"
    assert changed.etag != result.etag


async def test_304_without_validators_keeps_ours(web: WebServer, fetcher: Fetcher) -> None:
    web.serve_bytes("/feed", FEED)
    route = web.routes["/feed"]
    result = await fetcher.get(web.url("/feed"), last_modified=route.last_modified)
    assert result.not_modified
    assert result.last_modified == route.last_modified


@pytest.mark.parametrize(
    ("status", "reason"),
    [(500, "HTTP 500 Internal Server Error"), (403, "HTTP 403 Forbidden"), (410, "HTTP 410 Gone")],
)
async def test_http_errors(web: WebServer, fetcher: Fetcher, status: int, reason: str) -> None:
    web.serve_status("/x", status)
    with pytest.raises(FetchError) as caught:
        await fetcher.get(web.url("/x"))
    assert caught.value.reason == reason == str(caught.value)
    assert caught.value.status == status
    assert caught.value.gone is (status == 410)
    assert caught.value.url == web.url("/x")


async def test_retry_after_is_reported(web: WebServer, fetcher: Fetcher) -> None:
    web.serve_status("/busy", 429, Retry_After="600")
    with pytest.raises(FetchError) as caught:
        await fetcher.get(web.url("/busy"))
    assert caught.value.retry_after_seconds == 600


async def test_permanent_redirect_chain(web: WebServer, fetcher: Fetcher) -> None:
    web.serve_bytes("/new", FEED)
    web.redirect("/old", "/middle", 301)
    web.redirect("/middle", web.url("/new"), 308)
    result = await fetcher.get(web.url("/old"))
    assert result.body == FEED
    assert result.url == web.url("/new")
    assert result.permanent_redirect_to == web.url("/new")
    assert result.redirects == (web.url("/middle"), web.url("/new"))


async def test_temporary_redirect_is_not_reported_as_a_move(
    web: WebServer, fetcher: Fetcher
) -> None:
    web.serve_bytes("/new", FEED)
    web.redirect("/temp", "/new", 302)
    web.redirect("/perm-then-temp", "/temp", 301)
    web.redirect("/temp-then-perm", "/perm", 307)
    web.redirect("/perm", "/new", 301)
    assert (await fetcher.get(web.url("/temp"))).permanent_redirect_to is None
    # Only the permanent part of a chain counts: update to where it led.
    assert (await fetcher.get(web.url("/perm-then-temp"))).permanent_redirect_to == web.url(
        "/temp"
    )
    assert (await fetcher.get(web.url("/temp-then-perm"))).permanent_redirect_to is None


async def test_redirect_loop_and_bad_targets(web: WebServer, fetcher: Fetcher) -> None:
    web.redirect("/a", "/b", 302)
    web.redirect("/b", "/a", 302)
    web.redirect("/ftp", "ftp://example.org/feed", 301)
    web.redirect("/file", "file:///etc/passwd", 302)
    with pytest.raises(FetchError, match="too many redirects"):
        await fetcher.get(web.url("/a"))
    assert len(web.requests_for("/a")) + len(web.requests_for("/b")) == fetcher.max_redirects + 1
    for path in ("/ftp", "/file"):
        with pytest.raises(FetchError, match="not an http"):
            await fetcher.get(web.url(path))


@pytest.mark.parametrize("url", ["ftp://example.org/feed", "file:///etc/passwd", "feed", ""])
async def test_non_http_urls_are_refused(fetcher: Fetcher, url: str) -> None:
    with pytest.raises(FetchError, match="not an http"):
        await fetcher.get(url)


async def test_huge_body_with_content_length_is_refused_unread(
    web: WebServer, fetcher: Fetcher
) -> None:
    web.serve_large("/huge", 20 * 1024 * 1024)
    started = time.perf_counter()
    # The announced size is refused before a byte of the body is read.
    with pytest.raises(FetchError, match=r"too large: 20\.0 MB \(limit 5\.0 MB\)"):
        await fetcher.get(web.url("/huge"))
    assert time.perf_counter() - started < 2


async def test_endless_body_stops_at_the_cap(web: WebServer) -> None:
    # No Content-Length: the body is read up to the cap and the connection dropped. The
    # server can only have pushed what the sockets' buffers hold beyond that (tens of MB at
    # most on Linux), never the whole 200 MB.
    route = web.serve_large("/huge", 200 * 1024 * 1024, content_length=False)
    async with Fetcher(max_bytes=1024 * 1024, trust_env=False) as small:
        with pytest.raises(FetchError, match=r"too large: over 1\.0 MB"):
            await small.get(web.url("/huge"))
    for _ in range(50):  # wait for the server thread to notice the closed connection
        await asyncio.sleep(0.02)
        if web.in_flight == 0:
            break
    assert web.in_flight == 0
    assert route.sent < 100 * 1024 * 1024


async def test_server_that_never_answers_fails_within_the_timeout(
    web: WebServer, fetcher: Fetcher
) -> None:
    web.hang("/never")
    started = time.perf_counter()
    with pytest.raises(FetchError, match="read timeout"):
        await fetcher.get(web.url("/never"))
    assert time.perf_counter() - started < 1.5


async def test_slow_trickle_hits_the_total_timeout(web: WebServer) -> None:
    web.trickle("/slow", FEED, interval=0.1)  # 6 s for the whole body, never 0.5 s silent
    async with Fetcher(read_timeout=0.5, total_timeout=1.0, trust_env=False) as fetcher:
        started = time.perf_counter()
        with pytest.raises(FetchError, match="timed out: no complete answer within 1 s"):
            await fetcher.get(web.url("/slow"))
        assert time.perf_counter() - started < 2


async def test_connection_refused(fetcher: Fetcher) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(FetchError, match="connection failed"):
        await fetcher.get(f"http://127.0.0.1:{port}/feed")


async def test_per_host_concurrency_limit(web: WebServer) -> None:
    web.serve_bytes("/slow", FEED, delay=0.2, conditional=False)
    async with Fetcher(per_host=2, trust_env=False) as fetcher:
        results = await asyncio.gather(*(fetcher.get(web.url("/slow")) for _ in range(6)))
    assert all(r.body == FEED for r in results)
    assert web.max_in_flight == 2
    assert fetcher._hosts == {}  # no per-host state left behind


async def test_slot_wait_does_not_count_against_the_total_timeout(web: WebServer) -> None:
    web.serve_bytes("/slow", FEED, delay=0.25, conditional=False)
    async with Fetcher(per_host=1, total_timeout=0.6, trust_env=False) as fetcher:
        # The last one waits 0.75 s behind three others; each request itself takes 0.25 s.
        results = await asyncio.gather(*(fetcher.get(web.url("/slow")) for _ in range(4)))
    assert [r.body for r in results] == [FEED] * 4


async def test_private_addresses_can_be_refused(web: WebServer) -> None:
    web.serve_bytes("/feed", FEED)
    async with Fetcher(allow_private_hosts=False, trust_env=False) as fetcher:
        with pytest.raises(FetchError, match="private address"):
            await fetcher.get(web.url("/feed"))
    assert web.requests_for("/feed") == []


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({}, None),
        ({"Cache-Control": "max-age=600"}, 600),
        ({"Cache-Control": "public, s-maxage=10, max-age=3600, must-revalidate"}, 3600),
        ({"Cache-Control": "no-cache"}, 0),
        ({"Cache-Control": "private, no-store"}, 0),
        (
            {"Expires": "Thu, 01 Jan 2026 01:00:00 GMT", "Date": "Thu, 01 Jan 2026 00:30:00 GMT"},
            1800,
        ),
        ({"Expires": "0", "Date": "Thu, 01 Jan 2026 00:30:00 GMT"}, 0),
        ({"Expires": "Thu, 01 Jan 2026 01:00:00 GMT", "Cache-Control": "max-age=60"}, 60),
    ],
)
def test_max_age_of(headers: dict[str, str], expected: int | None) -> None:
    assert max_age_of(httpx.Headers(headers)) == expected
