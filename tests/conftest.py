"""Shared fixtures: the shared/ material behind a path option, a loopback-only network
guard, a fresh database, the fake Bot API server and the real Application polling it."""

from __future__ import annotations

import ipaddress
import os
import socket
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(__file__).resolve().parent / "data"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--shared",
        default=os.environ.get("NEWSBOT_SHARED", str(ROOT.parent / "shared")),
        help="path of the shared/ folder with samples/ and corpus/ (read in place)",
    )


@pytest.fixture(scope="session")
def shared_dir(request: pytest.FixtureRequest) -> Path:
    """The shared/ folder; tests that need it are skipped, with the reason, without it."""
    path = Path(request.config.getoption("--shared"))
    if not path.is_dir():
        pytest.skip(f"shared material not found at {path} (set --shared or NEWSBOT_SHARED)")
    return path


@pytest.fixture(scope="session")
def sample_article(shared_dir: Path) -> Path:
    """The real WION article in the plain-text format."""
    path = shared_dir / "samples" / "wion-belarus-2020-08-17.txt"
    if not path.is_file():
        pytest.skip(f"sample article not found at {path}")
    return path


@pytest.fixture(scope="session")
def corpus_dir(shared_dir: Path) -> Path:
    """The shared news corpus (JSON Lines archives)."""
    path = shared_dir / "corpus"
    if not (path / "bbc_news_summary.jsonl").is_file():
        pytest.skip(f"corpus not found in {path}")
    return path


_real_connect = socket.socket.connect
_real_connect_ex = socket.socket.connect_ex


def _check_address(sock: socket.socket, address: Any) -> None:
    if sock.family not in (socket.AF_INET, socket.AF_INET6):
        return
    host = address[0]
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = host == "localhost"
    if not loopback:
        raise AssertionError(f"test tried to reach {host}: only loopback is allowed")


def _guarded_connect(self: socket.socket, address: Any) -> None:
    _check_address(self, address)
    _real_connect(self, address)


def _guarded_connect_ex(self: socket.socket, address: Any) -> int:
    _check_address(self, address)
    return _real_connect_ex(self, address)


@pytest.fixture(autouse=True, scope="session")
def loopback_only() -> Iterator[None]:
    """Fail any connection that would leave 127.0.0.1 (the network boundary, not our code)."""
    socket.socket.connect = _guarded_connect  # type: ignore[method-assign]
    socket.socket.connect_ex = _guarded_connect_ex  # type: ignore[method-assign]
    yield
    socket.socket.connect = _real_connect  # type: ignore[method-assign]
    socket.socket.connect_ex = _real_connect_ex  # type: ignore[method-assign]


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    """A fresh database file per test."""
    return tmp_path / "newsbot.db"


@pytest.fixture
async def store(db_path: Path) -> AsyncIterator[Any]:
    """An open Store on a fresh database."""
    from storage import Store

    opened = await Store.open(db_path)
    yield opened
    await opened.close()


ADMIN_ID = 4242
READER_ID = 1001


@pytest.fixture
def botapi() -> Iterator[Any]:
    """The fake Telegram Bot API server on 127.0.0.1."""
    from tests.fakes.botapi import FakeBotAPI

    with FakeBotAPI() as api:
        yield api


@pytest.fixture
def settings(botapi: Any, db_path: Path) -> Any:
    """Settings pointing the bot at the fake server and the test database."""
    from bot.config import Secret, Settings

    return Settings(
        token=Secret("123456:TEST-token"),
        api_base_url=botapi.base_url,
        db_path=db_path,
        admin_ids=frozenset({ADMIN_ID}),
        poll_seconds=60,
        # The test web servers live on 127.0.0.1: the operator's opt-in, made explicit.
        allow_private_hosts=True,
    )


@pytest.fixture
async def bot(settings: Any) -> AsyncIterator[Any]:
    """The real Application, built as production builds it, polling the fake server."""
    from bot.app import build_application, running

    app = build_application(settings)
    async with running(app):
        yield app


@pytest.fixture
def web() -> Iterator[Any]:
    """A local web server serving tests/data (feeds, pages) with programmable routes."""
    from tests.fakes.webserver import WebServer

    with WebServer(DATA) as server:
        yield server


@pytest.fixture
async def fetcher() -> AsyncIterator[Any]:
    """The feed and page fetcher with short timeouts, proxies from the environment off,
    loopback allowed (the test web server is on 127.0.0.1)."""
    from news.fetch import Fetcher

    async with Fetcher(
        connect_timeout=2,
        read_timeout=1.0,
        total_timeout=3,
        trust_env=False,
        allow_private_hosts=True,
    ) as client:
        yield client
