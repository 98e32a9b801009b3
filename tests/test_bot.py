"""End to end: the real Application polling the fake Bot API server, a real SQLite file."""

from __future__ import annotations

import re
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

import handlers
from handlers.stories import FULL_MESSAGES
from news.articles import Article, RelatedLink
from storage import Store
from tests.chat import Reader
from tests.fakes.botapi import FakeBotAPI

BASE = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


def story(n: int, title: str, *body: str, **fields: Any) -> Article:
    fields.setdefault("published", BASE + timedelta(hours=n))
    fields.setdefault("source", "Test Wire")
    return Article(title=title, body=body or (f"Story {n} body text.",), **fields)


ARTICLES = [
    story(
        1,
        "Council approves tidal barrier",
        "The council voted to build a tidal barrier across the estuary after floods.",
        "Construction of the barrier starts next spring and takes three years.",
        "Critics say the barrier cost is too high for a small town.",
        highlights=("Councillors voted 31 to 4 for the barrier.",),
        url="https://news.example.com/barrier",
        related=(RelatedLink("Orchards blossom early"), RelatedLink("Unknown story title")),
        category="local",
    ),
    story(
        2,
        "Orchards blossom early",
        "A warm spring brought the orchards into blossom three weeks early.",
        "Growers fear a late frost could damage the crop. Climate change is blamed.",
        category="climate",
    ),
    story(
        3,
        "Opinion: the barrier buys time",
        "The tidal barrier buys time, but climate change will keep raising the sea.",
        category="opinion",
    ),
    story(
        4, "Rovers win the cup", "Rovers won the county cup with a late header.", category="sport"
    ),
    story(
        5, "Night buses return", "Night buses return to town after five years.", category="local"
    ),
    story(
        6,
        "Library repair cafe opens",
        "The library opens a repair cafe for phones.",
        category="local",
    ),
    story(7, "Tom & Jerry <b>bold</b> claims", "Text with <tags> & ampersands.", category="odd"),
]


@pytest.fixture
async def seeded(db_path: Path) -> dict[str, int]:
    """The test stories, stored through a second connection, by title."""
    store = await Store.open(db_path)
    results = await store.add_articles(ARTICLES)
    await store.close()
    return {r.title: r.story_id for r in results}


@pytest.fixture
def reader(botapi: FakeBotAPI) -> Reader:
    return Reader(botapi, 5001)


def count_rows(db_path: Path) -> int:
    with sqlite3.connect(db_path) as db:
        return int(db.execute("SELECT count(*) FROM stories").fetchone()[0])


def buttons(message: Any) -> list[str]:
    return [b["text"] for row in message.reply_markup["inline_keyboard"] for b in row]


async def test_menu_is_published_from_the_command_table(bot: Any, botapi: FakeBotAPI) -> None:
    [call] = botapi.calls("setMyCommands")
    published = [c["command"] for c in call.params["commands"]]
    assert published == [c.name for c in handlers.COMMANDS if c.menu]
    assert "read" in published
    assert "start" not in published


async def test_start_and_help_list_the_commands(bot: Any, reader: Reader) -> None:
    text = await reader.ask("/start")
    for command in ("/latest", "/search QUERY", "/read ID", "/summary ID", "/related ID"):
        assert command in text
    assert await reader.ask("/help") == text


async def test_start_deep_link_opens_the_story(
    bot: Any, reader: Reader, seeded: dict[str, int]
) -> None:
    story_id = seeded["Council approves tidal barrier"]
    [card] = await reader.say(f"/start read_{story_id}")
    assert card.plain_text.startswith("Council approves tidal barrier")
    assert "Councillors voted 31 to 4" in card.plain_text


async def test_latest_lists_newest_first_with_read_links(
    bot: Any, reader: Reader, seeded: dict[str, int]
) -> None:
    text = await reader.ask("/latest")
    titles = [t for t in (a.title for a in reversed(ARTICLES))][:5]
    positions = [text.index(t.split("<")[0]) for t in titles]
    assert positions == sorted(positions)
    assert f"/read_{seeded['Night buses return']}" in text
    assert "Council approves" not in text  # only 5 by default
    two = await reader.ask("/latest 2")
    assert two.count("/read_") == 2


async def test_latest_bad_counts_get_usage(
    bot: Any, reader: Reader, seeded: dict[str, int]
) -> None:
    for bad in ("/latest abc", "/latest 0", "/latest -3", "/latest 99999999999"):
        assert "/latest 10" in await reader.ask(bad), bad
    many = await reader.ask("/latest 100")
    assert many.count("/read_") == len(ARTICLES)
    assert "at most 20" in many


async def test_read_card_has_buttons_that_answer(
    bot: Any, botapi: FakeBotAPI, reader: Reader, seeded: dict[str, int]
) -> None:
    story_id = seeded["Council approves tidal barrier"]
    [card] = await reader.say(f"/read {story_id}")
    assert "Test Wire" in card.plain_text
    assert "1 Mar 2025, 13:00 UTC" in card.plain_text
    assert buttons(card) == ["Summary", "Full text", "Related", "Original"]
    original = card.reply_markup["inline_keyboard"][1][0]  # type: ignore[index]
    assert original["url"] == "https://news.example.com/barrier"

    [summary] = await reader.press(card, "Summary")
    assert "Summary" in summary.plain_text
    assert "barrier" in summary.plain_text
    [full] = await reader.press(card, "Full text")
    assert "Critics say the barrier cost" in full.plain_text
    [related] = await reader.press(card, "Related")
    assert f"/read_{seeded['Orchards blossom early']}" in related.plain_text
    answered = botapi.calls("answerCallbackQuery")
    assert len(answered) == 3
    assert all(c.ok for c in answered)


async def test_command_forms_underscore_and_group(
    bot: Any, botapi: FakeBotAPI, seeded: dict[str, int]
) -> None:
    story_id = seeded["Rovers win the cup"]
    private = Reader(botapi, 5002)
    assert (await private.ask(f"/read_{story_id}")).startswith("Rovers win the cup")
    assert (await private.ask(f"/summary_{story_id}")).startswith("Rovers win the cup")
    group = Reader(botapi, -100777, user_id=5003, chat_type="supergroup")
    assert (await group.ask(f"/read@NewsTestBot {story_id}")).startswith("Rovers win the cup")
    assert (await group.ask(f"/full_{story_id}@NewsTestBot")).startswith("Rovers win the cup")
    # Commands for another bot, and plain chatter in a group, get no answer.
    before = len(botapi.sent_messages(-100777))
    botapi.message("/read@OtherBot 1", -100777, user_id=5003, chat_type="supergroup")
    botapi.message("/frobnicate@OtherBot", -100777, user_id=5003, chat_type="supergroup")
    botapi.message("just chatting", -100777, user_id=5003, chat_type="supergroup")
    assert (await group.ask("/latest 1")).count("/read_") == 1
    assert len(botapi.sent_messages(-100777)) == before + 1


async def test_highlights_publishers_else_generated_and_stored(
    bot: Any, reader: Reader, seeded: dict[str, int], db_path: Path
) -> None:
    with_own = await reader.ask(f"/highlights {seeded['Council approves tidal barrier']}")
    assert "• Councillors voted 31 to 4 for the barrier." in with_own
    orchard = seeded["Orchards blossom early"]
    generated = await reader.ask(f"/highlights {orchard}")
    assert "Key sentences" in generated
    assert "•" in generated
    with sqlite3.connect(db_path) as db:
        stored = db.execute(
            "SELECT generated_highlights FROM stories WHERE id = ?", (orchard,)
        ).fetchone()[0]
    assert stored
    assert stored.split("\n")[0] in generated


async def test_summary_is_computed_once_and_stored(
    bot: Any, reader: Reader, seeded: dict[str, int], db_path: Path
) -> None:
    story_id = seeded["Council approves tidal barrier"]
    first = await reader.ask(f"/summary {story_id}")
    with sqlite3.connect(db_path) as db:
        db.execute(
            "UPDATE stories SET summary = ? WHERE id = ?", ('["Stored sentence."]', story_id)
        )
    second = await reader.ask(f"/summary {story_id}")
    assert "Stored sentence." in second
    assert "Stored sentence." not in first


async def test_full_text_splits_long_stories_into_numbered_messages(
    bot: Any, reader: Reader, db_path: Path
) -> None:
    paragraphs = tuple(f"Paragraph {i}: " + "word " * 150 for i in range(40))
    store = await Store.open(db_path)
    [result] = await store.add_articles([story(9, "A very long story", *paragraphs)])
    await store.close()
    story_id = result.story_id
    first_part = await reader.say(f"/full {story_id}", replies=FULL_MESSAGES)
    marker = re.match(r"\(1/(\d+)\)", first_part[0].plain_text)
    assert marker is not None, first_part[0].plain_text[:40]
    total = int(marker.group(1))
    assert FULL_MESSAGES < total <= 2 * FULL_MESSAGES  # 40 paragraphs of ~760 characters
    # At most FULL_MESSAGES at a time; the last one names the command for the rest.
    assert f"Next: /full_{story_id}_2" in first_part[-1].plain_text
    second_part = await reader.say(f"/full_{story_id}_2", replies=total - FULL_MESSAGES)
    assert "Next:" not in second_part[-1].plain_text
    sent = first_part + second_part
    for n, message in enumerate(sent, 1):
        assert len(message.text) <= 4096
        assert message.plain_text.startswith(f"({n}/{total})")
    joined = "\n".join(m.plain_text for m in sent)
    for i in range(40):
        assert f"Paragraph {i}:" in joined
    # Paragraphs are never cut: each appears whole in one message.
    assert all(any(p.strip() in m.plain_text for m in sent) for p in paragraphs)
    assert "has 2 parts" in await reader.ask(f"/full {story_id} 3")
    assert f"/full {story_id} 2" in await reader.ask(f"/full {story_id} ²")


async def test_related_resolves_article_links_and_finds_similar(
    bot: Any, reader: Reader, seeded: dict[str, int]
) -> None:
    text = await reader.ask(f"/related {seeded['Council approves tidal barrier']}")
    assert f"Orchards blossom early · /read_{seeded['Orchards blossom early']}" in text
    assert "Unknown story title" in text
    similar = text.split("Similar stories", 1)[1]
    assert f"/read_{seeded['Opinion: the barrier buys time']}" in similar
    assert f"/read_{seeded['Council approves tidal barrier']}" not in text


async def test_search_ranks_filters_and_pages(
    bot: Any, reader: Reader, seeded: dict[str, int]
) -> None:
    text = await reader.ask("/search barrier")
    assert (
        text.index("Council approves tidal barrier") < text.index("Library")
        if "Library" in text
        else True
    )
    assert f"/read_{seeded['Opinion: the barrier buys time']}" in text
    excluded = await reader.ask("/search barrier -opinion")
    assert "Opinion: the barrier" not in excluded
    assert "Council approves" in excluded
    phrase = await reader.ask('/search "climate change" category:climate')
    assert "Orchards blossom early" in phrase
    assert "Opinion" not in phrase
    either = await reader.ask("/search rovers OR buses")
    assert "Rovers win the cup" in either
    assert "Night buses return" in either
    filtered = await reader.ask("/search category:local -buses")
    assert "Council approves tidal barrier" in filtered
    assert "Library repair cafe opens" in filtered
    assert "Night buses" not in filtered
    assert "Rovers" not in filtered
    plain = await reader.ask("repair cafe")
    assert "Library repair cafe opens" in plain


async def test_search_paging_buttons_edit_the_results(
    bot: Any, botapi: FakeBotAPI, reader: Reader, db_path: Path
) -> None:
    store = await Store.open(db_path)
    await store.add_articles(
        [story(i, f"Harbour news {i}", f"Harbour item {i}.") for i in range(12)]
    )
    await store.close()
    [first] = await reader.say("/search harbour")
    assert first.plain_text.count("/read_") == 5
    assert buttons(first) == ["Next ›"]
    [second] = await reader.press(first, "Next ›")
    assert second.method == "editMessageText"
    assert second.message_id == first.message_id
    assert "6. " in second.plain_text
    assert "page 2" in second.plain_text
    assert buttons(second) == ["‹ Previous", "Next ›"]
    [third] = await reader.press(second, "Next ›")
    assert third.plain_text.count("/read_") == 2
    assert buttons(third) == ["‹ Previous"]
    # A query too long for a button's 64 bytes is saved and named by its id.
    long_query = "harbour " + " ".join(f"-nothing{i}" for i in range(8))
    [first_long] = await reader.say(f"/search {long_query}")
    [next_button] = first_long.reply_markup["inline_keyboard"][0]  # type: ignore[index]
    assert next_button["callback_data"].startswith("page:1:#")
    [second_long] = await reader.press(first_long, "Next ›")
    assert "6. " in second_long.plain_text


async def test_everything_is_escaped(bot: Any, reader: Reader, seeded: dict[str, int]) -> None:
    story_id = seeded["Tom & Jerry <b>bold</b> claims"]
    [card] = await reader.say(f"/read {story_id}")
    # The fake server parses HTML as Telegram does: literal tags survive as text.
    assert card.plain_text.startswith("Tom & Jerry <b>bold</b> claims")
    full = await reader.ask(f"/full {story_id}")
    assert "Text with <tags> & ampersands." in full
    query = await reader.ask("/search <tom> & jerry")
    assert "Tom & Jerry" in query


BAD_INPUTS = [
    ("/read", "needs a story number"),
    ("/read abc", "not a story number"),
    ("/read 12abc", "not a story number"),
    ("/read 99999", "There is no story 99999"),
    ("/summary -1", "not a story number"),
    ("/full 0", "not a story number"),
    ("/related ١٢", "not a story number"),  # Arabic-Indic digits
    ("/highlights", "needs a story number"),
    ("/search", "needs something to look for"),
    ("/search -opinion", "/search"),
    ("/frobnicate", "I don't know the command /frobnicate"),
    ("/search " + "x" * 5000, "/search"),
    ('/search NEAR(belarus protests) OR * ^title: "', "Results for"),
    ("/search '; DROP TABLE stories; --", "Results for"),
    ("/search title:barrier AND NOT (x", "Results for"),
    ("/search \x00\x07 \u202e\u200b", "/search"),
]


@pytest.mark.parametrize(("text", "expected"), BAD_INPUTS)
async def test_bad_input_gets_a_clear_reply_and_data_stays(
    bot: Any, reader: Reader, seeded: dict[str, int], db_path: Path, text: str, expected: str
) -> None:
    before = count_rows(db_path)
    reply = await reader.ask(text)
    assert expected in reply
    assert len(reply) <= 4096
    assert count_rows(db_path) == before
    with sqlite3.connect(db_path) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


async def test_stale_buttons_get_an_answer(
    bot: Any, botapi: FakeBotAPI, reader: Reader, seeded: dict[str, int]
) -> None:
    [card] = await reader.say(f"/read {seeded['Night buses return']}")
    assert card.message_id is not None
    for data in ("summary:999999", "page:1:#999", "nonsense"):
        botapi.callback_query(data, reader.chat_id, card.message_id, reader.user_id)
    answers = await botapi.wait_for_async("answerCallbackQuery", 3)
    texts = [a.params.get("text", "") for a in answers]
    assert any("no longer available" in t for t in texts)
    assert sum("expired" in t for t in texts) == 2


async def test_stats_is_for_admins_only(
    bot: Any, botapi: FakeBotAPI, seeded: dict[str, int]
) -> None:
    from tests.conftest import ADMIN_ID

    refused = await Reader(botapi, 6001).ask("/stats")
    assert "operators only" in refused
    counts = await Reader(botapi, ADMIN_ID).ask("/stats")
    assert f"stories: {len(ARTICLES)}" in counts
