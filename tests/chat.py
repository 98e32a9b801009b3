"""A reader talking to the bot through the fake Bot API server."""

from __future__ import annotations

from tests.fakes.botapi import FakeBotAPI, SentMessage


class Reader:
    """Sends messages and button presses as one Telegram user, and collects the replies."""

    def __init__(
        self,
        api: FakeBotAPI,
        chat_id: int,
        *,
        user_id: int | None = None,
        chat_type: str = "private",
    ) -> None:
        self.api = api
        self.chat_id = chat_id
        self.user_id = user_id if user_id is not None else chat_id
        self.chat_type = chat_type

    def _count(self) -> int:
        return len(self.api.sent_messages(self.chat_id))

    async def _collect(self, before: int, replies: int) -> list[SentMessage]:
        sent = await self.api.wait_for_messages(before + replies, chat_id=self.chat_id, timeout=10)
        return sent[before:]

    async def say(self, text: str, replies: int = 1) -> list[SentMessage]:
        """Send `text` and wait for `replies` messages back; return them."""
        before = self._count()
        self.api.message(text, self.chat_id, user_id=self.user_id, chat_type=self.chat_type)
        return await self._collect(before, replies)

    async def ask(self, text: str) -> str:
        """Send `text` and return the plain text of the single reply."""
        [reply] = await self.say(text)
        return reply.plain_text

    async def press(self, message: SentMessage, label: str, replies: int = 1) -> list[SentMessage]:
        """Press the inline button labelled `label` under `message`."""
        assert message.reply_markup is not None, "the message has no buttons"
        buttons = [b for row in message.reply_markup["inline_keyboard"] for b in row]
        [button] = [b for b in buttons if b["text"] == label]
        before = self._count()
        assert message.message_id is not None
        self.api.callback_query(
            button["callback_data"], self.chat_id, message.message_id, self.user_id
        )
        return await self._collect(before, replies)
