"""Polite HTTP fetching for feeds and article pages: one httpx client, conditional GET,
redirects tracked, time and size limits, a few requests at a time per host."""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from types import TracebackType
from urllib.parse import urljoin

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
        allow_private_hosts: bool = True,
        trust_env: bool = True,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.max_bytes = max_bytes
        self.total_timeout = total_timeout
        self.max_redirects = max_redirects
        self.per_host = per_host
        self.allow_private_hosts = allow_private_hosts
        self._timeouts = (connect_timeout, read_timeout)
        self._client = httpx.AsyncClient(
            headers={"User-Agent": user_agent},
            timeout=httpx.Timeout(read_timeout, connect=connect_timeout),
            limits=httpx.Limits(
                max_connections=max_connections, max_keepalive_connections=max_connections
            ),
            follow_redirects=False,
            trust_env=trust_env,
            transport=transport,
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

    async def _check_address(self, url: str, host: str) -> None:
        if self.allow_private_hosts:
            return
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(host, None)
        except OSError as exc:
            raise FetchError(f"cannot resolve {host}: {exc.strerror or exc}", url=url) from exc
        for info in infos:
            address = ipaddress.ip_address(info[4][0])
            if not address.is_global:
                raise FetchError(f"refused: {host} is a private address ({address})", url=url)

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
            await self._check_address(url, host)
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
