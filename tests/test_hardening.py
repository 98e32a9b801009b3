"""Hostile inputs and faults (issue 10, part B), end to end through the real Application and
the fake Bot API server: no reader stalls another, buttons cannot be forged, replies cannot
be broken, nothing a reader sends goes unanswered."""

from __future__ import annotations

import asyncio
import itertools
import logging
import re
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from bot.app import build_application, running
from bot.config import Secret, Settings
from handlers.render import MAX_MESSAGE, esc, fit, story_list
from news.articles import Article, RelatedLink
from storage import Store
from storage.models import StoryHead
from tests.chat import Reader
from tests.conftest import ADMIN_ID
from tests.fakes.botapi import FakeBotAPI, retry_after, server_error
from tests.test_cli import newsbot

SORRY_WORDS = "something went wrong"


def long_story(title: str, paragraphs: int, words: int = 140) -> Article:
    """A story of `paragraphs` distinct paragraphs of about `words` words each."""
    body = tuple(
        f"Paragraph {n} of the long read. " + " ".join(f"w{n}x{i}" for i in range(words))
        for n in range(paragraphs)
    )
    return Article(title=title, body=body, source="Test Wire")


async def add(db_path: Path, *articles: Article) -> list[int]:
    """Store `articles` through a connection of their own; return their ids."""
    store = await Store.open(db_path)
    try:
        results = await store.add_articles(list(articles))
    finally:
        await store.close()
    ids = [r.story_id for r in results]
    assert all(i is not None for i in ids), results
    return [int(i) for i in ids if i is not None]


@pytest.fixture
def limited_api() -> Iterator[FakeBotAPI]:
    """A fake Bot API server that enforces Telegram's flood limits (429 with retry_after
    beyond one message a second per chat, 20 a minute per group, 30 a second overall)."""
    with FakeBotAPI(enforce_limits=True) as api:
        yield api


@pytest.fixture
async def limited_bot(limited_api: FakeBotAPI, db_path: Path) -> AsyncIterator[Any]:
    """The real Application, as production builds it, polling the limit-enforcing fake."""
    settings = Settings(
        token=Secret("123456:TEST-token"),
        api_base_url=limited_api.base_url,
        db_path=db_path,
        admin_ids=frozenset({ADMIN_ID}),
        poll_seconds=60,
    )
    app = build_application(settings)
    async with running(app):
        yield app


def answers(api: FakeBotAPI) -> list[str]:
    return [str(c.params.get("text", "")) for c in api.calls("answerCallbackQuery")]


def error_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    """What reached the error handler other than a usage error (those log nothing)."""
    return [r for r in caplog.records if r.name == "handlers.errors"]


# -- 1. one reader never stalls another ------------------------------------------------


async def test_a_long_read_and_ten_taps_never_keep_another_chat_waiting(
    limited_bot: Any, limited_api: FakeBotAPI, db_path: Path
) -> None:
    [story_id] = await add(db_path, long_story("The long read", 30))  # ~25,000 characters
    reading, other = 7001, 7002
    limited_api.message(f"/full {story_id}", reading)
    for _ in range(10):
        limited_api.callback_query(f"full:{story_id}", reading, message_id=1)
    await limited_api.wait_for_messages(1, chat_id=reading, timeout=10)
    asked = time.monotonic()
    limited_api.message("/help", other)
    [help_reply] = await limited_api.wait_for_messages(1, chat_id=other, timeout=10)
    assert time.monotonic() - asked < 2.5, "another chat's /help waited for the long read"
    assert "/latest" in help_reply.plain_text
    parts = await limited_api.wait_for_messages(5, chat_id=reading, timeout=20)
    total = int(re.match(r"\((\d+)/(\d+)\)", parts[0].plain_text).group(2))  # type: ignore[union-attr]
    assert total > 5
    assert [p.plain_text.split(")", 1)[0] for p in parts] == [f"({n}/{total}" for n in range(1, 6)]
    assert f"/full_{story_id}_2" in parts[-1].plain_text
    # The ten taps came while the text was on its way: it is not sent ten more times.
    await asyncio.sleep(1.5)
    assert len(limited_api.sent_messages(reading)) == 5
    assert len(limited_api.calls("answerCallbackQuery")) == 10
    assert limited_api.too_many_requests == 0


async def test_a_chats_replies_keep_its_limit_without_a_429(
    limited_bot: Any, limited_api: FakeBotAPI
) -> None:
    chat = 7101
    for _ in range(3):
        limited_api.message("/help", chat)
    replies = await limited_api.wait_for_messages(3, chat_id=chat, timeout=10)
    gaps = [b.time - a.time for a, b in itertools.pairwise(replies)]
    assert all(gap >= 0.99 for gap in gaps), gaps
    assert limited_api.too_many_requests == 0


async def test_retry_after_pauses_only_the_chat_it_came_from(
    limited_bot: Any, limited_api: FakeBotAPI
) -> None:
    paused, other = 7201, 7202
    limited_api.fail_next("sendMessage", chat_id=paused, error=retry_after(3))
    asked = time.monotonic()
    limited_api.message("/help", paused)
    limited_api.message("/help", other)
    await limited_api.wait_for_messages(1, chat_id=other, timeout=10)
    assert time.monotonic() - asked < 1.5, "one chat's RetryAfter paused another chat"
    await limited_api.wait_for_messages(1, chat_id=paused, timeout=10)
    assert time.monotonic() - asked >= 2.9  # the paused chat waited out retry_after


# -- 2. saved searches belong to their chat ----------------------------------------------


async def test_a_forged_page_button_cannot_show_another_chats_search(
    bot: Any, botapi: FakeBotAPI, db_path: Path
) -> None:
    await add(db_path, *(Article(f"Harbour news {i}", (f"Harbour item {i}.",)) for i in range(8)))
    owner, intruder = Reader(botapi, 7301), Reader(botapi, 7302)
    secret = "harbour " + " ".join(f"-secretword{i}" for i in range(6))
    [results] = await owner.say(f"/search {secret}")
    [button] = results.reply_markup["inline_keyboard"][0]  # type: ignore[index]
    token = button["callback_data"].split(":", 2)[2]
    assert re.fullmatch(r"#[A-Za-z0-9_-]{16,}", token), token
    [mine] = await intruder.say("/help")
    assert mine.message_id is not None
    for data in ("page:0:#1", "page:0:#2", f"page:0:{token}", f"page:1:{token}"):
        botapi.callback_query(data, intruder.chat_id, mine.message_id)
    await botapi.wait_for_async("answerCallbackQuery", 4)
    assert all("expired" in text for text in answers(botapi))
    assert not [m for m in botapi.sent_messages(intruder.chat_id) if "secretword" in m.text]
    # The owner still pages through it.
    [page_two] = await owner.press(results, "Next ›")
    assert "page 2" in page_two.plain_text


# -- 3. attribute injection ----------------------------------------------------------------


def test_esc_escapes_quotes_for_attributes() -> None:
    assert esc("a \"b\" 'c' <d> & e") == "a &quot;b&quot; &#x27;c&#x27; &lt;d&gt; &amp; e"


async def test_an_also_read_url_with_quotes_cannot_inject_attributes(
    bot: Any, botapi: FakeBotAPI, db_path: Path
) -> None:
    hostile = 'https://evil.example/a"onclick="alert(1)'
    [story_id] = await add(
        db_path,
        Article(
            "Quoted links",
            ("A story whose links are hostile.",),
            related=(
                RelatedLink("Elsewhere", hostile),
                RelatedLink("Scripted", "javascript:alert(1)"),
            ),
        ),
    )
    reader = Reader(botapi, 7401)
    [reply] = await reader.say(f"/related {story_id}")
    assert SORRY_WORDS not in reply.plain_text
    assert "Elsewhere" in reply.plain_text
    assert "Scripted" in reply.plain_text
    assert "onclick=" not in reply.text.replace("&quot;onclick=", "")
    links = [e for e in reply.params.get("entities") or [] if e.get("type") == "text_link"]
    assert all(not e["url"].startswith("javascript:") for e in links)


# -- 4. long titles do not hide the other results ----------------------------------------


def test_fit_keeps_whole_blocks_after_an_over_long_line() -> None:
    body = "<b>Header</b>\n\n" + "<b>" + "x" * 5000 + "</b>\n/read_1\n\n2. <b>Short</b>\n/read_2"
    text = fit(body, "footer")
    assert len(text) <= MAX_MESSAGE
    assert "Header" in text
    assert "2. <b>Short</b>\n/read_2" in text  # the block after the over-long line stays
    assert "x" * 100 not in text
    assert "footer" in text
    assert text.count("<b>") == text.count("</b>")


def test_a_list_bounds_each_title() -> None:
    heads = [StoryHead(1, "T" * 5000, None, None, None, None, None)]
    assert len(story_list(heads)) < 400


async def test_a_5000_character_title_hides_no_other_result(
    bot: Any, botapi: FakeBotAPI, db_path: Path
) -> None:
    ids = await add(
        db_path,
        *(Article(f"Harbour story {i}", (f"Harbour text {i}.",)) for i in range(4)),
        Article("Harbour " + "very long words " * 320, ("Harbour text long.",)),
    )
    reader = Reader(botapi, 7501)
    for command in ("/latest", "/search harbour"):
        text = await reader.ask(command)
        assert all(f"/read_{i}" in text for i in ids), (command, text[-300:])


# -- 5. forged buttons ---------------------------------------------------------------------


FORGED = (
    "page:0:#²",
    "page:0:#" + "9" * 40,
    "page:0:#2\n",
    "page:٣:harbour",
    "page:999:harbour",
    "summary:²",
    "full:" + "9" * 30,
    "related:12\n",
    "topic:rm:²",
    "topic:daily:" + "9" * 30,
    "topic:rm:1:2",
)


async def test_forged_buttons_get_a_short_expired_answer(
    bot: Any, botapi: FakeBotAPI, caplog: pytest.LogCaptureFixture
) -> None:
    reader = Reader(botapi, 7601)
    [mine] = await reader.say("/help")
    assert mine.message_id is not None
    for data in FORGED:
        botapi.callback_query(data, reader.chat_id, mine.message_id)
    # A topic button pressed on an inline message: no message, no chat, only its id.
    botapi.push_update(
        {
            "callback_query": {
                "id": "inline-1",
                "from": {"id": reader.user_id, "is_bot": False, "first_name": "T"},
                "inline_message_id": "AAAA-inline",
                "chat_instance": "1",
                "data": "topic:rm:1",
            }
        }
    )
    await botapi.wait_for_async("answerCallbackQuery", len(FORGED) + 1)
    texts = answers(botapi)
    assert all("expired" in t for t in texts), texts
    assert all(len(t) <= 200 for t in texts)
    assert error_records(caplog) == []
    assert len(botapi.sent_messages(reader.chat_id)) == 1  # no apology sent


# -- 6. nothing goes unanswered ------------------------------------------------------------


def _media_message(botapi: FakeBotAPI, chat_id: int, content: dict[str, Any]) -> None:
    botapi.push_update(
        {
            "message": {
                "message_id": 500 + len(botapi.calls()),
                "date": int(time.time()),
                "chat": {"id": chat_id, "type": "private", "first_name": "T"},
                "from": {"id": chat_id, "is_bot": False, "first_name": "T"},
                **content,
            }
        }
    )


MEDIA: tuple[dict[str, Any], ...] = (
    {
        "sticker": {
            "file_id": "s1",
            "file_unique_id": "s1u",
            "type": "regular",
            "width": 512,
            "height": 512,
            "is_animated": False,
            "is_video": False,
        }
    },
    {"location": {"latitude": 53.9, "longitude": 27.56}},
    {"voice": {"file_id": "v1", "file_unique_id": "v1u", "duration": 3}},
)


async def test_stickers_locations_and_voice_get_a_reply(bot: Any, botapi: FakeBotAPI) -> None:
    for n, content in enumerate(MEDIA):
        chat_id = 7701 + n
        _media_message(botapi, chat_id, content)
        [reply] = await botapi.wait_for_messages(1, chat_id=chat_id, timeout=10)
        assert "/help" in reply.plain_text
        assert "text" in reply.plain_text


async def test_a_photo_captioned_with_a_command_gets_a_reply(bot: Any, botapi: FakeBotAPI) -> None:
    photo = {"file_id": "p1", "file_unique_id": "p1u", "width": 10, "height": 10}
    _media_message(
        botapi,
        7711,
        {
            "photo": [photo],
            "caption": "/latest",
            "caption_entities": [{"type": "bot_command", "offset": 0, "length": 7}],
        },
    )
    [reply] = await botapi.wait_for_messages(1, chat_id=7711, timeout=10)
    assert "/latest" in reply.plain_text


async def test_a_get_chat_member_5xx_during_a_group_subscribe_gets_a_reply(
    bot: Any, botapi: FakeBotAPI
) -> None:
    group = Reader(botapi, -100_7801, user_id=7802, chat_type="supergroup")
    botapi.fail_next("getChatMember", error=server_error())
    reply = await group.ask("/subscribe barrier")
    assert "try again" in reply


# -- 7. one digit rule, real zones, honest counts --------------------------------------


async def test_story_numbers_are_ascii_digits_everywhere(
    bot: Any, botapi: FakeBotAPI, db_path: Path
) -> None:
    await add(db_path, *(Article(f"Story number {i}", (f"Text {i}.",)) for i in range(1, 4)))
    reader = Reader(botapi, 7901)
    assert "not a story number" in await reader.ask("/read_99999999999999999999")
    assert "not a story number" in await reader.ask("/read_٣")
    opened = await reader.ask("/start read_٣")
    assert not opened.startswith("Story number 3")
    assert "/latest" in opened
    assert (await reader.ask("/start read_3")).startswith("Story number 3")


@pytest.mark.parametrize("zone", ["localtime", "Factory", "posixrules", "EST5EDT"])
async def test_timezone_refuses_zones_that_are_not_places(
    bot: Any, botapi: FakeBotAPI, zone: str
) -> None:
    reply = await Reader(botapi, 8001).ask(f"/timezone {zone}")
    assert "I don't know the time zone" in reply
    assert "Europe/Minsk" in reply


async def test_timezone_still_takes_region_zones(bot: Any, botapi: FakeBotAPI) -> None:
    reply = await Reader(botapi, 8002).ask("/timezone america/new_york")
    assert "Time zone set to America/New_York" in reply


async def test_stats_count_interrupted_alerts_as_unknown(
    bot: Any, botapi: FakeBotAPI, db_path: Path, tmp_path: Path
) -> None:
    from datetime import UTC, datetime, timedelta

    from news.query import parse_query

    store = await Store.open(db_path)
    try:
        query = parse_query("barrier")
        await store.subscribe(8101, query.canonical, query.display)
        await store.add_articles([Article("Barrier news", ("The barrier opens.",))])
        now = datetime.now(UTC)
        assert len(await store.claim_alerts("dead-process", now, 10)) == 1
        assert await store.fail_stale_sending(now + timedelta(minutes=11)) == 1
    finally:
        await store.close()
    stats = await Reader(botapi, ADMIN_ID).ask("/stats")
    assert "alerts unknown (interrupted while sending" in stats
    assert "alerts failed: 0" in stats
    printed = await asyncio.to_thread(newsbot, tmp_path, "stats", NEWSBOT_DB=str(db_path))
    assert "alerts_failed: 0\n" in printed.stdout
    assert "alerts_unknown: 1 (interrupted while sending" in printed.stdout
