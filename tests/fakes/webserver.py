"""A local HTTP server for feed and page tests: 127.0.0.1, an ephemeral port, a thread.

Routes are programmable: static bodies with ETag/Last-Modified (answering 304 to a
matching conditional GET), any status, redirects, huge streamed bodies, a route that never
answers, a slow trickle, a delay before answering. Every request is recorded with its
headers, and a route's body can be replaced while the server runs (a "changed feed").

    with WebServer(data_dir=Path("tests/data")) as server:
        server.serve_file("/feed.xml", "feeds/atom10.xml", content_type="application/atom+xml")
        url = server.url("/feed.xml")
"""

from __future__ import annotations

import hashlib
import mimetypes
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.utils import formatdate, parsedate_to_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Literal

DATA_DIR = Path(__file__).resolve().parents[1] / "data"
# Last-Modified of the first version of every route; each change adds a minute.
_EPOCH = 1_717_200_000.0

Kind = Literal["static", "hang", "trickle", "stream"]


@dataclass
class Route:
    """What the server answers on one path."""

    body: bytes = b""
    status: int = 200
    content_type: str | None = "application/xml"
    headers: dict[str, str] = field(default_factory=dict)
    conditional: bool = True  # send ETag + Last-Modified and honour conditional GETs
    kind: Kind = "static"
    size: int = 0  # "stream": bytes to send
    content_length: bool = True  # "stream": announce the size (False: close-delimited)
    interval: float = 0.0  # "trickle": pause between bytes
    delay: float = 0.0  # pause before answering at all
    version: int = 0
    sent: int = 0  # body bytes actually written (for "stream" and "trickle")

    @property
    def etag(self) -> str:
        """A strong ETag derived from the body."""
        return '"' + hashlib.sha1(self.body).hexdigest()[:16] + '"'

    @property
    def last_modified(self) -> str:
        """The HTTP date of the current version."""
        return formatdate(_EPOCH + 60 * self.version, usegmt=True)


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the server saw it (header names lower-cased)."""

    method: str
    path: str
    headers: dict[str, str]
    at: float


class WebServer:
    """The fake web server; start()/stop() or use as a context manager."""

    def __init__(self, data_dir: Path = DATA_DIR) -> None:
        self.data_dir = data_dir
        self.routes: dict[str, Route] = {}
        self.requests: list[RecordedRequest] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle ------------------------------------------------------------------

    def start(self) -> WebServer:
        """Bind 127.0.0.1 on a free port and serve in a daemon thread."""
        server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        server.daemon_threads = True
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, args=(0.05,), name="fake-web", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Release hanging requests and shut the server down."""
        self._stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> WebServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        """http://127.0.0.1:PORT"""
        assert self._server is not None, "server not started"
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def url(self, path: str) -> str:
        """The absolute URL of `path` on this server."""
        return self.base_url + path

    # --- routes ---------------------------------------------------------------------

    def add(self, path: str, route: Route) -> Route:
        """Serve `route` on `path` (replacing any earlier one)."""
        with self._lock:
            self.routes[path] = route
        return route

    def serve_bytes(
        self,
        path: str,
        body: bytes,
        *,
        content_type: str | None = "application/xml",
        headers: dict[str, str] | None = None,
        conditional: bool = True,
        delay: float = 0.0,
    ) -> Route:
        """A static body with ETag/Last-Modified, answering 304 when unchanged."""
        return self.add(
            path,
            Route(
                body=body,
                content_type=content_type,
                headers=dict(headers or {}),
                conditional=conditional,
                delay=delay,
            ),
        )

    def serve_file(
        self,
        path: str,
        name: str,
        *,
        content_type: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> Route:
        """A file under data_dir; the content type is guessed from its name if not given."""
        file = self.data_dir / name
        if content_type is None:
            guessed = mimetypes.guess_type(file.name)[0]
            content_type = "application/xml" if file.suffix == ".xml" else guessed
        return self.serve_bytes(
            path, file.read_bytes(), content_type=content_type, headers=headers
        )

    def serve_status(self, path: str, status: int, body: bytes = b"", **headers: str) -> Route:
        """Answer every request with `status` (500, 404, 429 ...)."""
        route = Route(body=body, status=status, content_type="text/plain", conditional=False)
        route.headers.update({k.replace("_", "-"): v for k, v in headers.items()})
        return self.add(path, route)

    def redirect(self, path: str, to: str, status: int = 301) -> Route:
        """A redirect (301, 302, 303, 307, 308) to `to` (a path or a full URL)."""
        route = Route(
            status=status, content_type=None, conditional=False, headers={"Location": to}
        )
        return self.add(path, route)

    def serve_large(self, path: str, size: int, *, content_length: bool = True) -> Route:
        """A `size`-byte body streamed in chunks (optionally without Content-Length)."""
        route = Route(kind="stream", size=size, content_length=content_length, conditional=False)
        return self.add(path, route)

    def hang(self, path: str) -> Route:
        """Accept the request and never answer (until the server stops)."""
        return self.add(path, Route(kind="hang", conditional=False))

    def trickle(self, path: str, body: bytes, interval: float) -> Route:
        """Send headers, then the body one byte per `interval` seconds."""
        route = Route(body=body, kind="trickle", interval=interval, conditional=False)
        return self.add(path, route)

    def set_body(self, path: str, body: bytes) -> Route:
        """Replace a route's body: a new version with a new ETag and Last-Modified."""
        with self._lock:
            route = self.routes[path]
            route.body = body
            route.version += 1
        return route

    # --- inspection -----------------------------------------------------------------

    def requests_for(self, path: str) -> list[RecordedRequest]:
        """The recorded requests for `path` (query string ignored), oldest first."""
        with self._lock:
            return [r for r in self.requests if r.path.split("?")[0] == path]

    def _record(self, request: RecordedRequest) -> None:
        with self._lock:
            self.requests.append(request)

    def _enter(self) -> None:
        with self._lock:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)

    def _leave(self) -> None:
        with self._lock:
            self.in_flight -= 1


def _handler_for(server: WebServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            pass  # keep test output clean

        def do_GET(self) -> None:
            self._answer(send_body=True)

        def do_HEAD(self) -> None:
            self._answer(send_body=False)

        def _answer(self, *, send_body: bool) -> None:
            headers = {k.lower(): v for k, v in self.headers.items()}
            server._record(RecordedRequest(self.command, self.path, headers, time.monotonic()))
            route = server.routes.get(self.path.split("?")[0])
            server._enter()
            try:
                if route is None:
                    self._plain(404, b"not found")
                    return
                if route.delay and server._stopping.wait(route.delay):
                    return
                if route.kind == "hang":
                    server._stopping.wait()
                    self.close_connection = True
                    return
                if route.kind == "stream":
                    self._stream(route, send_body)
                    return
                if route.kind == "trickle":
                    self._trickle(route)
                    return
                self._static(route, headers, send_body)
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection = True  # the client gave up: that is what we test
            finally:
                server._leave()

        def _plain(self, status: int, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _static(self, route: Route, headers: dict[str, str], send_body: bool) -> None:
            if route.conditional and route.status == 200 and _unchanged(route, headers):
                self.send_response(304)
                self.send_header("ETag", route.etag)
                self.send_header("Last-Modified", route.last_modified)
                for name, value in route.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                return
            self.send_response(route.status)
            if route.content_type:
                self.send_header("Content-Type", route.content_type)
            if route.conditional:
                self.send_header("ETag", route.etag)
                self.send_header("Last-Modified", route.last_modified)
            for name, value in route.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(route.body)))
            self.end_headers()
            if send_body:
                self.wfile.write(route.body)

        def _stream(self, route: Route, send_body: bool) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/xml")
            if route.content_length:
                self.send_header("Content-Length", str(route.size))
            else:
                self.send_header("Connection", "close")
                self.close_connection = True
            self.end_headers()
            if not send_body:
                return
            chunk = b"<!-- padding -->" * 4096  # 64 KiB
            left = route.size
            while left > 0 and not server._stopping.is_set():
                piece = chunk[: min(len(chunk), left)]
                self.wfile.write(piece)
                route.sent += len(piece)
                left -= len(piece)

        def _trickle(self, route: Route) -> None:
            self.send_response(200)
            self.send_header("Content-Type", route.content_type or "application/xml")
            self.send_header("Content-Length", str(len(route.body)))
            self.end_headers()
            for i in range(len(route.body)):
                if server._stopping.wait(route.interval):
                    self.close_connection = True
                    return
                self.wfile.write(route.body[i : i + 1])
                self.wfile.flush()
                route.sent += 1

    return Handler


def _unchanged(route: Route, headers: dict[str, str]) -> bool:
    """RFC 9110: If-None-Match decides when present, else If-Modified-Since."""
    if "if-none-match" in headers:
        tags = {t.strip() for t in headers["if-none-match"].split(",")}
        return route.etag in tags or "*" in tags
    if "if-modified-since" in headers:
        try:
            since = parsedate_to_datetime(headers["if-modified-since"]).timestamp()
        except (TypeError, ValueError):
            return False
        return _EPOCH + 60 * route.version <= since
    return False


def all_files(data_dir: Path, folder: str) -> Iterator[Path]:
    """Every file under data_dir/folder, sorted (for serving a whole saved-site folder)."""
    yield from sorted(p for p in (data_dir / folder).rglob("*") if p.is_file())
