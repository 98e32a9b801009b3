"""A property test: random callback payloads and command arguments (unicode, huge, empty,
control characters) fed through the real Application's handlers against the fake Bot API
server. None may reach the error handler, each gets an answer, and every answer is one the
Bot API accepts (the fake parses HTML and checks lengths as Telegram does)."""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from telegram import Update

import handlers
from bot.app import build_application, running
from news.articles import Article, RelatedLink
from storage import Store
from tests.fakes.botapi import Call, FakeBotAPI, command_entities

_REPLIES = ("sendMessage", "editMessageText", "answerCallbackQuery")
_chat_ids = itertools.count(20_000)
_callback_ids = itertools.count(1)

HOSTILE = st.sampled_from(
    [
        "",
        " ",
        "0",
        "1",
        "2",
        "٣",
        "²",
        "9" * 30,
        "-1",
        "#1",
        "#²",
        "\x00",
        "\x1b[2J",
        "\u202e\u200b",
        "<b>",
        '"',
        "'><a href=x>",
        "&amp;",
        "Europe/Minsk",
        "localtime",
        "08:00",
        "off",
        "all",
    ]
)
ARGUMENT = st.one_of(
    HOSTILE,
    st.text(max_size=60),
    st.text(alphabet="&<>\"'\n\t\x00 ", min_size=1, max_size=300),
    st.text(min_size=3000, max_size=3900),
)
COMMAND = st.sampled_from([c.name for c in handlers.COMMANDS] + ["frobnicate", "read_", "full"])
PREFIX = st.sampled_from(
    [
        "summary:",
        "full:",
        "related:",
        "highlights:",
        "page:0:",
        "page:1:#",
        "page:0:#",
        "page:٣:",
        "topic:rm:",
        "topic:daily:",
        "topic:instant:",
        "",
    ]
)


@pytest.fixture
async def fuzz_bot(settings: Any, db_path: Path) -> AsyncIterator[Any]:
    """The real Application on a database with a few stories, fed with process_update (no
    rate limiter: each example uses a chat of its own, and the test is about answers)."""
    store = await Store.open(db_path)
    await store.add_articles(
        [
            Article(
                f"Story {n} <b>&",
                tuple(f"Paragraph {p} of story {n}. " * 20 for p in range(12)),
                related=(RelatedLink("Elsewhere", 'https://x.example/"q'),),
                url=f"https://news.example/{n}",
            )
            for n in range(1, 4)
        ]
    )
    await store.close()
    app = build_application(settings, rate_limits=False)
    async with running(app, polling=False):
        yield app


def _clip_bytes(text: str, limit: int) -> str:
    data = text.encode("utf-8")[:limit]
    return data.decode("utf-8", errors="ignore")


def _update(kind: str, command: str, argument: str, prefix: str) -> tuple[dict[str, Any], Any]:
    """An update as Telegram would send it, and what identifies its answer."""
    chat_id = next(_chat_ids)
    user = {"id": chat_id, "is_bot": False, "first_name": "Fuzz"}
    chat = {"id": chat_id, "type": "private", "first_name": "Fuzz"}
    if kind == "button":
        query_id = str(next(_callback_ids))
        data = _clip_bytes(prefix + argument, 64) or "x"
        update = {
            "callback_query": {
                "id": query_id,
                "from": user,
                "chat_instance": str(chat_id),
                "data": data,
                "message": {
                    "message_id": 1,
                    "date": int(time.time()),
                    "chat": chat,
                    "from": {"id": 1, "is_bot": True, "first_name": "Bot"},
                    "text": "old",
                },
            }
        }
        return update, ("answerCallbackQuery", query_id)
    if kind == "command":
        text = f"/{command} {argument}"
    elif kind == "underscore":
        text = f"/{command}_{argument}"
    else:
        text = argument
    text = text[:4096].strip() or "hello"
    message: dict[str, Any] = {
        "message_id": 1,
        "date": int(time.time()),
        "chat": chat,
        "from": user,
        "text": text,
    }
    entities = [e for e in command_entities(text) if e["offset"] == 0]
    if entities:
        message["entities"] = entities
    return {"message": message}, ("sendMessage", chat_id)


def _answers(target: tuple[str, Any]) -> Any:
    method, key = target

    def matches(call: Call) -> bool:
        if call.method != method:
            return False
        if method == "answerCallbackQuery":
            return str(call.params.get("callback_query_id")) == key
        return str(call.params.get("chat_id")) == str(key)

    return matches


@settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
# The payloads that crashed handlers before (issue 10), always tried, then random ones.
@example(kind="button", command="read", argument="²", prefix="page:0:#")
@example(kind="button", command="read", argument="9" * 40, prefix="page:0:#")
@example(kind="button", command="read", argument="²", prefix="topic:rm:")
@example(kind="button", command="read", argument="1", prefix="full:")
@example(kind="underscore", command="read", argument="9" * 30, prefix="")
@example(kind="command", command="full", argument="1 " + "9" * 20, prefix="")
@given(
    kind=st.sampled_from(["command", "underscore", "text", "button"]),
    command=COMMAND,
    argument=ARGUMENT,
    prefix=PREFIX,
)
async def test_random_input_always_gets_a_valid_answer(
    fuzz_bot: Any,
    botapi: FakeBotAPI,
    caplog: pytest.LogCaptureFixture,
    kind: str,
    command: str,
    argument: str,
    prefix: str,
) -> None:
    caplog.clear()
    caplog.set_level(logging.WARNING)
    data, target = _update(kind, command, argument, prefix)
    data["update_id"] = next(_chat_ids)
    await fuzz_bot.process_update(Update.de_json(data, fuzz_bot.bot))
    # /full sends in the background: wait for the answer rather than for the handler.
    await botapi.wait_for_async(_answers(target), 1, timeout=10)
    refused = [c for c in botapi.calls() if c.method in _REPLIES and not c.ok]
    assert refused == [], [(c.method, c.response, c.params.get("text", "")[:80]) for c in refused]
    reached = [r for r in caplog.records if r.name.startswith(("handlers", "telegram"))]
    assert reached == [], [r.getMessage() for r in reached]
