"""The terminal chat transport: the real Application and handlers, with a BaseRequest that
answers the Bot API locally and prints what the bot would send."""

from __future__ import annotations

import asyncio
import html
import itertools
import json
import re
import sys
import time
from collections.abc import Callable
from typing import Any

from telegram import Update
from telegram.request import BaseRequest, RequestData

from bot.app import build_application
from bot.config import Settings
from handlers.context import NewsApp

CHAT_ID = 1
USER_ID = 1
BOT_ID = 1
BOT_USERNAME = "newsbot"

_TAG = re.compile(r"<[^>]+>")
_LINK = re.compile(r'<a href="([^"]*)">(.*?)</a>', re.S)


def html_to_text(text: str) -> str:
    """What an HTML message looks like as plain terminal text."""
    text = _LINK.sub(lambda m: f"{m.group(2)} <{m.group(1)}>", text)
    return html.unescape(_TAG.sub("", text))


class ConsoleRequest(BaseRequest):
    """Answers the Bot API calls the bot makes, printing the messages it sends."""

    def __init__(self, write: Callable[[str], None] = print) -> None:
        self._write = write
        self._message_ids = itertools.count(1)
        self.buttons: list[dict[str, Any]] = []
        self.sent: list[dict[str, Any]] = []

    @property
    def read_timeout(self) -> float | None:
        """No network, so no timeout."""
        return None

    async def initialize(self) -> None:
        """Nothing to open."""

    async def shutdown(self) -> None:
        """Nothing to close."""

    async def do_request(
        self,
        url: str,
        method: str,
        request_data: RequestData | None = None,
        read_timeout: Any = None,
        write_timeout: Any = None,
        connect_timeout: Any = None,
        pool_timeout: Any = None,
    ) -> tuple[int, bytes]:
        """Answer one Bot API call as Telegram would."""
        api_method = url.rsplit("/", 1)[-1]
        params = request_data.parameters if request_data else {}
        result: Any = True
        if api_method == "getMe":
            result = {
                "id": BOT_ID,
                "is_bot": True,
                "first_name": "newsbot",
                "username": BOT_USERNAME,
            }
        elif api_method in ("sendMessage", "editMessageText"):
            result = self._show(api_method, params)
        elif api_method == "answerCallbackQuery" and params.get("text"):
            self._write(f"  ({params['text']})")
        elif api_method == "getUpdates":
            result = []
        return 200, json.dumps({"ok": True, "result": result}).encode()

    def _show(self, api_method: str, params: dict[str, Any]) -> dict[str, Any]:
        self.sent.append({"method": api_method, **params})
        text = str(params.get("text", ""))
        markup = params.get("reply_markup")
        if isinstance(markup, str):
            markup = json.loads(markup)
        rows = (markup or {}).get("inline_keyboard", [])
        self.buttons = [button for row in rows for button in row]
        lines = [html_to_text(text)]
        if self.buttons:
            lines.append("  ".join(_button_label(n, b) for n, b in enumerate(self.buttons, 1)))
        prefix = "(edited) " if api_method == "editMessageText" else ""
        self._write(f"\n{prefix}" + "\n".join(lines) + "\n")
        message_id = int(params.get("message_id") or next(self._message_ids))
        return {
            "message_id": message_id,
            "date": int(time.time()),
            "chat": {"id": CHAT_ID, "type": "private"},
            "text": html_to_text(text),
        }


def _button_label(number: int, button: dict[str, Any]) -> str:
    if "url" in button:
        return f"[{button['text']}: {button['url']}]"
    return f"[#{number} {button['text']}]"


def build_console_application(
    settings: Settings, write: Callable[[str], None] = print
) -> tuple[NewsApp, ConsoleRequest]:
    """The bot's Application on the terminal transport: no Telegram, no rate limits, no
    jobs; returns it with the request that prints (and records) what it sends."""
    request = ConsoleRequest(write)
    app = build_application(
        settings,
        request=request,
        get_updates_request=ConsoleRequest(write),
        rate_limits=False,
        jobs=False,
    )
    return app, request


class ConsoleChat:
    """Turns what a person types into Updates for the Application."""

    def __init__(self, app: NewsApp, request: ConsoleRequest) -> None:
        self.app = app
        self.request = request
        self._update_ids = itertools.count(1)
        self._message_ids = itertools.count(10_000)

    async def send(self, text: str) -> None:
        """Deliver `text` as if the reader typed it; `#N` presses button N."""
        text = text.strip()
        if re.fullmatch(r"#\d{1,2}", text):
            await self._press(int(text[1:]))
            return
        message: dict[str, Any] = {
            "message_id": next(self._message_ids),
            "date": int(time.time()),
            "chat": {"id": CHAT_ID, "type": "private", "first_name": "You"},
            "from": {"id": USER_ID, "is_bot": False, "first_name": "You"},
            "text": text,
        }
        if text.startswith("/"):
            length = len(text.split(maxsplit=1)[0])
            message["entities"] = [{"type": "bot_command", "offset": 0, "length": length}]
        await self._process({"update_id": next(self._update_ids), "message": message})

    async def _press(self, number: int) -> None:
        buttons = self.request.buttons
        if not 1 <= number <= len(buttons) or "callback_data" not in buttons[number - 1]:
            print(f"There is no button #{number} on the last message.")
            return
        sent = self.request.sent[-1]
        update = {
            "update_id": next(self._update_ids),
            "callback_query": {
                "id": str(next(self._update_ids)),
                "from": {"id": USER_ID, "is_bot": False, "first_name": "You"},
                "chat_instance": "console",
                "data": buttons[number - 1]["callback_data"],
                "message": {
                    "message_id": int(sent.get("message_id") or 1),
                    "date": int(time.time()),
                    "chat": {"id": CHAT_ID, "type": "private"},
                    "text": html_to_text(str(sent.get("text", ""))),
                },
            },
        }
        await self._process(update)

    async def _process(self, data: dict[str, Any]) -> None:
        update = Update.de_json(data, self.app.bot)
        await self.app.process_update(update)

    async def interact(self) -> None:
        """Read lines until EOF or /quit, answering each."""
        print("Type a command (/help, /latest, /search WORDS, /read ID) or words to search;")
        print("#N presses button N of the last message; /quit or Ctrl-D leaves.")
        while True:
            try:
                line = await asyncio.to_thread(input, "you> ")
            except EOFError:
                print()
                return
            if line.strip() in ("/quit", "/exit"):
                return
            if line.strip():
                await self.send(line)
                sys.stdout.flush()
