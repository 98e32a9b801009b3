"""Topic alerts: /subscribe, /unsubscribe, /subscriptions (with its buttons), /digest,
/timezone, the bot's own membership changes, and how alerts and digests read."""

from __future__ import annotations

import functools
import logging
import re
import zoneinfo
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta, timezone, tzinfo

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.constants import ChatMemberStatus, ChatType
from telegram.error import BadRequest, NetworkError, TimedOut

from handlers.common import BUTTON_EXPIRED, UsageError, ascii_int, reply
from handlers.context import NewsContext
from handlers.render import MAX_MESSAGE, esc
from news.query import QueryError, parse_query
from news.sentences import split_sentences
from storage.alerts import MAX_TOPICS, Chat, ClaimedAlert, Frequency, Subscription

log = logging.getLogger(__name__)

MAX_TOPIC_CHARS = 200
DEFAULT_DIGEST_TIME = "08:00"
_TITLE_CHARS = 300
_HIGHLIGHT_CHARS = 280
_TOPIC_CHARS = 60
_TOPICS_SHOWN = 3
_BUTTON_TOPIC_CHARS = 24

SUBSCRIBE_HELP = (
    'Words must all appear; <code>"a phrase"</code>; <code>OR</code> between words; '
    "<code>-word</code> leaves a word out; <code>category:sport</code>, "
    "<code>source:bbc</code>. Example: <code>/subscribe belarus protests -football</code>"
)
_ZONE_EXAMPLES = (
    "Use a name like <code>Europe/Minsk</code>, <code>America/New_York</code> or "
    "<code>Asia/Kolkata</code>, or an offset like <code>UTC+03:00</code>."
)
_GROUP_ADMINS_ONLY = (
    "In a group only its admins can change the topics. Ask an admin, or follow topics "
    "in a private chat with me."
)


# -- time: the clock, zones and digest moments -----------------------------------------


_OFFSET = re.compile(r"^(?:UTC|GMT)?\s*([+\-−])\s*(\d{1,2})(?::?(\d{2}))?$", re.IGNORECASE)
_HHMM = re.compile(r"^(\d{1,2})[:.h](\d{2})$")


# IANA's geographic areas: "Factory", "localtime", "posixrules" and the old aliases
# ("US/Eastern", "EST5EDT") are files in the zone database but not a place's time.
_REGIONS = frozenset(
    {
        "Africa",
        "America",
        "Antarctica",
        "Arctic",
        "Asia",
        "Atlantic",
        "Australia",
        "Europe",
        "Indian",
        "Pacific",
    }
)


@functools.cache
def _zone_names() -> dict[str, str]:
    return {
        name.lower(): name
        for name in zoneinfo.available_timezones()
        if name.partition("/")[0] in _REGIONS and "/" in name
    }


def parse_timezone(text: str) -> str | None:
    """The stored form of a zone the user typed: an IANA name (any case) or a fixed offset
    `UTC+03:00`; None when it is neither."""
    text = text.strip()
    if text.upper() in ("UTC", "GMT", "Z", "UTC+0", "GMT+0"):
        return "UTC"
    offset = _OFFSET.match(text)
    if offset:
        sign, hours, minutes = offset.group(1), int(offset.group(2)), int(offset.group(3) or 0)
        if hours > 14 or minutes > 59 or (hours == 14 and minutes):
            return None
        if hours == minutes == 0:
            return "UTC"
        return f"UTC{'+' if sign == '+' else '-'}{hours:02d}:{minutes:02d}"
    return _zone_names().get(text.lower())


def zone_info(name: str) -> tzinfo:
    """The tzinfo of a stored zone name (UTC when the name is no longer known)."""
    if name == "UTC":
        return UTC
    if name.startswith("UTC") and len(name) == 9:
        minutes = int(name[4:6]) * 60 + int(name[7:9])
        return timezone(timedelta(minutes=minutes if name[3] == "+" else -minutes))
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        log.warning("unknown time zone %r: using UTC", name)
        return UTC


def parse_digest_time(text: str) -> str | None:
    """`HH:MM` (24-hour) from what the user typed (8:00, 08:00, 8.00), or None."""
    match = _HHMM.match(text.strip())
    if not match:
        return None
    hours, minutes = int(match.group(1)), int(match.group(2))
    if hours > 23 or minutes > 59:
        return None
    return f"{hours:02d}:{minutes:02d}"


def next_digest_at(digest_time: str, zone: str, after: datetime) -> datetime:
    """The first moment after `after` (UTC) when it is `digest_time` in `zone`."""
    tz = zone_info(zone)
    hours, minutes = (int(part) for part in digest_time.split(":"))
    local = after.astimezone(tz)
    for days in range(3):
        day = local.date() + timedelta(days=days)
        candidate = datetime.combine(day, time(hours, minutes), tzinfo=tz).astimezone(UTC)
        if candidate > after:
            return candidate
    raise AssertionError("a digest moment exists within three days")


def local_time(moment: datetime, zone: str) -> str:
    """`moment` as the chat reads it: `1 Mar, 08:00 Europe/Minsk`."""
    local = moment.astimezone(zone_info(zone))
    return f"{local.day} {local:%b, %H:%M} {zone}"


# -- how alerts and digests read -------------------------------------------------------


def _clip(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def topics_line(topics: Sequence[str]) -> str:
    """The matched topics, escaped: the first few, then how many more."""
    shown = [esc(_clip(t, _TOPIC_CHARS)) for t in topics[:_TOPICS_SHOWN]]
    more = len(topics) - len(shown)
    return " · ".join(shown) + (f" <i>+{more} more</i>" if more > 0 else "")


def alert_highlight(alert: ClaimedAlert) -> str:
    """One line of the story: the publisher's highlight, else the body's first sentence."""
    if alert.highlight.strip():
        return _clip(alert.highlight, _HIGHLIGHT_CHARS)
    sentences = split_sentences(alert.lead)
    return _clip(sentences[0], _HIGHLIGHT_CHARS) if sentences else ""


def alert_text(alert: ClaimedAlert) -> str:
    """An instant alert: the topic(s), the bold title, one highlight, /read_ID."""
    parts = [f"🔔 {topics_line(alert.topics)}", f"<b>{esc(_clip(alert.title, _TITLE_CHARS))}</b>"]
    highlight = alert_highlight(alert)
    text = "\n".join(parts)
    if highlight:
        text += f"\n\n{esc(highlight)}"
    return f"{text}\n\n/read_{alert.story_id}"


def alert_keyboard(story_id: int) -> InlineKeyboardMarkup:
    """Summary and Full text buttons (answered by handlers/stories.py)."""
    return InlineKeyboardMarkup(
        [
            [
                InlineKeyboardButton("Summary", callback_data=f"summary:{story_id}"),
                InlineKeyboardButton("Full text", callback_data=f"full:{story_id}"),
            ]
        ]
    )


def digest_messages(
    alerts: Sequence[ClaimedAlert], limit: int = MAX_MESSAGE
) -> list[tuple[str, tuple[int, ...]]]:
    """The daily digest: every story as a numbered line with its topics and /read_ID, in
    as few messages as fit (numbered (1/3) when several). Each message comes with the ids
    of the alerts it carries."""
    count = len(alerts)
    header = f"📰 <b>Your daily digest</b> · {count} {'story' if count == 1 else 'stories'}"
    room = limit - len(header) - 20  # the "(12/34)" marker and separators
    chunks: list[list[tuple[str, int]]] = [[]]
    size = 0
    for number, alert in enumerate(alerts, 1):
        entry = (
            f"{number}. <b>{esc(_clip(alert.title, _TITLE_CHARS))}</b>\n"
            f"🔔 {topics_line(alert.topics)} · /read_{alert.story_id}"
        )
        if chunks[-1] and size + len(entry) + 2 > room:
            chunks.append([])
            size = 0
        chunks[-1].append((entry, alert.id))
        size += len(entry) + 2
    total = len(chunks)
    messages = []
    for index, chunk in enumerate(chunks, 1):
        marker = f" <i>({index}/{total})</i>" if total > 1 else ""
        body = "\n\n".join(entry for entry, _ in chunk)
        messages.append((f"{header}{marker}\n\n{body}", tuple(alert_id for _, alert_id in chunk)))
    return messages


def _frequency_text(subscription: Subscription, chat: Chat | None) -> str:
    if subscription.frequency == "instant":
        return "instant"
    when = chat.digest_time if chat and chat.digest_time else DEFAULT_DIGEST_TIME
    zone = chat.timezone if chat else "UTC"
    return f"daily digest at {when} {esc(zone)}"


def subscriptions_text(subscriptions: Sequence[Subscription], chat: Chat | None) -> str:
    """The /subscriptions message."""
    if not subscriptions:
        return (
            "This chat follows no topics yet. Follow one with "
            "<code>/subscribe belarus protests</code>: I send each new story that matches."
        )
    lines = [
        f"{n}. <b>{esc(s.display)}</b> — {_frequency_text(s, chat)}"
        for n, s in enumerate(subscriptions, 1)
    ]
    return (
        f"<b>Topics of this chat</b> ({len(subscriptions)} of {MAX_TOPICS})\n\n"
        + "\n".join(lines)
        + "\n\nTap ✖ to stop a topic, or switch it between instant alerts and the daily "
        "digest. <code>/unsubscribe all</code> stops them all."
    )


def subscriptions_keyboard(subscriptions: Sequence[Subscription]) -> InlineKeyboardMarkup | None:
    """Per topic: a Remove button and an Instant/Daily switch."""
    if not subscriptions:
        return None
    rows = []
    for n, s in enumerate(subscriptions, 1):
        other = "daily" if s.frequency == "instant" else "instant"
        rows.append(
            [
                InlineKeyboardButton(
                    f"✖ {n}. {_clip(s.display, _BUTTON_TOPIC_CHARS)}",
                    callback_data=f"topic:rm:{s.id}",
                ),
                InlineKeyboardButton(f"{n}. → {other}", callback_data=f"topic:{other}:{s.id}"),
            ]
        )
    return InlineKeyboardMarkup(rows)


# -- who may change a chat's topics ----------------------------------------------------


async def may_change_topics(update: Update, context: NewsContext) -> bool:
    """Private chats always; in groups only the chat's admins (and anonymous admins,
    who post as the group itself)."""
    chat = update.effective_chat
    user = update.effective_user
    if chat is None or chat.type == ChatType.PRIVATE:
        return True
    message = update.effective_message
    if message is not None and message.sender_chat is not None:
        return message.sender_chat.id == chat.id
    if user is None:
        return False
    try:
        member = await context.bot.get_chat_member(chat.id, user.id)
    except (NetworkError, TimedOut) as error:
        if isinstance(error, BadRequest):
            raise
        # Telegram could not say who is an admin right now (a 5xx, a timeout).
        log.warning("getChatMember failed in chat %s: %s", chat.id, error)
        raise UsageError(
            "I could not check with Telegram whether you are an admin of this group. "
            "Please try again in a minute."
        ) from None
    return member.status in (ChatMemberStatus.ADMINISTRATOR, ChatMemberStatus.OWNER)


async def _require_admin(update: Update, context: NewsContext) -> None:
    if not await may_change_topics(update, context):
        raise UsageError(_GROUP_ADMINS_ONLY)


def _chat_fields(update: Update) -> tuple[int, str, str | None]:
    chat = update.effective_chat
    assert chat is not None
    title = chat.title or chat.full_name
    return chat.id, str(chat.type), title


# -- commands --------------------------------------------------------------------------


def _query_text(context: NewsContext) -> str:
    return " ".join(context.args or [])


async def subscribe(update: Update, context: NewsContext) -> None:
    """Follow a topic: /subscribe QUERY."""
    text = _query_text(context)
    if not text.strip():
        raise UsageError(
            "Tell me what to follow, like <code>/subscribe belarus protests</code>: I send "
            f"each new story that matches.\n\n{SUBSCRIBE_HELP}"
        )
    if len(text) > MAX_TOPIC_CHARS:
        raise UsageError(
            f"That topic is too long ({len(text)} characters; at most {MAX_TOPIC_CHARS}). "
            "A few key words work best."
        )
    try:
        query = parse_query(text)
    except QueryError as error:
        raise UsageError(f"{esc(error.message)}\n\n{SUBSCRIBE_HELP}") from None
    await _require_admin(update, context)
    chat_id, chat_type, title = _chat_fields(update)
    result = await context.store.subscribe(
        chat_id,
        query.canonical,
        query.display or query.canonical,
        chat_type=chat_type,
        title=title,
        now=context.bot_data.now(),
    )
    if result.status == "limit":
        raise UsageError(
            f"This chat follows {result.count} topics, the most I keep. Remove one with "
            "/subscriptions first."
        )
    assert result.subscription is not None
    shown = f"<b>{esc(result.subscription.display)}</b>"
    if result.status == "exists":
        await reply(update, f"This chat is already subscribed to {shown}. /subscriptions")
        return
    if result.subscription.frequency == "daily":
        chat = await context.store.chat(chat_id)
        when = (
            f"in the daily digest at {chat.digest_time} {esc(chat.timezone)}"
            if chat and chat.digest_time
            else "in the daily digest"
        )
        how = f"New stories about it come {when}."
    else:
        how = "I'll send each new story about it as it arrives."
    await reply(
        update,
        f"Subscribed to {shown}. {how}\n\n/subscriptions lists this chat's topics; "
        f"<code>/unsubscribe {esc(result.subscription.display)}</code> stops this one.",
    )


async def unsubscribe(update: Update, context: NewsContext) -> None:
    """Stop a topic, or all of them: /unsubscribe QUERY|all."""
    text = _query_text(context).strip()
    if not text:
        raise UsageError(
            "Which topic? Type it as you subscribed, like "
            "<code>/unsubscribe belarus protests</code>, or <code>/unsubscribe all</code>. "
            "/subscriptions lists them with buttons."
        )
    await _require_admin(update, context)
    chat_id = _chat_fields(update)[0]
    if text.lower() == "all":
        removed = await context.store.unsubscribe_all(chat_id)
        if not removed:
            await reply(update, "This chat follows no topics. /subscribe adds one.")
            return
        await reply(
            update,
            f"Stopped all {removed} {'topic' if removed == 1 else 'topics'}: no more alerts "
            "here until you /subscribe again.",
        )
        return
    try:
        query = parse_query(text)
    except QueryError as error:
        raise UsageError(
            f"{esc(error.message)}\n\n/subscriptions lists this chat's topics."
        ) from None
    gone = await context.store.unsubscribe(chat_id, query.canonical)
    if gone is None:
        raise UsageError(
            f"This chat is not subscribed to <b>{esc(query.display or text)}</b>. "
            "/subscriptions lists its topics, with buttons to remove them."
        )
    await reply(update, f"Stopped <b>{esc(gone.display)}</b>: no more alerts about it.")


async def subscriptions(update: Update, context: NewsContext) -> None:
    """This chat's topics, with buttons to remove or switch them: /subscriptions."""
    chat_id = _chat_fields(update)[0]
    topics = await context.store.subscriptions(chat_id)
    chat = await context.store.chat(chat_id)
    await reply(update, subscriptions_text(topics, chat), subscriptions_keyboard(topics))


async def digest(update: Update, context: NewsContext) -> None:
    """The daily digest: /digest HH:MM, /digest off, /digest (show)."""
    arg = _query_text(context).strip()
    chat_id, chat_type, title = _chat_fields(update)
    chat = await context.store.chat(chat_id)
    zone = chat.timezone if chat else "UTC"
    if not arg:
        if chat is None or chat.digest_time is None:
            state = "Off: topics arrive as instant alerts."
        else:
            state = f"Every day at <b>{chat.digest_time}</b> {esc(zone)}."
        raise UsageError(
            f"Daily digest: {state}\n\n<code>/digest 08:00</code> gathers this chat's "
            "stories into one message a day at that time (24-hour clock, in the chat's "
            "zone: /timezone); <code>/digest off</code> goes back to instant alerts."
        )
    if arg.lower() in ("off", "stop", "none", "instant"):
        await _require_admin(update, context)
        if chat is None or chat.digest_time is None:
            await reply(update, "The daily digest is off already: topics arrive as alerts.")
            return
        await context.store.set_digest(
            chat_id, None, None, context.bot_data.now(), chat_type=chat_type, title=title
        )
        await reply(
            update,
            "Daily digest off: this chat gets each new story about its topics as it "
            "arrives, starting with those that were waiting for the digest.",
        )
        return
    at = parse_digest_time(arg)
    if at is None:
        raise UsageError(
            "Give the digest time on the 24-hour clock, like <code>/digest 08:00</code> or "
            "<code>/digest 18:30</code>, or <code>/digest off</code>."
        )
    await _require_admin(update, context)
    now = context.bot_data.now()
    upcoming = next_digest_at(at, zone, now)
    count = await context.store.set_digest(
        chat_id, at, upcoming, now, chat_type=chat_type, title=title
    )
    topics = (
        f"this chat's {count} {'topic' if count == 1 else 'topics'} (and the ones you add)"
        if count
        else "the topics you /subscribe to"
    )
    await reply(
        update,
        f"📰 Daily digest at <b>{at}</b> {esc(zone)}: stories about {topics} come "
        f"together once a day. Next: "
        f"{esc(local_time(upcoming, zone))}.\n\n/timezone sets your zone; "
        "<code>/digest off</code> goes back to instant alerts; /subscriptions switches "
        "single topics.",
    )


async def timezone_command(update: Update, context: NewsContext) -> None:
    """The chat's time zone for the digest: /timezone ZONE."""
    arg = _query_text(context).strip()
    chat_id, chat_type, title = _chat_fields(update)
    chat = await context.store.chat(chat_id)
    if not arg:
        current = chat.timezone if chat else "UTC"
        raise UsageError(
            f"This chat's time zone: <b>{esc(current)}</b>. Change it with "
            f"<code>/timezone Europe/Minsk</code>. {_ZONE_EXAMPLES}"
        )
    zone = parse_timezone(arg)
    if zone is None:
        raise UsageError(f"I don't know the time zone {esc(arg[:60])}. {_ZONE_EXAMPLES}")
    await _require_admin(update, context)
    now = context.bot_data.now()
    upcoming = None
    if chat is not None and chat.digest_time is not None:
        upcoming = next_digest_at(chat.digest_time, zone, now)
    await context.store.set_timezone(
        chat_id, zone, upcoming, now, chat_type=chat_type, title=title
    )
    local = now.astimezone(zone_info(zone))
    text = f"Time zone set to <b>{esc(zone)}</b> (it is {local:%H:%M} there now)."
    if upcoming is not None:
        text += f" Next digest: {esc(local_time(upcoming, zone))}."
    await reply(update, text)


# -- buttons ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TopicButton:
    """A parsed button under /subscriptions: remove a topic or switch its frequency."""

    action: str  # rm, daily or instant
    subscription_id: int


_TOPIC_BUTTON = re.compile(r"topic:(rm|daily|instant):([0-9]{1,12})")


def parse_topic_button(data: object) -> TopicButton | None:
    """The topic button `data` names, or None for anything we did not make."""
    match = _TOPIC_BUTTON.fullmatch(data) if isinstance(data, str) else None
    number = ascii_int(match.group(2)) if match else None
    if match is None or not number:
        return None
    return TopicButton(match.group(1), number)


async def topic_button(update: Update, context: NewsContext) -> None:
    """The buttons under /subscriptions: remove a topic, or switch instant/daily."""
    query = update.callback_query
    assert query is not None
    button = parse_topic_button(query.data)
    if button is None or update.effective_chat is None:
        # Forged, or pressed on an inline message, which belongs to no chat of ours.
        await query.answer(BUTTON_EXPIRED)
        return
    action, sub_id = button.action, button.subscription_id
    try:
        allowed = await may_change_topics(update, context)
    except UsageError as error:
        await query.answer(_clip(str(error), 190), show_alert=True)
        return
    if not allowed:
        await query.answer(_GROUP_ADMINS_ONLY[:200], show_alert=True)
        return
    chat_id, chat_type, title = _chat_fields(update)
    store = context.store
    if action == "rm":
        gone = await store.remove_subscription(chat_id, sub_id)
        note = f"Stopped: {gone.display}" if gone else "That topic was already removed."
    else:
        frequency: Frequency = "daily" if action == "daily" else "instant"
        changed = await store.set_frequency(chat_id, sub_id, frequency)
        if changed is None:
            note = "That topic was removed."
        elif frequency == "instant":
            note = f"{changed.display}: instant alerts"
        else:
            chat = await store.chat(chat_id)
            if chat is None or chat.digest_time is None:
                # A daily topic needs a digest hour: the default until the chat picks one.
                now = context.bot_data.now()
                zone = chat.timezone if chat else "UTC"
                await store.set_digest(
                    chat_id,
                    DEFAULT_DIGEST_TIME,
                    next_digest_at(DEFAULT_DIGEST_TIME, zone, now),
                    now,
                    chat_type=chat_type,
                    title=title,
                    switch_topics=False,
                )
                note = f"Daily digest at {DEFAULT_DIGEST_TIME} {zone} (change: /digest HH:MM)"
            else:
                note = f"{changed.display}: daily digest at {chat.digest_time}"
    await query.answer(_clip(note, 190))
    topics = await store.subscriptions(chat_id)
    chat_now = await store.chat(chat_id)
    try:
        await query.edit_message_text(
            subscriptions_text(topics, chat_now), reply_markup=subscriptions_keyboard(topics)
        )
    except BadRequest as error:
        if "not modified" not in str(error).lower():
            raise


# -- the bot's own membership ----------------------------------------------------------


async def bot_membership(update: Update, context: NewsContext) -> None:
    """Stop alerts to a chat that blocked or removed the bot; resume when it is back."""
    change = update.my_chat_member
    if change is None:
        return
    status = change.new_chat_member.status
    chat_id = change.chat.id
    if status in (ChatMemberStatus.BANNED, ChatMemberStatus.LEFT):
        reason = "blocked the bot" if change.chat.type == ChatType.PRIVATE else "removed the bot"
        await context.store.deactivate_chat(chat_id, reason, context.bot_data.now())
    elif status in (
        ChatMemberStatus.MEMBER,
        ChatMemberStatus.ADMINISTRATOR,
        ChatMemberStatus.RESTRICTED,
    ):
        await context.store.activate_chat(chat_id, context.bot_data.now())
