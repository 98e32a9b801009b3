"""Polite HTTP fetching for feeds and article pages: one httpx client, conditional GET,
redirects tracked, time and size limits, a few requests at a time per host."""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import re
import socket
import urllib.request
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from types import TracebackType
from urllib.parse import urljoin

import httpcore
import httpx

from news.urls import host_of, is_http_url

log = logging.getLogger(__name__)

# Browser-like so that sites serve their normal pages, honest about being a bot.
USER_AGENT = "Mozilla/5.0 (compatible; newsbot/0.1; +https://github.com/newsbot)"
MAX_BYTES = 5 * 1024 * 1024
FEED_ACCEPT = (
    "application/rss+xml, application/atom+xml, application/rdf+xml;q=0.9, "
    "application/xml;q=0.9, text/xml;q=0.9, */*;q=0.8"
)
PAGE_ACCEPT = "text/html,application/xhtml+xml;q=0.9,*/*;q=0.8"
_REDIRECTS = {301, 302, 303, 307, 308}
_PERMANENT = {301, 308}
_MAX_AGE = re.compile(r"(?:^|[,\s])max-age\s*=\s*\"?(\d+)", re.I)


class FetchError(Exception):
    """A fetch failed; `reason` is short and human ("HTTP 500", "read timeout", ...)."""

    def __init__(
        self,
        reason: str,
        *,
        url: str = "",
        status: int | None = None,
        retry_after_seconds: int | None = None,
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.url = url
        self.status = status
        self.retry_after_seconds = retry_after_seconds

    @property
    def gone(self) -> bool:
        """True when the server says the resource is gone for good (404 or 410)."""
        return self.status in (404, 410)


@dataclass(frozen=True, slots=True)
class FetchResult:
    """A successful response (2xx or 304), its body read up to the size cap."""

    status: int
    url: str
    permanent_redirect_to: str | None
    etag: str | None
    last_modified: str | None
    content_type: str | None
    body: bytes
    max_age_seconds: int | None
    not_modified: bool
    redirects: tuple[str, ...] = ()


# Turns a host name and port into the IP addresses to try, in order.
Resolver = Callable[[str, int], Awaitable[list[str]]]
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


async def system_resolver(host: str, port: int) -> list[str]:
    """The host's addresses from the system resolver (getaddrinfo), in its order."""
    infos = await asyncio.get_running_loop().getaddrinfo(
        host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
    )
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def address_kind(address: Address) -> str | None:
    """Why `address` is not a public one ("loopback", "private", ...), or None if it is.
    IPv4-mapped, 6to4 and NAT64 IPv6 forms are judged by the IPv4 address they carry."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or address.sixtofour
        if embedded is None and address in _NAT64:
            embedded = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if embedded is not None and (kind := address_kind(embedded)) is not None:
            return kind
    for kind, test in (
        ("unspecified", address.is_unspecified),
        ("loopback", address.is_loopback),
        ("link-local", address.is_link_local),
        ("multicast", address.is_multicast),
        ("reserved", address.is_reserved),
        ("private", address.is_private),
    ):
        if test:
            return kind
    return None if address.is_global else "non-public"


_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


class RefusedAddress(httpcore.ConnectError):
    """A connection refused before it was made: the host is not a public address."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def refusal(host: str, addresses: Iterable[str]) -> str | None:
    """The reason to refuse `host` when any of its `addresses` is not public, else None."""
    for text in addresses:
        address = ipaddress.ip_address(text.split("%", 1)[0])
        if (kind := address_kind(address)) is not None:
            shown = host if host == text else f"{host} ({address})"
            return (
                f"refused: {shown} is a {kind} address, not a public one "
                "(NEWSBOT_ALLOW_PRIVATE_HOSTS=1 allows it)"
            )
    return None


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """An httpcore network backend that resolves each host once, refuses it unless every
    address is public, and connects to the very address it checked (so a second DNS answer
    cannot differ); TLS still sends the host name (SNI) and HTTP the Host header."""

    def __init__(
        self,
        *,
        allow_private_hosts: bool,
        resolver: Resolver = system_resolver,
        network: httpcore.AsyncNetworkBackend | None = None,
    ) -> None:
        self.allow_private_hosts = allow_private_hosts
        self._resolve = resolver
        self._network = network or httpcore.AnyIOBackend()

    async def addresses(self, host: str, port: int) -> list[str]:
        """The addresses to connect to for `host`; raises RefusedAddress."""
        bare = host.strip("[]")
        try:
            addresses = [str(ipaddress.ip_address(bare))]
        except ValueError:
            try:
                addresses = await self._resolve(bare, port)
            except OSError as exc:
                raise RefusedAddress(f"cannot resolve {bare}: {exc.strerror or exc}") from exc
        if not addresses:
            raise RefusedAddress(f"cannot resolve {bare}: no address")
        if not self.allow_private_hosts and (reason := refusal(bare, addresses)):
            raise RefusedAddress(reason)
        return addresses

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's interface)
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        """Connect to the first checked address of `host` that answers."""
        error: Exception | None = None
        for address in await self.addresses(host, port):
            try:
                return await self._network.connect_tcp(
                    address, port, timeout, local_address, socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                error = exc
        assert error is not None
        raise error

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's interface)
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        """Refused: feeds and pages are fetched over TCP only."""
        raise RefusedAddress("refused: Unix sockets are not fetched")

    async def sleep(self, seconds: float) -> None:
        """Sleep as the wrapped backend does."""
        await self._network.sleep(seconds)


class GuardedTransport(httpx.AsyncHTTPTransport):
    """httpx's own transport (its error mapping and pooling) over a GuardedBackend."""

    def __init__(self, backend: GuardedBackend, limits: httpx.Limits, trust_env: bool) -> None:
        super().__init__(limits=limits, trust_env=trust_env)
        # httpx has no public hook for the network backend: rebuild its pool with ours,
        # with the same settings httpx would use.
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(trust_env=trust_env),
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=backend,
        )


def max_age_of(headers: httpx.Headers) -> int | None:
    """Seconds the response may be cached, from Cache-Control (max-age, no-cache) or
    Expires minus Date; None when the server says nothing."""
    cache_control = headers.get("cache-control", "")
    lowered = cache_control.lower()
    if "no-cache" in lowered or "no-store" in lowered:
        return 0
    if found := _MAX_AGE.search(cache_control):
        return int(found.group(1))
    expires = headers.get("expires")
    if expires:
        try:
            until = parsedate_to_datetime(expires)
            served = parsedate_to_datetime(headers["date"]) if "date" in headers else None
        except (TypeError, ValueError, IndexError):
            return 0  # an invalid Expires means "already expired" (RFC 9111)
        if until.tzinfo is None:
            until = until.replace(tzinfo=UTC)
        if served is None:
            served = datetime.now(UTC)
        elif served.tzinfo is None:
            served = served.replace(tzinfo=UTC)
        return max(0, int((until - served).total_seconds()))
    return None


def _retry_after(headers: httpx.Headers) -> int | None:
    value = headers.get("retry-after", "").strip()
    if value.isdigit():
        return int(value)
    if value:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        return max(0, int((when - datetime.now(UTC)).total_seconds()))
    return None


def _megabytes(n: int) -> str:
    return f"{n / 1_048_576:.1f} MB"


class Fetcher:
    """An async HTTP client for feeds and pages, to be closed with `aclose()` (or used
    as `async with Fetcher() as fetcher`)."""

    def __init__(
        self,
        *,
        user_agent: str = USER_AGENT,
        max_bytes: int = MAX_BYTES,
        connect_timeout: float = 10.0,
        read_timeout: float = 20.0,
        total_timeout: float = 60.0,
        max_redirects: int = 5,
        per_host: int = 2,
        max_connections: int = 20,
        allow_private_hosts: bool = False,
        trust_env: bool = True,
        transport: httpx.AsyncBaseTransport | None = None,
        resolver: Resolver = system_resolver,
        network: httpcore.AsyncNetworkBackend | None = None,
    ) -> None:
        self.max_bytes = max_bytes
        self.total_timeout = total_timeout
        self.max_redirects = max_redirects
        self.per_host = per_host
        self.allow_private_hosts = allow_private_hosts
        self._timeouts = (connect_timeout, read_timeout)
        limits = httpx.Limits(
            max_connections=max_connections, max_keepalive_connections=max_connections
        )
        # Every connection goes through the guard (a `transport` given by a test replaces
        # the network altogether). `network` is the socket layer under it, for tests.
        self._guard = GuardedBackend(
            allow_private_hosts=allow_private_hosts, resolver=resolver, network=network
        )
        # A proxy from the environment resolves names itself, out of the guard's reach:
        # then each hop's host is checked here first (a proxy cannot pin the address).
        self._precheck = trust_env and transport is None and bool(urllib.request.getproxies())
        self._client = httpx.AsyncClient(
            headers={"User-Agent": user_agent},
            timeout=httpx.Timeout(read_timeout, connect=connect_timeout),
            limits=limits,
            follow_redirects=False,
            trust_env=trust_env,
            transport=transport or GuardedTransport(self._guard, limits, trust_env),
        )
        self._hosts: dict[str, asyncio.Semaphore] = {}
        self._users: dict[str, int] = {}

    async def __aenter__(self) -> Fetcher:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._client.aclose()

    @asynccontextmanager
    async def _host_slot(self, host: str) -> AsyncIterator[None]:
        # A few requests at a time per host, however many feeds and pages it serves.
        semaphore = self._hosts.setdefault(host, asyncio.Semaphore(self.per_host))
        self._users[host] = self._users.get(host, 0) + 1
        try:
            async with semaphore:
                yield
        finally:
            self._users[host] -= 1
            if not self._users[host]:
                del self._users[host], self._hosts[host]

    async def _check_address(self, url: str, current: str) -> None:
        if not self._precheck or self.allow_private_hosts:
            return
        parsed = httpx.URL(current)
        try:
            await self._guard.addresses(parsed.host, parsed.port or 443)
        except RefusedAddress as refused:
            raise FetchError(refused.reason, url=url) from None

    async def get(
        self,
        url: str,
        *,
        etag: str | None = None,
        last_modified: str | None = None,
        accept: str = FEED_ACCEPT,
        max_bytes: int | None = None,
    ) -> FetchResult:
        """GET `url` with conditional headers, following redirects; raises FetchError."""
        cap = self.max_bytes if max_bytes is None else max_bytes
        headers = {"Accept": accept}
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        current = url
        hops: list[str] = []
        permanent_to: str | None = None
        still_permanent = True
        deadline: float | None = None
        for _ in range(self.max_redirects + 1):
            if not is_http_url(current):
                raise FetchError(f"not an http(s) URL: {current[:100]}", url=url)
            host = host_of(current)
            await self._check_address(url, current)
            async with self._host_slot(host):
                # The total time limit starts once a slot is ours: waiting behind other
                # requests to the same host is politeness, not the server's slowness.
                if deadline is None:
                    deadline = asyncio.get_running_loop().time() + self.total_timeout
                try:
                    async with asyncio.timeout_at(deadline):
                        outcome = await self._hop(url, current, headers, cap)
                except TimeoutError:
                    raise FetchError(
                        f"timed out: no complete answer within {self.total_timeout:g} s",
                        url=url,
                    ) from None
            if isinstance(outcome, tuple):
                target, status = outcome
                if still_permanent and status in _PERMANENT:
                    log.debug("%s moved permanently to %s", current, target)
                    permanent_to = target
                else:
                    still_permanent = False
                hops.append(target)
                current = target
                continue
            return replace(
                outcome,
                permanent_redirect_to=permanent_to,
                redirects=tuple(hops),
                # A 304 need not repeat the validators; keep the ones we sent.
                etag=outcome.etag or (etag if outcome.not_modified else None),
                last_modified=outcome.last_modified
                or (last_modified if outcome.not_modified else None),
            )
        raise FetchError(f"too many redirects (more than {self.max_redirects})", url=url)

    async def _hop(
        self, url: str, current: str, headers: dict[str, str], cap: int
    ) -> FetchResult | tuple[str, int]:
        """One request: a result, or (redirect target, status) for a redirect."""
        response = await self._send(url, current, headers)
        log.debug("GET %s: HTTP %s", current, response.status_code)
        try:
            status = response.status_code
            if status in _REDIRECTS:
                location = response.headers.get("location")
                if not location:
                    raise FetchError(
                        f"HTTP {status} redirect without a Location", url=url, status=status
                    )
                return urljoin(current, location.strip()), status
            return await self._result(url, current, response, cap)
        finally:
            await response.aclose()

    async def _send(self, url: str, current: str, headers: dict[str, str]) -> httpx.Response:
        connect, read = self._timeouts
        try:
            request = self._client.build_request("GET", current, headers=headers)
            return await self._client.send(request, stream=True)
        except httpx.ConnectTimeout:
            raise FetchError(f"connect timeout ({connect:g} s)", url=url) from None
        except httpx.ReadTimeout:
            raise FetchError(f"read timeout: no data for {read:g} s", url=url) from None
        except httpx.TimeoutException as exc:
            raise FetchError(f"timeout: {type(exc).__name__}", url=url) from None
        except httpx.ConnectError as exc:
            if isinstance(exc.__cause__, RefusedAddress):
                raise FetchError(exc.__cause__.reason, url=url) from None
            raise FetchError(f"connection failed: {exc or type(exc).__name__}", url=url) from None
        except httpx.InvalidURL as exc:
            raise FetchError(f"invalid URL: {exc}", url=url) from None
        except httpx.HTTPError as exc:
            raise FetchError(f"{type(exc).__name__}: {exc}", url=url) from None

    async def _result(
        self,
        url: str,
        final: str,
        response: httpx.Response,
        cap: int,
    ) -> FetchResult:
        status = response.status_code
        if status >= 400 or status < 200:
            raise FetchError(
                f"HTTP {status} {response.reason_phrase}".strip(),
                url=url,
                status=status,
                retry_after_seconds=_retry_after(response.headers),
            )
        body = b""
        if status != 304:
            body = await self._read(url, response, cap)
        return FetchResult(
            status=status,
            url=final,
            permanent_redirect_to=None,
            etag=response.headers.get("etag"),
            last_modified=response.headers.get("last-modified"),
            content_type=response.headers.get("content-type"),
            body=body,
            max_age_seconds=max_age_of(response.headers),
            not_modified=status == 304,
        )

    async def _read(self, url: str, response: httpx.Response, cap: int) -> bytes:
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > cap:
            raise FetchError(
                f"too large: {_megabytes(int(declared))} (limit {_megabytes(cap)})", url=url
            )
        chunks: list[bytes] = []
        size = 0
        try:
            # Stop at the cap: a huge (or endless) body is never read whole.
            async for chunk in response.aiter_bytes():
                size += len(chunk)
                if size > cap:
                    raise FetchError(f"too large: over {_megabytes(cap)} limit", url=url)
                chunks.append(chunk)
        except httpx.ReadTimeout:
            raise FetchError(
                f"read timeout: no data for {self._timeouts[1]:g} s", url=url
            ) from None
        except httpx.HTTPError as exc:
            raise FetchError(f"{type(exc).__name__}: {exc}", url=url) from None
        return b"".join(chunks)
