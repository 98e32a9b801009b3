"""The typed context every handler receives, and the state shared through bot_data."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from telegram.ext import Application, CallbackContext, ExtBot

from bot.related import RelatedStories
from news.fetch import Fetcher
from storage import Store

# The bot_data.extras key of a test's clock (see BotData.now).
CLOCK = "clock"


@dataclass
class LongReplies:
    """Full texts on their way to chats, sent in the background one after another per
    chat, and what each carries: (chat, story, part) pending, so a second tap does not send
    it again."""

    pending: set[tuple[int, int, int]] = field(default_factory=set)
    turns: dict[int, asyncio.Lock] = field(default_factory=dict)

    def turn(self, chat_id: int) -> asyncio.Lock:
        """The chat's lock: its long replies take it in the order they were asked for."""
        lock = self.turns.get(chat_id)
        if lock is None:
            lock = self.turns[chat_id] = asyncio.Lock()
        return lock

    def release(self, chat_id: int) -> None:
        """Forget the chat's lock once none of its long replies is pending."""
        if not any(pending[0] == chat_id for pending in self.pending):
            self.turns.pop(chat_id, None)


@dataclass
class BotData:
    """Long-lived resources, opened in post_init and closed in post_shutdown."""

    store: Store | None = None
    fetcher: Fetcher | None = None  # feeds and pages; opened by `newsbot run` only
    related: RelatedStories | None = None  # the related-stories index, opened with the store
    admin_ids: frozenset[int] = field(default_factory=frozenset)
    long_replies: LongReplies = field(default_factory=LongReplies)
    extras: dict[str, Any] = field(default_factory=dict)

    def now(self) -> datetime:
        """The current UTC time, from the clock a test put in extras["clock"] if any
        (read at every call, so a test can move it while the bot runs)."""
        clock: Callable[[], datetime] | None = self.extras.get(CLOCK)
        return clock() if clock is not None else datetime.now(UTC)


class NewsContext(CallbackContext[ExtBot[Any], dict[Any, Any], dict[Any, Any], BotData]):
    """CallbackContext with typed access to the store."""

    @property
    def store(self) -> Store:
        """The open store (post_init opens it before any update is handled)."""
        store = self.bot_data.store
        if store is None:
            raise RuntimeError("the store is not open: post_init has not run")
        return store

    @property
    def fetcher(self) -> Fetcher:
        """The open Fetcher (post_init opens it when the bot runs its jobs)."""
        fetcher = self.bot_data.fetcher
        if fetcher is None:
            raise RuntimeError("no fetcher: feeds are polled only by `newsbot run`")
        return fetcher


NewsApp = Application[ExtBot[None], NewsContext, dict[Any, Any], dict[Any, Any], BotData, Any]
