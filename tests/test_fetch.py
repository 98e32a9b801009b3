"""The Fetcher against a real local HTTP server: conditional GET, redirects, errors,
time and size limits, per-host concurrency."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import time
from collections.abc import AsyncIterator, Iterable
from pathlib import Path

import httpcore
import httpx
import pytest

from news.feeds import fetch_feed, import_entries
from news.fetch import USER_AGENT, Fetcher, FetchError, max_age_of
from tests.fakes.webserver import WebServer

DATA = Path(__file__).parent / "data"
FEED = b'<rss version="2.0"><channel><title>T</title></channel></rss>'


@pytest.fixture
async def fetcher() -> AsyncIterator[Fetcher]:
    async with Fetcher(
        connect_timeout=2,
        read_timeout=0.5,
        total_timeout=2,
        trust_env=False,
        allow_private_hosts=True,
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
    async with Fetcher(max_bytes=1024 * 1024, trust_env=False, allow_private_hosts=True) as small:
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
    async with Fetcher(
        read_timeout=0.5, total_timeout=1.0, trust_env=False, allow_private_hosts=True
    ) as fetcher:
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
    async with Fetcher(per_host=2, trust_env=False, allow_private_hosts=True) as fetcher:
        results = await asyncio.gather(*(fetcher.get(web.url("/slow")) for _ in range(6)))
    assert all(r.body == FEED for r in results)
    assert web.max_in_flight == 2
    assert fetcher._hosts == {}  # no per-host state left behind


async def test_slot_wait_does_not_count_against_the_total_timeout(web: WebServer) -> None:
    web.serve_bytes("/slow", FEED, delay=0.25, conditional=False)
    async with Fetcher(
        per_host=1, total_timeout=0.6, trust_env=False, allow_private_hosts=True
    ) as fetcher:
        # The last one waits 0.75 s behind three others; each request itself takes 0.25 s.
        results = await asyncio.gather(*(fetcher.get(web.url("/slow")) for _ in range(4)))
    assert [r.body for r in results] == [FEED] * 4


# --- internal addresses (issue 10): refused on every hop unless the operator opts in ------


PUBLIC = "93.184.216.34"  # what the resolver stub says news.example is


class Internet(httpcore.AsyncNetworkBackend):
    """The socket layer for tests: every connection is recorded, and any non-loopback
    address is answered by the local web server, so no packet ever leaves 127.0.0.1."""

    def __init__(self, web: WebServer) -> None:
        self.port = httpx.URL(web.base_url).port
        self.connects: list[tuple[str, int]] = []
        self._real = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's interface)
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        self.connects.append((host, port))
        if not ipaddress.ip_address(host).is_loopback:
            host, port = "127.0.0.1", self.port or 80
        return await self._real.connect_tcp(host, port, timeout, local_address, socket_options)

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's interface)
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise AssertionError("no Unix sockets in these tests")

    async def sleep(self, seconds: float) -> None:
        await self._real.sleep(seconds)


class StubResolver:
    """A DNS stub: fixed answers per name, every question recorded."""

    def __init__(self, answers: dict[str, list[str]]) -> None:
        self.answers = answers
        self.asked: list[str] = []

    async def __call__(self, host: str, port: int) -> list[str]:
        self.asked.append(host)
        if host not in self.answers:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return self.answers[host]


STUB_ANSWERS = {
    "news.example": [PUBLIC],
    "localhost": ["127.0.0.1", "::1"],
    "metadata.example": ["169.254.169.254"],
    "intranet.example": ["10.0.0.5"],
    "router.example": ["192.168.1.1"],
    "cgnat.example": ["100.64.0.1"],
    "v6-private.example": ["fd00::1"],
    "v6-link-local.example": ["fe80::1"],
    "mapped.example": ["::ffff:169.254.169.254"],
    "nat64.example": ["64:ff9b::7f00:1"],
    "multicast.example": ["224.0.0.251"],
    "reserved.example": ["240.0.0.1"],
    "broadcast.example": ["255.255.255.255"],
    "mixed.example": [PUBLIC, "127.0.0.1"],  # one bad answer is enough to refuse
}


@pytest.fixture
def internet(web: WebServer) -> Internet:
    return Internet(web)


def guarded(internet: Internet, resolver: StubResolver | None = None) -> Fetcher:
    """A fetcher as production builds it (private hosts refused), on the test network."""
    return Fetcher(
        connect_timeout=2,
        read_timeout=1,
        total_timeout=3,
        trust_env=False,
        resolver=resolver or StubResolver(STUB_ANSWERS),
        network=internet,
    )


@pytest.mark.parametrize(
    "host",
    ["127.0.0.1", "localhost", "0.0.0.0", "2130706433", "0x7f.1", "[::1]", "[::ffff:127.0.0.1]"],
)
async def test_loopback_is_refused_by_default_and_never_reached(web: WebServer, host: str) -> None:
    web.serve_bytes("/feed", FEED)
    port = httpx.URL(web.base_url).port
    # The default Fetcher, with the system resolver: what `newsbot ingest URL` builds.
    async with Fetcher(trust_env=False) as fetcher:
        with pytest.raises(FetchError, match=r"^refused: .* is a (loopback|unspecified) address"):
            await fetcher.get(f"http://{host}:{port}/feed")
    assert web.requests == []


@pytest.mark.parametrize(
    ("url", "kind"),
    [
        ("http://169.254.169.254/latest/meta-data/", "link-local"),
        ("http://metadata.example/latest/meta-data/", "link-local"),
        ("http://intranet.example/", "private"),
        ("http://router.example/", "private"),
        ("http://cgnat.example/", "non-public"),
        ("http://10.1.2.3:8080/", "private"),
        ("http://v6-private.example/", "private"),
        ("http://v6-link-local.example/", "link-local"),
        ("http://[fe80::1]/", "link-local"),
        ("http://mapped.example/", "link-local"),
        ("http://[::ffff:10.0.0.1]/", "private"),
        ("http://nat64.example/", "loopback"),
        ("http://multicast.example/", "multicast"),
        ("http://reserved.example/", "reserved"),
        ("http://broadcast.example/", "reserved"),
        ("https://mixed.example/", "loopback"),
    ],
)
async def test_internal_addresses_are_refused_after_resolution(
    internet: Internet, url: str, kind: str
) -> None:
    async with guarded(internet) as fetcher:
        with pytest.raises(FetchError, match=rf"^refused: .* is a {kind} address"):
            await fetcher.get(url)
    assert internet.connects == []


async def test_public_hosts_connect_to_the_address_that_was_checked(
    web: WebServer, internet: Internet
) -> None:
    web.serve_bytes("/feed", FEED)
    resolver = StubResolver(STUB_ANSWERS)
    async with guarded(internet, resolver) as fetcher:
        result = await fetcher.get("http://news.example/feed")
    assert result.body == FEED
    # Resolved once, and the socket went to that very address (no second lookup that a
    # rebinding DNS server could answer differently); the Host header keeps the name.
    assert resolver.asked == ["news.example"]
    assert internet.connects == [(PUBLIC, 80)]
    assert web.requests_for("/feed")[0].headers["host"] == "news.example"


async def test_a_redirect_to_an_internal_address_is_refused_at_the_hop(
    web: WebServer, internet: Internet
) -> None:
    port = httpx.URL(web.base_url).port
    web.serve_bytes("/secret", b"internal only")
    web.redirect("/to-loopback", f"http://127.0.0.1:{port}/secret", status=302)
    web.redirect("/to-metadata", "http://metadata.example/latest/meta-data/", status=301)
    async with guarded(internet) as fetcher:
        with pytest.raises(FetchError, match=r"^refused: 127\.0\.0\.1 is a loopback address"):
            await fetcher.get("http://news.example/to-loopback")
        with pytest.raises(FetchError, match=r"^refused: metadata\.example \(169\.254"):
            await fetcher.get("http://news.example/to-metadata")
    assert [r.path for r in web.requests] == ["/to-loopback", "/to-metadata"]
    assert web.requests_for("/secret") == []
    # Only the allowed host was ever connected to; each internal hop stopped before.
    assert {address for address, _ in internet.connects} == {PUBLIC}


async def test_internal_teaser_links_are_refused_per_item(
    web: WebServer, internet: Internet
) -> None:
    port = httpx.URL(web.base_url).port
    web.serve_file("/pages/gazette-harbour-wall.html", "pages/gazette-harbour-wall.html")
    web.serve_file("/pages/courier-rail-strike.html", "pages/courier-rail-strike.html")
    links = [
        "http://news.example/pages/gazette-harbour-wall.html",
        f"http://127.0.0.1:{port}/pages/courier-rail-strike.html",
        f"http://localhost:{port}/pages/courier-rail-strike.html",
        "http://metadata.example/latest/meta-data/iam",
    ]
    items = "".join(
        f"<item><title>Story {n}</title><link>{link}</link><guid>g{n}</guid>"
        f"<description>The first lines of story {n}, and then&#8230;</description></item>"
        for n, link in enumerate(links)
    )
    web.serve_bytes(
        "/feed",
        f'<rss version="2.0"><channel><title>T</title>{items}</channel></rss>'.encode(),
        content_type="application/rss+xml",
    )
    async with guarded(internet) as fetcher:
        polled = await fetch_feed(fetcher, "http://news.example/feed")
        assert polled.feed is not None
        imported = await import_entries(fetcher, polled.feed.entries, feed_title="T")
    public, *internal = imported
    assert public.page_error is None
    assert public.article is not None
    assert public.article.body[0].startswith("Engineers will begin repairing")
    # Each internal link is refused with its reason; its item keeps only the feed's teaser.
    for item in internal:
        assert item.page_error is not None
        assert item.page_error.startswith("refused: ")
        assert item.article is not None
        assert item.article.body == (
            f"The first lines of {item.article.title.lower()}, and then…",
        )
    # The public page was read; no internal page was ever requested.
    assert sorted(r.path for r in web.requests) == ["/feed", "/pages/gazette-harbour-wall.html"]


async def test_behind_a_proxy_each_hop_is_checked_before_the_proxy_sees_it(
    web: WebServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The proxy resolves names itself, so newsbot checks its own resolution first.
    for name in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy"):
        monkeypatch.setenv(name, web.base_url)
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    async with Fetcher(trust_env=True, resolver=StubResolver(STUB_ANSWERS)) as fetcher:
        with pytest.raises(FetchError, match=r"^refused: intranet\.example \(10\.0\.0\.5\)"):
            await fetcher.get("http://intranet.example/admin")
        with pytest.raises(FetchError, match=r"^refused: 169\.254\.169\.254 is a link-local"):
            await fetcher.get("http://169.254.169.254/latest/meta-data/")
    assert web.requests == []  # the proxy never saw either request


async def test_the_opt_in_lets_loopback_through(web: WebServer) -> None:
    web.serve_bytes("/feed", FEED)
    async with Fetcher(trust_env=False, allow_private_hosts=True) as fetcher:
        assert (await fetcher.get(web.url("/feed"))).body == FEED


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
