"""Tests of the fake Bot API server itself, driven by a bare python-telegram-bot client."""

from __future__ import annotations

import asyncio
import datetime as dtm
import threading
import time
from collections.abc import AsyncIterator

import httpx
import pytest
from telegram import (
    Bot,
    BotCommand,
    ChatMemberAdministrator,
    ChatMemberOwner,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Update,
)
from telegram.error import (
    BadRequest,
    ChatMigrated,
    Conflict,
    EndPointNotFound,
    Forbidden,
    InvalidToken,
    NetworkError,
    RetryAfter,
)
from telegram.ext import (
    ApplicationBuilder,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
)

from tests.fakes.botapi import (
    DEFAULT_TOKEN,
    FakeBotAPI,
    bad_request,
    chat_migrated,
    command_entities,
    forbidden,
    parse_html,
    retry_after,
    server_error,
)

KEYBOARD = InlineKeyboardMarkup([[InlineKeyboardButton("More", callback_data="more:1")]])


@pytest.fixture
async def api() -> AsyncIterator[FakeBotAPI]:
    async with FakeBotAPI() as fake:
        yield fake


@pytest.fixture
async def bot(api: FakeBotAPI) -> AsyncIterator[Bot]:
    async with Bot(DEFAULT_TOKEN, base_url=api.base_url) as client:
        yield client


@pytest.fixture
def timedelta_periods(monkeypatch: pytest.MonkeyPatch) -> None:
    # PTB 22.8 warns when it builds RetryAfter unless PTB_TIMEDELTA is set; warnings are errors.
    monkeypatch.setenv("PTB_TIMEDELTA", "true")


# ------------------------------------------------------------------ basic methods


async def test_bot_initialises_sends_and_edits(api: FakeBotAPI, bot: Bot) -> None:
    assert bot.username == "NewsTestBot"
    assert api.calls("getMe")[0].result["is_bot"] is True

    sent = await bot.send_message(42, "<b>Hello</b> &amp; welcome", parse_mode="HTML")
    assert sent.text == "Hello & welcome"
    assert [(e.type, e.offset, e.length) for e in sent.entities] == [("bold", 0, 5)]
    assert abs(sent.date - dtm.datetime.now(dtm.UTC)) < dtm.timedelta(seconds=60)
    [call] = api.calls("sendMessage")
    assert call.params == {
        "chat_id": 42,
        "text": "<b>Hello</b> &amp; welcome",
        "parse_mode": "HTML",
    }
    assert call.result["date"] == pytest.approx(time.time(), abs=60)  # seconds, not ms

    edited = await bot.edit_message_text(
        "Updated", chat_id=42, message_id=sent.message_id, reply_markup=KEYBOARD
    )
    assert not isinstance(edited, bool)
    assert edited.text == "Updated"
    assert edited.reply_markup == KEYBOARD
    messages = api.sent_messages(chat_id=42)
    assert [(m.method, m.text, m.message_id) for m in messages] == [
        ("sendMessage", "<b>Hello</b> &amp; welcome", sent.message_id),
        ("editMessageText", "Updated", sent.message_id),
    ]
    assert messages[1].reply_markup == {
        "inline_keyboard": [[{"text": "More", "callback_data": "more:1"}]]
    }
    assert api.sent_messages(chat_id=7) == []


async def test_message_ids_increase_and_keyboards_echo(api: FakeBotAPI, bot: Bot) -> None:
    first = await bot.send_message(1, "one", reply_markup=KEYBOARD)
    second = await bot.send_message(-1005, "two")
    assert second.message_id > first.message_id
    assert first.reply_markup == KEYBOARD
    assert second.chat.type == "supergroup"

    refreshed = await bot.edit_message_reply_markup(
        chat_id=1, message_id=first.message_id, reply_markup=None
    )
    assert not isinstance(refreshed, bool)
    assert refreshed.reply_markup is None


async def test_edit_rules_match_telegram(bot: Bot) -> None:
    sent = await bot.send_message(3, "same", reply_markup=KEYBOARD)
    with pytest.raises(BadRequest, match=r"(?i)message is not modified"):
        await bot.edit_message_text(
            "same", chat_id=3, message_id=sent.message_id, reply_markup=KEYBOARD
        )
    # Editing the text without reply_markup drops the inline keyboard.
    edited = await bot.edit_message_text("same", chat_id=3, message_id=sent.message_id)
    assert not isinstance(edited, bool)
    assert edited.reply_markup is None


async def test_text_validation(bot: Bot) -> None:
    with pytest.raises(BadRequest, match=r'(?i)Unsupported start tag "" at byte offset 2'):
        await bot.send_message(1, "a < b", parse_mode="HTML")
    with pytest.raises(BadRequest, match=r"(?i)message is too long"):
        await bot.send_message(1, "x" * 4097)
    with pytest.raises(BadRequest, match=r"(?i)BUTTON_DATA_INVALID"):
        await bot.send_message(
            1,
            "hi",
            reply_markup=InlineKeyboardMarkup(
                [[InlineKeyboardButton("b", callback_data="x" * 65)]]
            ),
        )
    assert (await bot.send_message(1, "x" * 4096)).text == "x" * 4096


@pytest.mark.parametrize(
    ("markup", "text", "entities"),
    [
        ("plain", "plain", []),
        ("<i>a</i><b>bc</b>", "abc", [("italic", 0, 1), ("bold", 1, 2)]),
        ("😀 <u>x</u>", "😀 x", [("underline", 3, 1)]),  # offsets in UTF-16 units
        ('<a href="https://e.org/?a=1&amp;b=2">link</a>', "link", [("text_link", 0, 4)]),
        ('<pre><code class="language-py">x = 1</code></pre>', "x = 1", [("pre", 0, 5)]),
        ('<span class="tg-spoiler">s</span> &lt;tag&gt; &#65;', "s <tag> A", [("spoiler", 0, 1)]),
        ("  <b> padded </b>  ", "padded", [("bold", 0, 6)]),
        ("AT&T", "AT&T", []),
    ],
)
def test_parse_html(markup: str, text: str, entities: list[tuple[str, int, int]]) -> None:
    plain, found = parse_html(markup)
    assert plain == text
    assert [(e["type"], e["offset"], e["length"]) for e in found] == entities


@pytest.mark.parametrize(
    ("markup", "message"),
    [
        ("<br>", 'Unsupported start tag "br" at byte offset 0'),
        ("<b>x</i>", 'Unmatched end tag at byte offset 4, expected "</b>", found "</i>"'),
        ("<b>x", 'Can\'t find end tag corresponding to start tag "b"'),
        ("x</b>", "Unexpected end tag at byte offset 1"),
        ("<span>x</span>", 'Tag "span" must have class "tg-spoiler"'),
        # A quote that ends an attribute early: injected attributes, unbalanced quotes.
        ('<a href="https://x.example/"onclick="y">t</a>', 'Unsupported attribute "onclick"'),
        ('<a href="https://x.example/"x">t</a>', 'Unsupported attribute "x"'),
        ("<b class=x>t</b>", 'Unsupported attribute "class" in the tag "b"'),
        ("<script>t</script>", 'Unsupported start tag "script"'),
    ],
)
def test_parse_html_rejects_bad_markup(markup: str, message: str) -> None:
    with pytest.raises(Exception, match="can't parse entities") as caught:
        parse_html(markup)
    assert message in str(caught.value)


def test_parse_html_unescapes_quotes_inside_attributes() -> None:
    plain, [entity] = parse_html('<a href="https://x.example/?q=&quot;a&#x27;">t</a>')
    assert plain == "t"
    assert entity["url"] == "https://x.example/?q=\"a'"


async def test_other_methods(api: FakeBotAPI, bot: Bot) -> None:
    commands = [BotCommand("start", "Begin"), BotCommand("search", "Find stories")]
    assert await bot.set_my_commands(commands)
    assert list(await bot.get_my_commands()) == commands
    with pytest.raises(BadRequest, match=r"(?i)BOT_COMMAND_INVALID"):
        await bot.set_my_commands([BotCommand("Start", "uppercase is refused")])
    assert await bot.delete_my_commands()
    assert list(await bot.get_my_commands()) == []

    assert await bot.send_chat_action(5, "typing")
    sent = await bot.send_message(5, "bye")
    assert await bot.delete_message(5, sent.message_id)
    chat = await bot.get_chat(5)
    assert (chat.id, chat.type) == (5, "private")
    assert await bot.close()
    assert await bot.log_out()
    methods = [c.method for c in api.calls()]
    assert methods[-2:] == ["close", "logOut"]
    assert "deleteMessage" in methods


async def test_chat_members_and_admins(api: FakeBotAPI, bot: Bot) -> None:
    api.set_admins(-100200, [11, 12], creator=10)
    admins = await bot.get_chat_administrators(-100200)
    assert [(type(a), a.user.id) for a in admins] == [
        (ChatMemberOwner, 10),
        (ChatMemberAdministrator, 11),
        (ChatMemberAdministrator, 12),
    ]
    assert (await bot.get_chat_member(-100200, 12)).status == "administrator"
    assert (await bot.get_chat_member(-100200, 99)).status == "member"
    with pytest.raises(BadRequest, match=r"(?i)no administrators in the private chat"):
        await bot.get_chat_administrators(7)


async def test_unknown_method_and_token(api: FakeBotAPI, bot: Bot) -> None:
    with pytest.raises(EndPointNotFound):
        await bot.do_api_request("frobnicate")
    async with httpx.AsyncClient() as client:
        response = await client.post(f"{api.base_url}{DEFAULT_TOKEN}/frobnicate")
    assert response.status_code == 404
    assert response.json() == {"ok": False, "error_code": 404, "description": "Not Found"}

    async with FakeBotAPI(token="1:right") as strict:
        with pytest.raises(InvalidToken):
            async with Bot("1:wrong", base_url=strict.base_url):
                pass


def test_json_and_multipart_bodies_and_sync_wait() -> None:
    with FakeBotAPI() as api, httpx.Client() as client:
        url = f"{api.base_url}{DEFAULT_TOKEN}"
        answer = client.post(
            f"{url}/sendMessage",
            json={"chat_id": 9, "text": "123", "reply_markup": '{"inline_keyboard": []}'},
        ).json()
        assert answer["ok"] is True
        assert answer["result"]["text"] == "123"  # text stays a string
        multipart = client.post(
            f"{url}/sendMessage",
            data={"chat_id": "-9", "text": "true"},
            files={"doc": ("a.txt", b"abc", "text/plain")},
        ).json()
        assert multipart["result"]["chat"]["id"] == -9
        assert multipart["result"]["text"] == "true"
        broken = client.post(f"{url}/deleteMessage", data={"chat_id": "9", "message_id": "x"})
        assert broken.status_code == 400
        assert broken.json()["description"].startswith("Bad Request: invalid parameters")
        [json_call, multipart_call] = api.calls("sendMessage")
        assert json_call.params["reply_markup"] == {"inline_keyboard": []}
        assert multipart_call.params["doc"].data == b"abc"

        threading.Timer(
            0.1,
            client.post,
            (f"{url}/sendChatAction",),
            {"data": {"chat_id": "9", "action": "typing"}},
        ).start()
        [call] = api.wait_for("sendChatAction", timeout=5)
        assert call.params == {"chat_id": 9, "action": "typing"}
        with pytest.raises(TimeoutError, match="waited for 1 x getChat"):
            api.wait_for("getChat", timeout=0.05)


async def test_latency_delays_answers() -> None:
    async with FakeBotAPI(latency=0.05) as api, Bot(DEFAULT_TOKEN, base_url=api.base_url) as bot:
        started = time.perf_counter()
        await bot.send_message(1, "slow")
        assert time.perf_counter() - started >= 0.05


# ------------------------------------------------------------------ updates


@pytest.mark.parametrize(
    ("text", "command"),
    [
        ("/start", "/start"),
        ("/cmd@NewsTestBot some args", "/cmd@NewsTestBot"),
        ("/cmd_12", "/cmd_12"),
        ("/cmd_12@NewsTestBot", "/cmd_12@NewsTestBot"),
    ],
)
async def test_command_entities_parse(api: FakeBotAPI, bot: Bot, text: str, command: str) -> None:
    update_id = api.message(text, chat_id=-100300, user_id=8, chat_type="supergroup")
    [update] = await bot.get_updates(timeout=0)
    assert update.update_id == update_id
    assert update.message is not None
    assert update.message.chat.type == "supergroup"
    assert list(update.message.parse_entities(["bot_command"]).values()) == [command]


def test_command_entities_only_for_commands() -> None:
    assert command_entities("no command here / at all") == []
    assert command_entities("see /help") == [{"type": "bot_command", "offset": 4, "length": 5}]


async def test_get_updates_blocks_until_an_update(api: FakeBotAPI, bot: Bot) -> None:
    first = api.message("hello", chat_id=1)
    [update] = await bot.get_updates(timeout=0)
    assert update.update_id == first
    # offset confirms it; the next long poll waits for a pushed update.
    timer = threading.Timer(0.2, api.message, ("again",), {"chat_id": 1})
    timer.start()
    started = time.perf_counter()
    updates = await bot.get_updates(offset=first + 1, timeout=10)
    assert time.perf_counter() - started < 5
    assert [u.update_id for u in updates] == [first + 1]
    assert updates[0].message is not None
    assert updates[0].message.text == "again"
    assert api.pending_updates()[0]["update_id"] == first + 1

    started = time.perf_counter()
    assert await bot.get_updates(offset=first + 2, timeout=1) == ()
    assert time.perf_counter() - started >= 0.9
    assert api.pending_updates() == []


async def test_newer_poll_terminates_older_and_webhook_blocks_polling(
    api: FakeBotAPI, bot: Bot
) -> None:
    older = asyncio.create_task(bot.get_updates(timeout=10))
    await api.wait_until_polling()
    async with Bot(DEFAULT_TOKEN, base_url=api.base_url) as other:
        assert await other.get_updates(timeout=0) == ()
    with pytest.raises(Conflict, match=r"(?i)terminated by other getUpdates"):
        await older

    assert await bot.set_webhook("https://example.invalid/hook")
    with pytest.raises(Conflict, match=r"(?i)webhook is active"):
        await bot.get_updates(timeout=0)
    assert await bot.delete_webhook()


async def test_builders_produce_valid_updates(api: FakeBotAPI, bot: Bot) -> None:
    sent = await bot.send_message(4, "pick", reply_markup=KEYBOARD)
    api.callback_query("more:1", chat_id=4, message_id=sent.message_id, user_id=4)
    api.my_chat_member(-100400, user_id=10, old_status="left", new_status="administrator")
    updates = [Update.de_json(u, bot) for u in api.pending_updates()]
    query = updates[0].callback_query
    assert query is not None
    assert query.data == "more:1"
    assert query.message is not None
    assert query.message.message_id == sent.message_id
    member = updates[1].my_chat_member
    assert member is not None
    assert (member.old_chat_member.status, member.new_chat_member.status) == (
        "left",
        "administrator",
    )
    assert member.new_chat_member.user.id == bot.id
    assert (await bot.get_chat_member(-100400, bot.id)).status == "administrator"


async def test_application_polls_and_replies(api: FakeBotAPI) -> None:
    async def start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.effective_message is not None
        await update.effective_message.reply_text("Welcome!", reply_markup=KEYBOARD)

    async def numbered(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.effective_message is not None
        await update.effective_message.reply_text("story 12")

    async def button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        query = update.callback_query
        assert query is not None
        await query.answer()
        await query.edit_message_text(f"chose {query.data}")

    app = ApplicationBuilder().token(DEFAULT_TOKEN).base_url(api.base_url).build()
    app.add_handler(CommandHandler("start", start))
    app.add_handler(CommandHandler("cmd_12", numbered))
    app.add_handler(CallbackQueryHandler(button))
    async with app:
        await app.start()
        assert app.updater is not None
        await app.updater.start_polling(poll_interval=0.0, timeout=5)
        api.message("/start", chat_id=21)
        api.message("/cmd_12@NewsTestBot", chat_id=-100500, user_id=21)
        [welcome] = await api.wait_for_messages(1, chat_id=21)
        [story] = await api.wait_for_messages(1, chat_id=-100500)
        api.callback_query("more:1", chat_id=21, message_id=welcome.message_id or 0, user_id=21)
        replies = await api.wait_for_messages(2, chat_id=21)
        await api.wait_for_async("answerCallbackQuery")
        started = time.perf_counter()
        await app.updater.stop()
        await app.stop()
        assert time.perf_counter() - started < 3
    assert welcome.text == "Welcome!"
    assert welcome.reply_markup is not None
    assert story.text == "story 12"
    assert (replies[1].method, replies[1].text) == ("editMessageText", "chose more:1")
    ids = [u["update_id"] for c in api.calls("getUpdates") for u in c.result or []]
    assert ids == sorted(ids)
    assert api.pending_updates() == []


async def test_stop_is_fast_with_a_pending_long_poll() -> None:
    api = FakeBotAPI().start()
    async with Bot(DEFAULT_TOKEN, base_url=api.base_url) as bot:
        poll = asyncio.create_task(bot.get_updates(timeout=30))
        await api.wait_until_polling()
        started = time.perf_counter()
        api.stop()
        assert time.perf_counter() - started < 2
        with pytest.raises(NetworkError):
            await poll


# ------------------------------------------------------------------ failures and limits


@pytest.mark.usefixtures("timedelta_periods")
async def test_injected_failures_surface_as_ptb_exceptions(api: FakeBotAPI, bot: Bot) -> None:
    api.fail_next(error=retry_after(3))
    with pytest.raises(RetryAfter) as caught_retry:
        await bot.send_message(1, "x")
    assert caught_retry.value.retry_after == dtm.timedelta(seconds=3)

    api.fail_next(error=forbidden())
    with pytest.raises(Forbidden, match=r"(?i)bot was blocked by the user"):
        await bot.send_message(1, "x")

    api.fail_next(error=chat_migrated(-100777))
    with pytest.raises(ChatMigrated) as caught_migrated:
        await bot.send_message(-777, "x")
    assert caught_migrated.value.new_chat_id == -100777

    api.fail_next(error=server_error())
    with pytest.raises(NetworkError) as caught_server:
        await bot.send_message(1, "x")
    assert not isinstance(caught_server.value, BadRequest)

    api.fail_next("editMessageText", error=bad_request("message to edit not found"))
    with pytest.raises(BadRequest, match=r"^Message to edit not found$"):
        await bot.edit_message_text("x", chat_id=1, message_id=1)

    assert (await bot.send_message(1, "fine")).text == "fine"
    assert [c.status for c in api.calls("sendMessage")] == [429, 403, 400, 500, 200]
    assert api.too_many_requests == 1


async def test_fail_next_targets_a_chat_and_counts(api: FakeBotAPI, bot: Bot) -> None:
    api.fail_next(chat_id=5, times=2, error=forbidden())
    assert (await bot.send_message(6, "other chat")).chat.id == 6
    for _ in range(2):
        with pytest.raises(Forbidden):
            await bot.send_message(5, "x")
    assert (await bot.send_message(5, "third")).text == "third"

    api.fail_next(chat_id=5, times=None, error=forbidden())
    for _ in range(3):
        with pytest.raises(Forbidden):
            await bot.send_message(5, "x")
    api.clear()
    assert api.calls() == []
    assert (await bot.send_message(5, "after clear")).text == "after clear"


@pytest.mark.usefixtures("timedelta_periods")
async def test_enforced_limits_per_chat() -> None:
    async with (
        FakeBotAPI(enforce_limits=True) as api,
        Bot(DEFAULT_TOKEN, base_url=api.base_url) as bot,
    ):
        await bot.send_message(1, "first")
        with pytest.raises(RetryAfter) as caught:
            await bot.send_message(1, "second within a second")
        assert caught.value.retry_after == dtm.timedelta(seconds=1)
        await bot.send_message(2, "another chat is fine")
        assert api.too_many_requests == 1
        assert [m.chat_id for m in api.sent_messages()] == [1, 2]


def test_enforced_limits_global_and_group_windows() -> None:
    now = [1000.0]
    with FakeBotAPI(enforce_limits=True, clock=lambda: now[0]) as api, httpx.Client() as client:
        url = f"{api.base_url}{DEFAULT_TOKEN}/sendMessage"

        def send(chat_id: int) -> httpx.Response:
            return client.post(url, data={"chat_id": str(chat_id), "text": "x"})

        assert all(send(chat).status_code == 200 for chat in range(1, 31))
        refused = send(31)
        assert refused.status_code == 429
        assert refused.json()["parameters"] == {"retry_after": 1}
        now[0] += 1.0
        assert send(31).status_code == 200

        api.clear()
        for _ in range(20):
            now[0] += 1.5
            assert send(-100900).status_code == 200
        now[0] += 1.5
        refused = send(-100900)
        assert refused.status_code == 429
        # The oldest of the 20 was sent 30 s ago, so the window frees in 30 s.
        assert refused.json() == {
            "ok": False,
            "error_code": 429,
            "description": "Too Many Requests: retry after 30",
            "parameters": {"retry_after": 30},
        }
        assert api.too_many_requests == 1
        now[0] += 30.0
        assert send(-100900).status_code == 200
