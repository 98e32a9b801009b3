"""A fake Telegram Bot API server on 127.0.0.1 for end-to-end tests and benchmarks.

The server is a small HTTP/1.1 keep-alive server on an asyncio loop in its own thread, so the
real python-telegram-bot ``Application`` under test (on the test's loop) can long-poll
``getUpdates`` while the test pushes updates and inspects the recorded calls.

Typical use::

    async with FakeBotAPI() as api:
        app = ApplicationBuilder().token(TOKEN).base_url(api.base_url).build()
        ...
        api.message("/start", chat_id=42)
        [reply] = await api.wait_for_messages(1, chat_id=42)

Behaviour that mirrors the real Bot API (because production code must cope with it):
``date`` in Unix seconds; ``parse_mode=HTML`` is parsed with Telegram's tag subset and bad
markup is a 400 "can't parse entities"; texts over 4096 characters are rejected; editing a
message with identical content is a 400 "message is not modified"; editing text without
``reply_markup`` drops the inline keyboard; only inline keyboards are echoed in ``Message``;
command names in ``setMyCommands`` must be lowercase; a pending ``getUpdates`` is terminated
with 409 by a newer one. Not modelled: Markdown parse modes (text is echoed as is), media
methods, file downloads, automatic url/mention entities in plain text.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.parser
import email.policy
import functools
import json
import logging
import math
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Coroutine, Iterable, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self, TypeVar
from urllib.parse import parse_qsl, unquote, urlsplit

logger = logging.getLogger(__name__)

JSON = dict[str, Any]
_Answer = tuple[int, bytes]
_T = TypeVar("_T")

DEFAULT_TOKEN = "123456789:TEST-token-for-the-fake-bot-api"
DEFAULT_BOT_ID = 123456789
DEFAULT_USERNAME = "NewsTestBot"

MAX_TEXT_LENGTH = 4096
MAX_CALLBACK_DATA_BYTES = 64

# Telegram's documented broadcast limits, enforced only with enforce_limits=True.
GLOBAL_PER_SECOND = 30
CHAT_INTERVAL_SECONDS = 1.0
GROUP_PER_MINUTE = 20

# Parameters whose values are strings in the Bot API even when they look like numbers or JSON
# (PTB sends every str parameter verbatim and JSON-encodes everything else).
_TEXT_KEYS = frozenset(
    {
        "text",
        "caption",
        "callback_query_id",
        "inline_message_id",
        "title",
        "description",
        "short_description",
        "name",
        "query",
        "custom_title",
        "url",
        "secret_token",
        "parse_mode",
        "language_code",
        "emoji",
        "business_connection_id",
        "message_effect_id",
        "action",
        "ip_address",
        "payload",
        "start_parameter",
        "file_id",
    }
)

# Update kinds Telegram leaves out unless they are named in allowed_updates.
_OPT_IN_UPDATES = frozenset({"chat_member", "message_reaction", "message_reaction_count"})

_SENT_METHODS = ("sendMessage", "editMessageText")


# --------------------------------------------------------------------------------------------
# Errors


@dataclass(frozen=True)
class ApiError:
    """A Bot API error answer: HTTP status, description and optional response parameters."""

    status: int
    description: str
    parameters: Mapping[str, Any] | None = None

    def body(self) -> JSON:
        """Return the JSON body Telegram sends for this error."""
        out: JSON = {"ok": False, "error_code": self.status, "description": self.description}
        if self.parameters:
            out["parameters"] = dict(self.parameters)
        return out


def retry_after(seconds: int) -> ApiError:
    """HTTP 429 flood-control answer; PTB raises ``RetryAfter``."""
    return ApiError(
        429, f"Too Many Requests: retry after {seconds}", {"retry_after": int(seconds)}
    )


def forbidden(description: str = "Forbidden: bot was blocked by the user") -> ApiError:
    """HTTP 403 answer; PTB raises ``Forbidden``."""
    return ApiError(403, description)


def chat_migrated(new_chat_id: int) -> ApiError:
    """HTTP 400 group-upgraded answer; PTB raises ``ChatMigrated``."""
    return ApiError(
        400,
        "Bad Request: group chat was upgraded to a supergroup chat",
        {"migrate_to_chat_id": int(new_chat_id)},
    )


def server_error(description: str = "Internal Server Error") -> ApiError:
    """HTTP 500 answer; PTB raises ``NetworkError``."""
    return ApiError(500, description)


def bad_request(description: str) -> ApiError:
    """HTTP 400 answer with Telegram's "Bad Request: " prefix; PTB raises ``BadRequest``."""
    if not description.startswith("Bad Request"):
        description = f"Bad Request: {description}"
    return ApiError(400, description)


_NOT_FOUND = ApiError(404, "Not Found")
_UNAUTHORIZED = ApiError(401, "Unauthorized")


class _Reject(Exception):
    """Raised inside a method handler to answer with an error."""

    def __init__(self, error: ApiError) -> None:
        super().__init__(error.description)
        self.error = error


def _bad(description: str) -> _Reject:
    return _Reject(bad_request(description))


# --------------------------------------------------------------------------------------------
# Records


@dataclass(frozen=True)
class Call:
    """One recorded Bot API request and the fake's answer."""

    method: str
    params: dict[str, Any]
    time: float  # Unix seconds when the answer was decided
    status: int
    response: dict[str, Any]

    @property
    def ok(self) -> bool:
        """Whether the answer was ``{"ok": true}``."""
        return bool(self.response.get("ok"))

    @property
    def result(self) -> Any:
        """The ``result`` of a successful answer (None on errors)."""
        return self.response.get("result")


@dataclass(frozen=True)
class SentMessage:
    """A successful sendMessage or editMessageText as the bot sent it."""

    method: str
    chat_id: int | str | None
    message_id: int | None
    text: str  # as sent, markup included
    plain_text: str  # what the user sees after parse_mode
    parse_mode: str | None
    reply_markup: dict[str, Any] | None
    params: dict[str, Any]
    time: float


@dataclass(frozen=True)
class UploadedFile:
    """A file part of a multipart request."""

    filename: str
    content_type: str
    data: bytes


@dataclass
class _FailRule:
    method: str
    chat_id: int | str | None
    remaining: int | None  # None: until clear()
    error: ApiError


# --------------------------------------------------------------------------------------------
# Small helpers


def _utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def _chat_key(value: Any) -> int | str | None:
    """Normalise a chat id for comparisons: ints stay ints, "-100" becomes -100."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    text = str(value)
    if re.fullmatch(r"-?\d+", text):
        return int(text)
    return text


def _decode_value(key: str, value: str) -> Any:
    """Decode one form value the way PTB encoded it (JSON for non-strings)."""
    if key in _TEXT_KEYS or not value:
        return value
    if value[0] in "{[-0123456789" or value in ("true", "false", "null"):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def _decode_params(pairs: Iterable[tuple[str, Any]]) -> JSON:
    out: JSON = {}
    for key, value in pairs:
        out[key] = _decode_value(key, value) if isinstance(value, str) else value
    return out


def _parse_multipart(body: bytes, content_type: str) -> list[tuple[str, Any]]:
    # The email parser handles MIME multipart without the deprecated cgi module.
    head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode()
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + body)
    pairs: list[tuple[str, Any]] = []
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if not isinstance(name, str):
            continue
        payload = part.get_payload(decode=True)
        data = payload if isinstance(payload, bytes) else b""
        filename = part.get_filename()
        if filename is not None:
            pairs.append((name, UploadedFile(filename, part.get_content_type(), data)))
        else:
            pairs.append((name, data.decode("utf-8")))
    return pairs


def _ok(result: Any) -> JSON:
    return {"ok": True, "result": result}


# --------------------------------------------------------------------------------------------
# Telegram's HTML subset

_HTML_ENTITY_TYPES = {
    "b": "bold",
    "strong": "bold",
    "i": "italic",
    "em": "italic",
    "u": "underline",
    "ins": "underline",
    "s": "strikethrough",
    "strike": "strikethrough",
    "del": "strikethrough",
    "span": "spoiler",
    "tg-spoiler": "spoiler",
    "a": "text_link",
    "code": "code",
    "pre": "pre",
    "blockquote": "blockquote",
    "tg-emoji": "custom_emoji",
}
# The attributes each tag may carry; anything else is refused, so that a quote that ended
# an attribute early (attribute injection) fails the test instead of passing silently.
_ALLOWED_ATTRIBUTES: dict[str, frozenset[str]] = {
    "a": frozenset({"href"}),
    "span": frozenset({"class"}),
    "tg-emoji": frozenset({"emoji-id"}),
    "code": frozenset({"class"}),
    "blockquote": frozenset({"expandable"}),
}
_NAMED_ENTITIES = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}
_CHAR_REF = re.compile(r"&(#[0-9]{1,7}|#[xX][0-9a-fA-F]{1,6}|[a-zA-Z]{2,4});")
_ATTRIBUTE = re.compile(r"""\s*([^\s=>/"']+)\s*(?:=\s*("[^"]*"|'[^']*'|[^\s>"']*))?""")
_PLAIN_RUN = re.compile(r"[^<&]+")


def _decode_char_ref(ref: str) -> str | None:
    if ref.startswith("#"):
        number = int(ref[2:], 16) if ref[1:2] in ("x", "X") else int(ref[1:])
        if 0 < number <= 0x10FFFF and not 0xD800 <= number <= 0xDFFF:
            return chr(number)
        return None
    return _NAMED_ENTITIES.get(ref)


def _unescape(value: str) -> str:
    return _CHAR_REF.sub(lambda m: _decode_char_ref(m.group(1)) or m.group(0), value)


def parse_html(markup: str) -> tuple[str, list[JSON]]:
    """Parse Telegram's HTML subset into stripped (text, entities); ``_Reject`` on bad markup."""
    out: list[str] = []
    entities: list[JSON] = []
    # (tag, attributes, UTF-16 start, byte offset of "<") for each open tag
    stack: list[tuple[str, dict[str, str], int, int]] = []
    pos = 0
    utf16 = 0
    size = len(markup)

    def byte_offset(index: int) -> int:
        return len(markup[:index].encode("utf-8"))

    def fail(detail: str) -> _Reject:
        return _bad(f"can't parse entities: {detail}")

    while pos < size:
        char = markup[pos]
        if char == "&":
            ref = _CHAR_REF.match(markup, pos)
            decoded = _decode_char_ref(ref.group(1)) if ref else None
            if ref is not None and decoded is not None:
                out.append(decoded)
                utf16 += _utf16_len(decoded)
                pos = ref.end()
            else:
                # Telegram keeps an undecodable "&" as a literal character.
                out.append("&")
                utf16 += 1
                pos += 1
            continue
        if char != "<":
            run = _PLAIN_RUN.match(markup, pos)
            assert run is not None
            out.append(run.group(0))
            utf16 += _utf16_len(run.group(0))
            pos = run.end()
            continue
        at = byte_offset(pos)
        if markup.startswith("</", pos):
            end = markup.find(">", pos)
            if end < 0:
                raise fail(f"Unclosed end tag at byte offset {at}")
            name = markup[pos + 2 : end].strip().lower()
            if not stack:
                raise fail(f"Unexpected end tag at byte offset {at}")
            tag, open_attributes, start, _ = stack.pop()
            if name and name != tag:
                raise fail(
                    f'Unmatched end tag at byte offset {at}, expected "</{tag}>", '
                    f'found "</{name}>"'
                )
            if utf16 > start:
                _close_entity(entities, tag, open_attributes, start, utf16 - start, fail)
            pos = end + 1
            continue
        name_end = pos + 1
        while name_end < size and not markup[name_end].isspace() and markup[name_end] != ">":
            name_end += 1
        if name_end >= size:
            raise fail(f"Unclosed start tag at byte offset {at}")
        tag = markup[pos + 1 : name_end].lower()
        if tag not in _HTML_ENTITY_TYPES:
            raise fail(f'Unsupported start tag "{tag}" at byte offset {at}')
        attributes: dict[str, str] = {}
        cursor = name_end
        while True:
            while cursor < size and markup[cursor].isspace():
                cursor += 1
            if cursor >= size:
                raise fail(f'Unclosed start tag "{tag}" at byte offset {at}')
            if markup[cursor] == ">":
                cursor += 1
                break
            attribute = _ATTRIBUTE.match(markup, cursor)
            if attribute is None or attribute.end() == cursor:
                raise fail(f'Empty attribute name in the tag "{tag}" at byte offset {at}')
            value = attribute.group(2) or ""
            if value[:1] in ("'", '"'):
                value = value[1:-1]
            name = attribute.group(1).lower()
            if name not in _ALLOWED_ATTRIBUTES.get(tag, frozenset()):
                raise fail(
                    f'Unsupported attribute "{name}" in the tag "{tag}" at byte offset {at}'
                )
            attributes[name] = _unescape(value)
            cursor = attribute.end()
        if tag == "span" and attributes.get("class") != "tg-spoiler":
            raise fail(f'Tag "span" must have class "tg-spoiler" at byte offset {at}')
        stack.append((tag, attributes, utf16, at))
        pos = cursor
    if stack:
        raise fail(f'Can\'t find end tag corresponding to start tag "{stack[-1][0]}"')
    for entity in entities:
        entity.pop("_language", None)
    entities.sort(key=lambda e: (e["offset"], -e["length"]))
    return _strip_text("".join(out), entities)


def _close_entity(
    entities: list[JSON],
    tag: str,
    attributes: dict[str, str],
    offset: int,
    length: int,
    fail: Callable[[str], _Reject],
) -> None:
    kind = _HTML_ENTITY_TYPES[tag]
    entity: JSON = {"type": kind, "offset": offset, "length": length}
    if tag == "a":
        url = attributes.get("href", "")
        if not url or url.startswith("tg://user?id="):
            return  # Telegram silently drops links it cannot use
        entity["url"] = url
    elif tag == "tg-emoji":
        emoji_id = attributes.get("emoji-id", "")
        if not emoji_id.isdigit():
            raise fail("Invalid custom emoji identifier specified")
        entity["custom_emoji_id"] = emoji_id
    elif tag == "blockquote" and "expandable" in attributes:
        entity["type"] = "expandable_blockquote"
    elif tag == "code":
        language = attributes.get("class", "")
        if language.startswith("language-"):
            entity["_language"] = language.removeprefix("language-")
    elif tag == "pre" and entities:
        inner = entities[-1]
        # <pre><code class="language-x">…</code></pre> is one pre entity with a language.
        if inner["type"] == "code" and inner["offset"] == offset and inner["length"] == length:
            entities.pop()
            if "_language" in inner:
                entity["language"] = inner["_language"]
    entities.append(entity)


def _strip_text(text: str, entities: list[JSON]) -> tuple[str, list[JSON]]:
    """Trim surrounding whitespace like Telegram does, keeping entity offsets right."""
    stripped = text.strip()
    if stripped == text:
        return text, entities
    lead = _utf16_len(text[: len(text) - len(text.lstrip())])
    limit = _utf16_len(stripped)
    kept: list[JSON] = []
    for entity in entities:
        start = max(entity["offset"] - lead, 0)
        end = min(entity["offset"] + entity["length"] - lead, limit)
        if end > start:
            kept.append({**entity, "offset": start, "length": end - start})
    return stripped, kept


_COMMAND = re.compile(r"(?<!\S)/[A-Za-z0-9_]{1,64}(?:@[A-Za-z0-9_]{3,32})?(?![A-Za-z0-9_@])")


def command_entities(text: str) -> list[JSON]:
    """Return the bot_command entities Telegram attaches to a user's text."""
    entities: list[JSON] = []
    for match in _COMMAND.finditer(text):
        entities.append(
            {
                "type": "bot_command",
                "offset": _utf16_len(text[: match.start()]),
                "length": _utf16_len(match.group(0)),
            }
        )
    return entities


# --------------------------------------------------------------------------------------------
# HTTP


@dataclass(frozen=True)
class _Request:
    method: str
    target: str
    headers: dict[str, str]
    body: bytes
    keep_alive: bool


class _HttpProtocol(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection; requests on it are answered in order."""

    def __init__(self, api: FakeBotAPI) -> None:
        self._api = api
        self._buffer = bytearray()
        self._transport: asyncio.Transport | None = None
        self._task: asyncio.Task[_Answer] | None = None
        self._closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        self._api._transports.add(transport)

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed = True
        if self._transport is not None:
            self._api._transports.discard(self._transport)
        if self._task is not None:
            # A client that gave up on a long poll must not hold a waiter open.
            self._task.cancel()

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        if self._task is None:
            self._drain()

    def _drain(self) -> None:
        while not self._closed and self._task is None:
            try:
                request = self._take_request()
            except ValueError as exc:
                self._respond(400, json.dumps(bad_request(str(exc)).body()).encode(), False)
                return
            if request is None:
                return
            try:
                answer = self._api._serve(request)
            except Exception:
                logger.exception("fake Bot API failed on %s %s", request.method, request.target)
                answer = (500, _encode(server_error().body()))
            if isinstance(answer, tuple):
                self._respond(*answer, request.keep_alive)
            else:
                # The task runs the answer coroutine itself: a wrapper cancelled before its
                # first step would leave the inner coroutine "never awaited" (a warning).
                task = asyncio.get_running_loop().create_task(answer)
                self._api._answer_tasks.add(task)
                task.add_done_callback(self._api._answer_tasks.discard)
                task.add_done_callback(functools.partial(self._finish, request.keep_alive))
                self._task = task

    def _finish(self, keep_alive: bool, task: asyncio.Task[_Answer]) -> None:
        self._task = None
        if task.cancelled():
            return
        error = task.exception()
        if error is not None:
            logger.error("fake Bot API handler failed", exc_info=error)
            if self._transport is not None:
                self._transport.close()
            return
        self._respond(*task.result(), keep_alive)
        self._drain()

    def _take_request(self) -> _Request | None:
        head_end = self._buffer.find(b"\r\n\r\n")
        if head_end < 0:
            if len(self._buffer) > 65536:
                raise ValueError("request header too large")
            return None
        lines = bytes(self._buffer[:head_end]).decode("latin-1").split("\r\n")
        try:
            method, target, version = lines[0].split(" ", 2)
        except ValueError:
            raise ValueError("malformed request line") from None
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        body_start = head_end + 4
        if "chunked" in headers.get("transfer-encoding", "").lower():
            decoded = self._dechunk(body_start)
            if decoded is None:
                return None
            body, consumed = decoded
        else:
            length = int(headers.get("content-length") or 0)
            if len(self._buffer) < body_start + length:
                return None
            body = bytes(self._buffer[body_start : body_start + length])
            consumed = body_start + length
        del self._buffer[:consumed]
        connection = headers.get("connection", "").lower()
        keep_alive = connection != "close" and (
            version != "HTTP/1.0" or connection == "keep-alive"
        )
        return _Request(method, target, headers, body, keep_alive)

    def _dechunk(self, start: int) -> tuple[bytes, int] | None:
        body = bytearray()
        cursor = start
        while True:
            line_end = self._buffer.find(b"\r\n", cursor)
            if line_end < 0:
                return None
            size = int(bytes(self._buffer[cursor:line_end]).split(b";")[0], 16)
            cursor = line_end + 2
            if size == 0:
                trailer_end = self._buffer.find(b"\r\n", cursor)
                return None if trailer_end < 0 else (bytes(body), trailer_end + 2)
            if len(self._buffer) < cursor + size + 2:
                return None
            body += self._buffer[cursor : cursor + size]
            cursor += size + 2

    def _respond(self, status: int, body: bytes, keep_alive: bool) -> None:
        if self._closed or self._transport is None:
            return
        reason = _REASONS.get(status, "Error")
        head = (
            f"HTTP/1.1 {status} {reason}\r\n"
            "Content-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n"
            f"Connection: {'keep-alive' if keep_alive else 'close'}\r\n\r\n"
        ).encode("ascii")
        self._transport.write(head + body)
        if not keep_alive:
            self._transport.close()


_REASONS = {
    200: "OK",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    409: "Conflict",
    429: "Too Many Requests",
    500: "Internal Server Error",
}


def _encode(body: JSON) -> bytes:
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


# --------------------------------------------------------------------------------------------
# The fake


_MEMBER_STATUS_ALIASES = {"owner": "creator", "banned": "kicked"}
_ADMIN_RIGHTS = (
    "can_manage_chat",
    "can_delete_messages",
    "can_manage_video_chats",
    "can_restrict_members",
    "can_promote_members",
    "can_change_info",
    "can_invite_users",
    "can_post_stories",
    "can_edit_stories",
    "can_delete_stories",
    "can_pin_messages",
)
_RESTRICTED_RIGHTS = (
    "can_change_info",
    "can_invite_users",
    "can_pin_messages",
    "can_send_messages",
    "can_send_polls",
    "can_send_other_messages",
    "can_add_web_page_previews",
    "can_manage_topics",
    "can_send_audios",
    "can_send_documents",
    "can_send_photos",
    "can_send_videos",
    "can_send_video_notes",
    "can_send_voice_notes",
    "can_edit_tag",
)
_COMMAND_NAME = re.compile(r"[a-z0-9_]{1,32}")


class FakeBotAPI:
    """A Telegram Bot API server on 127.0.0.1 that records calls and serves queued updates."""

    retry_after = staticmethod(retry_after)
    forbidden = staticmethod(forbidden)
    chat_migrated = staticmethod(chat_migrated)
    server_error = staticmethod(server_error)
    bad_request = staticmethod(bad_request)

    def __init__(
        self,
        *,
        username: str = DEFAULT_USERNAME,
        bot_id: int = DEFAULT_BOT_ID,
        first_name: str = "News Test Bot",
        token: str | None = None,
        enforce_limits: bool = False,
        latency: float = 0.0,
        admins: Mapping[int, Iterable[int]] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """Configure the fake; ``token`` None accepts any token, else others get 401."""
        self.username = username
        self.bot_id = bot_id
        self.first_name = first_name
        self.token = token
        self.enforce_limits = enforce_limits
        self.latency = latency
        self._clock = clock

        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._async_waiters: dict[int, tuple[asyncio.AbstractEventLoop, asyncio.Event]] = {}

        self._calls: list[Call] = []
        self._failures: list[_FailRule] = []
        self._updates: deque[JSON] = deque()
        self._next_update_id = 1
        self._next_message_id = 1
        self._next_callback_id = 1
        self._allowed_updates: frozenset[str] | None = None
        self._webhook_url: str | None = None
        self._messages: dict[tuple[int | str, int], JSON] = {}
        self._chats: dict[int | str, JSON] = {}
        self._users: dict[int, JSON] = {}
        self._admins: dict[int | str, list[int]] = {}
        self._creators: dict[int | str, int] = {}
        self._commands: dict[str, list[JSON]] = {}
        for chat_id, user_ids in (admins or {}).items():
            self.set_admins(chat_id, user_ids)

        # Rate limiting (server thread only, under the lock).
        self.too_many_requests = 0
        self._global_window: deque[float] = deque()
        self._last_by_chat: dict[int | str, float] = {}
        self._group_windows: dict[int | str, deque[float]] = {}

        # Server thread state.
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._port: int | None = None
        self._startup_error: BaseException | None = None
        self._transports: set[asyncio.Transport] = set()
        self._answer_tasks: set[asyncio.Task[_Answer]] = set()
        self._update_event: asyncio.Event | None = None
        self._poll_generation = 0
        self._polls_waiting = 0

        self._methods: dict[str, tuple[str, Callable[[JSON], Any]]] = {}
        for name, handler in {
            "getMe": self._get_me,
            "getUpdates": self._true,  # placeholder: answered by _get_updates (may wait)
            "logOut": self._true,
            "close": self._true,
            "deleteWebhook": self._delete_webhook,
            "setWebhook": self._set_webhook,
            "getWebhookInfo": self._get_webhook_info,
            "sendMessage": self._send_message,
            "editMessageText": self._edit_message_text,
            "editMessageReplyMarkup": self._edit_message_reply_markup,
            "deleteMessage": self._delete_message,
            "answerCallbackQuery": self._answer_callback_query,
            "sendChatAction": self._send_chat_action,
            "setMyCommands": self._set_my_commands,
            "getMyCommands": self._get_my_commands,
            "deleteMyCommands": self._delete_my_commands,
            "getChat": self._get_chat,
            "getChatMember": self._get_chat_member,
            "getChatAdministrators": self._get_chat_administrators,
        }.items():
            # Telegram matches method names case-insensitively.
            self._methods[name.lower()] = (name, handler)

    # ---------------------------------------------------------------- lifecycle

    def start(self) -> Self:
        """Start serving on an ephemeral 127.0.0.1 port in a background thread."""
        if self._thread is not None:
            raise RuntimeError("FakeBotAPI is already running")
        ready = threading.Event()
        self._thread = threading.Thread(
            target=self._run, args=(ready,), name="fake-bot-api", daemon=True
        )
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("FakeBotAPI did not start within 10 s")
        if self._startup_error is not None:
            self._thread.join()
            self._thread = None
            raise RuntimeError("FakeBotAPI failed to start") from self._startup_error
        return self

    def stop(self) -> None:
        """Close every connection and stop the server thread (idempotent)."""
        thread, loop = self._thread, self._loop
        if thread is None or loop is None:
            return
        with contextlib.suppress(RuntimeError):  # loop already closed
            loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        if thread.is_alive():
            raise RuntimeError("FakeBotAPI server thread did not stop")
        self._thread = None
        self._loop = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    async def __aenter__(self) -> Self:
        # Starting only spawns a thread and binds a socket: milliseconds, fine on the loop.
        return self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _run(self, ready: threading.Event) -> None:
        loop = asyncio.new_event_loop()
        try:
            server = loop.run_until_complete(
                loop.create_server(lambda: _HttpProtocol(self), "127.0.0.1", 0, backlog=1024)
            )
            self._port = server.sockets[0].getsockname()[1]
            self._update_event = asyncio.Event()
        except BaseException as exc:
            self._startup_error = exc
            loop.close()
            ready.set()
            return
        self._loop = loop
        ready.set()
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(self._close_all(server))
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    async def _close_all(self, server: asyncio.Server) -> None:
        """Close the listener and every connection, cancelling pending long polls."""
        server.close()
        for transport in list(self._transports):
            transport.close()  # connection_lost then cancels that connection's pending answer
        for task in list(self._answer_tasks):
            task.cancel()
        await asyncio.gather(*self._answer_tasks, return_exceptions=True)
        await server.wait_closed()
        # asyncio's own accept tasks finish within a few turns; cancelling them logs errors.
        current = asyncio.current_task()
        others = [t for t in asyncio.all_tasks() if t is not current]
        if others:
            _, pending = await asyncio.wait(others, timeout=1.0)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        # One more turn lets the transports' connection_lost callbacks close the sockets.
        await asyncio.sleep(0)
        for transport in list(self._transports):
            transport.close()
        await asyncio.sleep(0)

    @property
    def port(self) -> int:
        """The TCP port the server listens on."""
        if self._port is None:
            raise RuntimeError("FakeBotAPI is not started")
        return self._port

    @property
    def base_url(self) -> str:
        """Value for PTB's ``base_url`` / TELEGRAM_API_BASE_URL (the token is appended)."""
        return f"http://127.0.0.1:{self.port}/bot"

    @property
    def base_file_url(self) -> str:
        """Value for PTB's ``base_file_url`` (file downloads answer 404)."""
        return f"http://127.0.0.1:{self.port}/file/bot"

    @property
    def long_polls_waiting(self) -> int:
        """How many getUpdates requests are currently blocked waiting for updates."""
        return self._polls_waiting

    @property
    def bot_user(self) -> JSON:
        """The bot's own User object as getMe returns it."""
        return {
            "id": self.bot_id,
            "is_bot": True,
            "first_name": self.first_name,
            "username": self.username,
        }

    # ---------------------------------------------------------------- configuration

    def set_admins(
        self, chat_id: int | str, user_ids: Iterable[int], *, creator: int | None = None
    ) -> None:
        """Set which users are administrators (and optionally the creator) of a chat."""
        key = _chat_key(chat_id)
        assert key is not None
        with self._lock:
            self._admins[key] = [int(u) for u in user_ids]
            if creator is not None:
                self._creators[key] = int(creator)

    def fail_next(
        self,
        method: str = "sendMessage",
        chat_id: int | str | None = None,
        times: int | None = 1,
        error: ApiError | None = None,
    ) -> None:
        """Answer the next ``times`` matching calls (None: all until clear()) with ``error``."""
        rule = _FailRule(method, _chat_key(chat_id), times, error or server_error())
        with self._lock:
            self._failures.append(rule)

    def clear(self) -> None:
        """Forget recorded calls, pending failures, rate-limit history and the 429 count."""
        with self._lock:
            self._calls.clear()
            self._failures.clear()
            self._global_window.clear()
            self._last_by_chat.clear()
            self._group_windows.clear()
            self.too_many_requests = 0

    # ---------------------------------------------------------------- recordings

    def calls(self, method: str | None = None) -> list[Call]:
        """Recorded calls, oldest first, optionally only one method."""
        with self._lock:
            return [c for c in self._calls if method is None or c.method == method]

    def sent_messages(self, chat_id: int | str | None = None) -> list[SentMessage]:
        """Successful sendMessage and editMessageText calls, optionally for one chat."""
        key = _chat_key(chat_id)
        with self._lock:
            calls = list(self._calls)
        return [
            _as_sent(c)
            for c in calls
            if c.method in _SENT_METHODS and c.ok and (key is None or _call_chat(c) == key)
        ]

    def pending_updates(self) -> list[JSON]:
        """Updates queued but not yet confirmed by a getUpdates offset."""
        with self._lock:
            return [json.loads(json.dumps(u)) for u in self._updates]

    def wait_for(
        self,
        predicate_or_method: str | Callable[[Call], bool],
        count: int = 1,
        timeout: float = 5.0,
    ) -> list[Call]:
        """Block this thread until ``count`` matching calls are recorded; return them all.

        Do not call it from the event loop that runs the bot: use ``wait_for_async`` there.
        """
        matches = _matcher(predicate_or_method)
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                found = [c for c in self._calls if matches(c)]
                if len(found) >= count:
                    return found
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(self._timeout_message(predicate_or_method, count, found))
                self._changed.wait(remaining)

    async def wait_for_async(
        self,
        predicate_or_method: str | Callable[[Call], bool],
        count: int = 1,
        timeout: float = 5.0,  # noqa: ASYNC109 -- same signature as wait_for, on purpose
    ) -> list[Call]:
        """Like ``wait_for`` but awaits without blocking the running event loop."""
        matches = _matcher(predicate_or_method)
        found: list[Call] = []

        def enough() -> list[Call] | None:
            found[:] = [c for c in self._calls if matches(c)]
            return list(found) if len(found) >= count else None

        return await self._until(
            enough,
            timeout,
            lambda: self._timeout_message(predicate_or_method, count, found),
        )

    async def wait_until_polling(
        self,
        timeout: float = 5.0,  # noqa: ASYNC109 -- mirrors wait_for
    ) -> None:
        """Await until a getUpdates long poll is parked on the server (the bot is polling)."""
        await self._until(
            lambda: True if self._polls_waiting else None,
            timeout,
            lambda: f"no getUpdates long poll within {timeout} s",
        )

    async def _until(
        self, check: Callable[[], _T | None], seconds: float, describe: Callable[[], str]
    ) -> _T:
        """Await until ``check()`` (run under the lock) returns non-None; return that value."""
        loop = asyncio.get_running_loop()
        event = asyncio.Event()
        token = id(event)
        with self._lock:
            self._async_waiters[token] = (loop, event)
        try:
            deadline = loop.time() + seconds
            while True:
                event.clear()
                with self._lock:
                    value = check()
                    if value is not None:
                        return value
                    remaining = deadline - loop.time()
                    if remaining <= 0:
                        raise TimeoutError(describe())
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(event.wait(), remaining)
        finally:
            with self._lock:
                self._async_waiters.pop(token, None)

    async def wait_for_messages(
        self,
        n: int = 1,
        *,
        chat_id: int | str | None = None,
        timeout: float = 5.0,  # noqa: ASYNC109 -- the tests' natural spelling
    ) -> list[SentMessage]:
        """Await until ``n`` messages were sent or edited (to ``chat_id``); return them all."""
        key = _chat_key(chat_id)

        def sent(call: Call) -> bool:
            return (
                call.method in _SENT_METHODS
                and call.ok
                and (key is None or _call_chat(call) == key)
            )

        calls = await self.wait_for_async(sent, n, timeout)
        return [_as_sent(c) for c in calls]

    def _timeout_message(
        self, what: str | Callable[[Call], bool], count: int, found: list[Call]
    ) -> str:
        seen = [f"{c.method}({c.status})" for c in self._calls[-20:]]
        name = what if isinstance(what, str) else getattr(what, "__name__", "predicate")
        return f"waited for {count} x {name}, got {len(found)}; last calls: {seen}"

    def _record(self, method: str, params: JSON, status: int, body: JSON) -> None:
        """Store one call and wake waiters; caller holds the lock."""
        self._calls.append(Call(method, params, time.time(), status, body))
        self._notify()

    def _notify(self) -> None:
        """Wake sync and async waiters; caller holds the lock."""
        self._changed.notify_all()
        for loop, event in self._async_waiters.values():
            with contextlib.suppress(RuntimeError):  # the waiter's loop is closed
                loop.call_soon_threadsafe(event.set)

    # ---------------------------------------------------------------- update injection

    def push_update(self, update: Mapping[str, Any]) -> int:
        """Queue an update for getUpdates (assigning update_id if absent); return its id."""
        copy: JSON = json.loads(json.dumps(dict(update)))
        with self._lock:
            if "update_id" not in copy:
                copy["update_id"] = self._next_update_id
            self._next_update_id = max(self._next_update_id, int(copy["update_id"]) + 1)
            self._updates.append(copy)
        loop = self._loop
        if loop is not None:
            with contextlib.suppress(RuntimeError):  # server stopping
                loop.call_soon_threadsafe(self._wake_pollers)
        return int(copy["update_id"])

    def message(
        self,
        text: str,
        chat_id: int,
        *,
        user_id: int | None = None,
        chat_type: str | None = None,
        username: str | None = None,
        first_name: str = "Test",
        chat_title: str | None = None,
        entities: list[JSON] | None = None,
    ) -> int:
        """Queue a user's text message (bot_command entities included); return update_id."""
        chat = self._remember_chat(chat_id, chat_type, chat_title, username, first_name)
        if user_id is None:
            user_id = chat_id if chat["type"] == "private" else 1
        user = self._remember_user(user_id, username, first_name)
        with self._lock:
            message_id = self._take_message_id()
        message: JSON = {
            "message_id": message_id,
            "from": user,
            "chat": chat,
            "date": int(time.time()),
            "text": text,
        }
        found = command_entities(text) if entities is None else entities
        if found:
            message["entities"] = found
        return self.push_update({"message": message})

    def callback_query(
        self,
        data: str,
        chat_id: int,
        message_id: int,
        user_id: int | None = None,
        *,
        username: str | None = None,
        first_name: str = "Test",
    ) -> int:
        """Queue a button press on a bot message; return update_id."""
        chat = self._chat_object(chat_id)
        if user_id is None:
            user_id = chat_id if chat["type"] == "private" else 1
        user = self._remember_user(user_id, username, first_name)
        key = _chat_key(chat_id)
        assert key is not None
        with self._lock:
            stored = self._messages.get((key, message_id))
            query_id = str(self._next_callback_id)
            self._next_callback_id += 1
        message = stored or {
            "message_id": message_id,
            "from": self.bot_user,
            "chat": chat,
            "date": int(time.time()),
            "text": "",
        }
        return self.push_update(
            {
                "callback_query": {
                    "id": query_id,
                    "from": user,
                    "message": message,
                    "chat_instance": str(abs(chat_id)),
                    "data": data,
                }
            }
        )

    def my_chat_member(
        self,
        chat_id: int,
        user_id: int,
        old_status: str,
        new_status: str,
        *,
        chat_type: str | None = None,
        chat_title: str | None = None,
    ) -> int:
        """Queue a change of the bot's own membership made by ``user_id``; return update_id."""
        chat = self._remember_chat(chat_id, chat_type, chat_title, None, "Test")
        user = self._remember_user(user_id, None, "Test")
        new = _MEMBER_STATUS_ALIASES.get(new_status, new_status)
        key = _chat_key(chat_id)
        assert key is not None
        with self._lock:
            # Keep getChatMember consistent with what the update told the bot.
            admins = self._admins.setdefault(key, [])
            if new in ("administrator", "creator") and self.bot_id not in admins:
                admins.append(self.bot_id)
            elif new not in ("administrator", "creator") and self.bot_id in admins:
                admins.remove(self.bot_id)
        return self.push_update(
            {
                "my_chat_member": {
                    "chat": chat,
                    "from": user,
                    "date": int(time.time()),
                    "old_chat_member": _member(self.bot_user, old_status),
                    "new_chat_member": _member(self.bot_user, new_status),
                }
            }
        )

    def _take_message_id(self) -> int:
        message_id = self._next_message_id
        self._next_message_id += 1
        return message_id

    def _remember_user(self, user_id: int, username: str | None, first_name: str) -> JSON:
        user: JSON = {"id": user_id, "is_bot": False, "first_name": first_name}
        if username:
            user["username"] = username
        with self._lock:
            self._users[user_id] = user
        return user

    def _remember_chat(
        self,
        chat_id: int,
        chat_type: str | None,
        title: str | None,
        username: str | None,
        first_name: str,
    ) -> JSON:
        kind = chat_type or _infer_chat_type(chat_id)
        chat: JSON = {"id": chat_id, "type": kind}
        if kind == "private":
            chat["first_name"] = first_name
            if username:
                chat["username"] = username
        else:
            chat["title"] = title or f"Chat {chat_id}"
        with self._lock:
            self._chats[chat_id] = chat
        return chat

    def _chat_object(self, chat_id: int | str) -> JSON:
        key = _chat_key(chat_id)
        assert key is not None
        with self._lock:
            return self._known_chat(key)

    def _known_chat(self, key: int | str) -> JSON:
        """The chat object for an id (synthesised if unseen); caller holds the lock."""
        chat = self._chats.get(key)
        if chat is not None:
            return chat
        if isinstance(key, str):
            for known in self._chats.values():
                if known.get("username") and f"@{known['username']}" == key:
                    return known
            raise _bad("chat not found")
        kind = _infer_chat_type(key)
        chat = {"id": key, "type": kind}
        if kind == "private":
            chat["first_name"] = f"User {key}"
        else:
            chat["title"] = f"Chat {key}"
        self._chats[key] = chat
        return chat

    # ---------------------------------------------------------------- request handling

    def _serve(self, request: _Request) -> _Answer | Coroutine[Any, Any, _Answer]:
        """Answer one HTTP request, immediately or through a coroutine (long poll, latency)."""
        split = urlsplit(request.target)
        parts = unquote(split.path).split("/")
        if len(parts) != 3 or not parts[1].startswith("bot") or not parts[2]:
            return self._delayed((404, _encode(_NOT_FOUND.body())))
        token, raw_method = parts[1][3:], parts[2]
        try:
            params = self._parse_params(request, split.query)
        except (ValueError, UnicodeDecodeError) as exc:
            return self._delayed((400, _encode(bad_request(f"can't parse request: {exc}").body())))
        method, handler = self._methods.get(raw_method.lower(), (raw_method, None))
        with self._lock:
            error = self._take_failure(method, params)
            if error is None and self.token is not None and token != self.token:
                error = _UNAUTHORIZED
            if error is None and handler is None:
                error = _NOT_FOUND
            if error is None and handler is not None and method != "getUpdates":
                try:
                    return self._delayed(self._answer(method, params, 200, _ok(handler(params))))
                except _Reject as reject:
                    error = reject.error
                    if error.status == 429:
                        self.too_many_requests += 1
                except (ValueError, TypeError, KeyError, AttributeError) as exc:
                    # Malformed parameters: Telegram answers 400, never a dropped connection.
                    error = bad_request(f"invalid parameters: {exc}")
            if error is not None:
                return self._delayed(self._answer(method, params, error.status, error.body()))
        return self._delayed(self._get_updates(params))

    def _answer(self, method: str, params: JSON, status: int, body: JSON) -> _Answer:
        """Record and encode an answer; caller holds the lock."""
        self._record(method, params, status, body)
        if status >= 400:
            logger.debug("fake Bot API %s -> %s %s", method, status, body.get("description"))
        return status, _encode(body)

    def _delayed(
        self, answer: _Answer | Coroutine[Any, Any, _Answer]
    ) -> _Answer | Coroutine[Any, Any, _Answer]:
        """Apply the configured latency to an immediate answer (long polls apply it themselves)."""
        if self.latency <= 0 or not isinstance(answer, tuple):
            return answer
        return self._later(answer)

    async def _later(self, answer: _Answer) -> _Answer:
        await asyncio.sleep(self.latency)
        return answer

    @staticmethod
    def _parse_params(request: _Request, query: str) -> JSON:
        pairs: list[tuple[str, Any]] = parse_qsl(query, keep_blank_values=True)
        content_type = request.headers.get("content-type", "")
        kind = content_type.split(";")[0].strip().lower()
        if request.body:
            if kind == "application/json":
                decoded = json.loads(request.body)
                if not isinstance(decoded, dict):
                    raise ValueError("JSON body must be an object")
                pairs.extend(decoded.items())
            elif kind == "multipart/form-data":
                pairs.extend(_parse_multipart(request.body, content_type))
            else:
                pairs.extend(parse_qsl(request.body.decode("utf-8"), keep_blank_values=True))
        return _decode_params(pairs)

    def _take_failure(self, method: str, params: JSON) -> ApiError | None:
        """Consume the first matching injected failure; caller holds the lock."""
        for rule in self._failures:
            if rule.method.lower() != method.lower():
                continue
            if rule.chat_id is not None and _chat_key(params.get("chat_id")) != rule.chat_id:
                continue
            if rule.remaining is not None:
                rule.remaining -= 1
                if rule.remaining <= 0:
                    self._failures.remove(rule)
            if rule.error.status == 429:
                self.too_many_requests += 1
            return rule.error
        return None

    # ---------------------------------------------------------------- getUpdates

    def _get_updates(self, params: JSON) -> _Answer | Coroutine[Any, Any, _Answer]:
        # A newer getUpdates terminates an older pending one, as on Telegram.
        self._poll_generation += 1
        generation = self._poll_generation
        self._wake_pollers()
        timeout = float(params.get("timeout") or 0)
        with self._lock:
            try:
                updates = self._collect_updates(params)
            except _Reject as reject:
                return self._answer("getUpdates", params, reject.error.status, reject.error.body())
            if updates or timeout <= 0:
                return self._answer("getUpdates", params, 200, _ok(updates))
        return self._long_poll(params, timeout, generation)

    async def _long_poll(self, params: JSON, seconds: float, generation: int) -> _Answer:
        with self._lock:
            self._polls_waiting += 1
            self._notify()
        try:
            answer = await self._wait_for_updates(params, seconds, generation)
        finally:
            with self._lock:
                self._polls_waiting -= 1
        if self.latency > 0:
            await asyncio.sleep(self.latency)
        return answer

    async def _wait_for_updates(self, params: JSON, seconds: float, generation: int) -> _Answer:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        while True:
            event = self._update_event
            assert event is not None
            remaining = deadline - loop.time()
            if remaining > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(event.wait(), remaining)
            with self._lock:
                if generation != self._poll_generation:
                    error = ApiError(
                        409,
                        "Conflict: terminated by other getUpdates request; "
                        "make sure that only one bot instance is running",
                    )
                    return self._answer("getUpdates", params, 409, error.body())
                try:
                    updates = self._collect_updates(params)
                except _Reject as reject:
                    return self._answer(
                        "getUpdates", params, reject.error.status, reject.error.body()
                    )
                if updates or loop.time() >= deadline:
                    return self._answer("getUpdates", params, 200, _ok(updates))

    def _wake_pollers(self) -> None:
        """Wake every pending long poll (server thread only)."""
        if self._update_event is not None:
            self._update_event.set()
            self._update_event = asyncio.Event()

    def _collect_updates(self, params: JSON) -> list[JSON]:
        """Confirm updates below ``offset`` and return the next batch; caller holds the lock."""
        if self._webhook_url:
            raise _Reject(
                ApiError(
                    409,
                    "Conflict: can't use getUpdates method while webhook is active; "
                    "use deleteWebhook to delete the webhook first",
                )
            )
        offset = int(params.get("offset") or 0)
        if offset > 0:
            while self._updates and self._updates[0]["update_id"] < offset:
                self._updates.popleft()
        elif offset < 0:
            while len(self._updates) > -offset:
                self._updates.popleft()
        allowed = params.get("allowed_updates")
        if isinstance(allowed, list):
            # Telegram remembers the last allowed_updates; [] means the default set.
            self._allowed_updates = frozenset(str(a) for a in allowed) or None
        limit = min(max(int(params.get("limit") or 100), 1), 100)
        batch: list[JSON] = []
        for update in self._updates:
            kind = next((k for k in update if k != "update_id"), "")
            wanted = (
                kind in self._allowed_updates
                if self._allowed_updates is not None
                else kind not in _OPT_IN_UPDATES
            )
            if wanted:
                batch.append(update)
                if len(batch) >= limit:
                    break
        return batch

    # ---------------------------------------------------------------- methods
    # Each handler runs on the server thread with the lock held and returns the result.

    def _true(self, params: JSON) -> bool:
        return True

    def _get_me(self, params: JSON) -> JSON:
        return {
            **self.bot_user,
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
        }

    def _delete_webhook(self, params: JSON) -> bool:
        self._webhook_url = None
        if params.get("drop_pending_updates") is True:
            self._updates.clear()
        return True

    def _set_webhook(self, params: JSON) -> bool:
        url = str(params.get("url") or "")
        if url and not url.startswith("https://"):
            raise _bad("bad webhook: An HTTPS URL must be provided for webhook")
        self._webhook_url = url or None
        if params.get("drop_pending_updates") is True:
            self._updates.clear()
        return True

    def _get_webhook_info(self, params: JSON) -> JSON:
        return {
            "url": self._webhook_url or "",
            "has_custom_certificate": False,
            "pending_update_count": len(self._updates),
        }

    def _require_chat(self, params: JSON) -> int | str:
        key = _chat_key(params.get("chat_id"))
        if key is None or key == "":
            raise _bad("chat_id is empty")
        return key

    def _render(self, params: JSON) -> tuple[str, list[JSON] | None]:
        """Turn text + parse_mode/entities into what the user sees, validating like Telegram."""
        raw = params.get("text")
        text = "" if raw is None else str(raw)
        parse_mode = str(params.get("parse_mode") or "")
        given = params.get("entities")
        if parse_mode.lower() == "html":
            plain, entities = parse_html(text)
        elif isinstance(given, list) and given:
            plain, entities = text, given
        else:
            plain, entities = _strip_text(text, [])
        if not plain:
            raise _bad("message text is empty")
        if len(plain) > MAX_TEXT_LENGTH:
            raise _bad("message is too long")
        return plain, entities or None

    def _markup(self, params: JSON) -> JSON | None:
        """Validate reply_markup; return it when it is an inline keyboard (echoed back)."""
        markup = params.get("reply_markup")
        if markup is None:
            return None
        if not isinstance(markup, dict):
            raise _bad("can't parse reply keyboard markup JSON object")
        keyboard = markup.get("inline_keyboard")
        if keyboard is None:
            if not any(k in markup for k in ("keyboard", "remove_keyboard", "force_reply")):
                raise _bad("can't parse reply keyboard markup JSON object")
            return None
        if not isinstance(keyboard, list) or not all(isinstance(r, list) for r in keyboard):
            raise _bad('field "inline_keyboard" of the InlineKeyboardMarkup must be an Array')
        for row in keyboard:
            for button in row:
                if not isinstance(button, dict) or not button.get("text"):
                    raise _bad("can't parse inline keyboard button: Text buttons are unallowed")
                actions = set(button) - {"text", "style", "icon_custom_emoji_id"}
                if not actions:
                    raise _bad("can't parse inline keyboard button: Text buttons are unallowed")
                if "callback_data" in button:
                    data = str(button["callback_data"]).encode("utf-8")
                    if not 1 <= len(data) <= MAX_CALLBACK_DATA_BYTES:
                        raise _bad("BUTTON_DATA_INVALID")
                if "url" in button and not re.match(r"(https?|tg)://", str(button["url"])):
                    raise _bad("BUTTON_URL_INVALID")
        return markup

    def _check_limits(self, chat: int | str) -> None:
        """Apply Telegram's broadcast limits to one sendMessage; raise a 429 if exceeded."""
        now = self._clock()
        window = self._global_window
        while window and window[0] <= now - 1.0:
            window.popleft()
        wait = 0.0
        if len(window) >= GLOBAL_PER_SECOND:
            wait = max(wait, window[len(window) - GLOBAL_PER_SECOND] + 1.0 - now)
        last = self._last_by_chat.get(chat)
        if last is not None and now - last < CHAT_INTERVAL_SECONDS:
            wait = max(wait, last + CHAT_INTERVAL_SECONDS - now)
        group: deque[float] | None = None
        if isinstance(chat, int) and chat < 0:
            group = self._group_windows.setdefault(chat, deque())
            while group and group[0] <= now - 60.0:
                group.popleft()
            if len(group) >= GROUP_PER_MINUTE:
                wait = max(wait, group[len(group) - GROUP_PER_MINUTE] + 60.0 - now)
        if wait > 0:
            # Rounded up so that a client honouring retry_after is then accepted.
            raise _Reject(retry_after(max(1, math.ceil(wait))))
        window.append(now)
        self._last_by_chat[chat] = now
        if group is not None:
            group.append(now)

    def _send_message(self, params: JSON) -> JSON:
        key = self._require_chat(params)
        chat = self._known_chat(key)
        plain, entities = self._render(params)
        markup = self._markup(params)
        if self.enforce_limits:
            self._check_limits(chat["id"])
        message: JSON = {
            "message_id": self._take_message_id(),
            "from": self.bot_user,
            "chat": chat,
            "date": int(time.time()),
            "text": plain,
        }
        if entities:
            message["entities"] = entities
        if markup is not None:
            message["reply_markup"] = markup
        self._messages[(chat["id"], message["message_id"])] = message
        return message

    def _target_message(self, params: JSON) -> tuple[tuple[int | str, int], JSON] | None:
        """The stored message an edit addresses (created if unknown); None for inline ones."""
        if params.get("inline_message_id"):
            return None
        key = self._require_chat(params)
        message_id = params.get("message_id")
        if not isinstance(message_id, int):
            raise _bad("message identifier is not specified")
        chat = self._known_chat(key)
        slot = (chat["id"], message_id)
        stored = self._messages.get(slot)
        if stored is None:
            # Lenient on purpose: tests may edit a message the fake never saw being sent.
            stored = {
                "message_id": message_id,
                "from": self.bot_user,
                "chat": chat,
                "date": int(time.time()),
                "text": "",
            }
        return slot, stored

    def _store_edit(self, slot: tuple[int | str, int], old: JSON, new: JSON) -> JSON:
        if all(old.get(k) == new.get(k) for k in ("text", "entities", "reply_markup")):
            raise _bad(
                "message is not modified: specified new message content and reply markup are "
                "exactly the same as a current content and reply markup of the message"
            )
        new["edit_date"] = int(time.time())
        self._messages[slot] = new
        return new

    def _edit_message_text(self, params: JSON) -> JSON | bool:
        plain, entities = self._render(params)
        markup = self._markup(params)
        target = self._target_message(params)
        if target is None:
            return True
        slot, old = target
        new = {k: v for k, v in old.items() if k not in ("entities", "reply_markup")}
        new["text"] = plain
        if entities:
            new["entities"] = entities
        if markup is not None:
            # Without reply_markup Telegram removes the inline keyboard.
            new["reply_markup"] = markup
        return self._store_edit(slot, old, new)

    def _edit_message_reply_markup(self, params: JSON) -> JSON | bool:
        markup = self._markup(params)
        target = self._target_message(params)
        if target is None:
            return True
        slot, old = target
        new = {k: v for k, v in old.items() if k != "reply_markup"}
        if markup is not None:
            new["reply_markup"] = markup
        return self._store_edit(slot, old, new)

    def _delete_message(self, params: JSON) -> bool:
        key = self._require_chat(params)
        chat = self._known_chat(key)
        self._messages.pop((chat["id"], int(params.get("message_id") or 0)), None)
        return True

    def _answer_callback_query(self, params: JSON) -> bool:
        if not params.get("callback_query_id"):
            raise _bad("query is too old and response timeout expired or query ID is invalid")
        if len(str(params.get("text") or "")) > 200:
            raise _bad("MESSAGE_TOO_LONG")
        return True

    def _send_chat_action(self, params: JSON) -> bool:
        self._known_chat(self._require_chat(params))
        if not params.get("action"):
            raise _bad("action is empty")
        return True

    @staticmethod
    def _commands_key(params: JSON) -> str:
        scope = params.get("scope") or {"type": "default"}
        return json.dumps([scope, params.get("language_code") or ""], sort_keys=True)

    def _set_my_commands(self, params: JSON) -> bool:
        commands = params.get("commands")
        if not isinstance(commands, list) or len(commands) > 100:
            raise _bad("can't parse commands JSON object")
        for command in commands:
            if not isinstance(command, dict):
                raise _bad("can't parse BotCommand")
            if not _COMMAND_NAME.fullmatch(str(command.get("command", ""))):
                raise _bad("BOT_COMMAND_INVALID")
            if not 1 <= len(str(command.get("description", ""))) <= 256:
                raise _bad("BOT_COMMAND_DESCRIPTION_INVALID")
        self._commands[self._commands_key(params)] = [
            {"command": c["command"], "description": c["description"]} for c in commands
        ]
        return True

    def _get_my_commands(self, params: JSON) -> list[JSON]:
        return list(self._commands.get(self._commands_key(params), []))

    def _delete_my_commands(self, params: JSON) -> bool:
        self._commands.pop(self._commands_key(params), None)
        return True

    def _get_chat(self, params: JSON) -> JSON:
        chat = self._known_chat(self._require_chat(params))
        return {
            **chat,
            "accent_color_id": 0,
            "max_reaction_count": 11,
            "accepted_gift_types": {
                "unlimited_gifts": False,
                "limited_gifts": False,
                "unique_gifts": False,
                "premium_subscription": False,
                "gifts_from_channels": False,
            },
        }

    def _user(self, user_id: int) -> JSON:
        if user_id == self.bot_id:
            return self.bot_user
        return self._users.get(user_id) or {
            "id": user_id,
            "is_bot": False,
            "first_name": f"User {user_id}",
        }

    def _status_of(self, chat: JSON, user_id: int) -> str:
        if self._creators.get(chat["id"]) == user_id:
            return "creator"
        if user_id in self._admins.get(chat["id"], ()):
            return "administrator"
        return "member"

    def _get_chat_member(self, params: JSON) -> JSON:
        chat = self._known_chat(self._require_chat(params))
        user_id = params.get("user_id")
        if not isinstance(user_id, int):
            raise _bad("invalid user_id specified")
        return _member(self._user(user_id), self._status_of(chat, user_id))

    def _get_chat_administrators(self, params: JSON) -> list[JSON]:
        chat = self._known_chat(self._require_chat(params))
        if chat["type"] == "private":
            raise _bad("there are no administrators in the private chat")
        members: list[JSON] = []
        creator = self._creators.get(chat["id"])
        if creator is not None:
            members.append(_member(self._user(creator), "creator"))
        for user_id in self._admins.get(chat["id"], ()):
            if user_id != creator:
                members.append(_member(self._user(user_id), "administrator"))
        return members


def _infer_chat_type(chat_id: int | str) -> str:
    if isinstance(chat_id, str):
        return "channel"
    if chat_id > 0:
        return "private"
    return "supergroup" if str(chat_id).startswith("-100") else "group"


def _member(user: JSON, status: str) -> JSON:
    """A ChatMember object of the given status with every field PTB requires."""
    status = _MEMBER_STATUS_ALIASES.get(status, status)
    member: JSON = {"user": user, "status": status}
    if status == "creator":
        member["is_anonymous"] = False
    elif status == "administrator":
        member.update({"can_be_edited": False, "is_anonymous": False})
        member.update(dict.fromkeys(_ADMIN_RIGHTS, True))
    elif status == "restricted":
        member.update({"is_member": True, "until_date": 0})
        member.update(dict.fromkeys(_RESTRICTED_RIGHTS, False))
    elif status == "kicked":
        member["until_date"] = 0
    elif status not in ("member", "left"):
        raise ValueError(f"unknown chat member status {status!r}")
    return member


def _matcher(what: str | Callable[[Call], bool]) -> Callable[[Call], bool]:
    if isinstance(what, str):
        return lambda call: call.method == what
    return what


def _call_chat(call: Call) -> int | str | None:
    result = call.result
    if isinstance(result, dict) and isinstance(result.get("chat"), dict):
        return _chat_key(result["chat"]["id"])
    return _chat_key(call.params.get("chat_id"))


def _as_sent(call: Call) -> SentMessage:
    result = call.result if isinstance(call.result, dict) else {}
    markup = call.params.get("reply_markup")
    return SentMessage(
        method=call.method,
        chat_id=_call_chat(call),
        message_id=result.get("message_id", call.params.get("message_id")),
        text=str(call.params.get("text", "")),
        plain_text=str(result.get("text", call.params.get("text", ""))),
        parse_mode=call.params.get("parse_mode"),
        reply_markup=markup if isinstance(markup, dict) else None,
        params=call.params,
        time=call.time,
    )
