"""Building the Application (the one function production, the console and tests share),
and its start-up and shutdown."""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from typing import Any

from telegram import LinkPreviewOptions, Update
from telegram.constants import ParseMode
from telegram.ext import Application, BaseUpdateProcessor, ContextTypes, Defaults
from telegram.request import BaseRequest

import handlers
from bot.config import Settings
from bot.delivery import ChatRateLimiter
from bot.jobs import schedule_jobs
from bot.related import RelatedStories
from handlers.context import BotData, NewsApp, NewsContext
from storage import Store

log = logging.getLogger(__name__)

# Placeholder token for transports that never reach Telegram (the terminal chat).
OFFLINE_TOKEN = "1:offline"

# How many updates are handled at once, across chats; more wait their turn.
MAX_CONCURRENT_UPDATES = 64
# How many may wait (queued behind their chat, or for a free handler) before PTB stops
# taking updates from the queue.
_MAX_PENDING_UPDATES = 4096


class ChatOrderedProcessor(BaseUpdateProcessor):
    """Updates of different chats run concurrently (at most `running` at once), while each
    chat's own updates run one after another, in the order they came: a reader reading a
    long story never keeps another chat waiting, and a chat's commands never overtake each
    other. (PTB's concurrent_updates(N) alone would run a chat's updates out of order.)"""

    def __init__(self, running: int) -> None:
        # PTB's own bound counts updates waiting for their chat too: keep it wide, and
        # bound the updates actually running with our semaphore, taken in chat order.
        super().__init__(max(running, _MAX_PENDING_UPDATES))
        self._running = asyncio.Semaphore(running)
        self._tails: dict[object, asyncio.Future[None]] = {}

    async def initialize(self) -> None:
        """Nothing to open."""

    async def shutdown(self) -> None:
        """Nothing to close."""

    async def do_process_update(self, update: object, coroutine: Awaitable[Any]) -> None:
        """Run `coroutine` after the updates of the same chat that came before it."""
        key = _order_key(update)
        if key is None:
            async with self._running:
                await coroutine
            return
        previous = self._tails.get(key)
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._tails[key] = done
        started = False
        try:
            if previous is not None:
                await asyncio.shield(previous)
            async with self._running:
                started = True
                await coroutine
        finally:
            if not started and inspect.iscoroutine(coroutine):
                coroutine.close()  # cancelled while waiting its turn (shutting down)
            done.set_result(None)
            if self._tails.get(key) is done:
                del self._tails[key]


def _order_key(update: object) -> object | None:
    """What an update keeps its order within: its chat, else its user (inline queries,
    buttons on inline messages); None for anything else."""
    if not isinstance(update, Update):
        return None
    if update.effective_chat is not None:
        return ("chat", update.effective_chat.id)
    if update.effective_user is not None:
        return ("user", update.effective_user.id)
    return None


def build_application(
    settings: Settings,
    *,
    request: BaseRequest | None = None,
    get_updates_request: BaseRequest | None = None,
    rate_limits: bool = True,
    jobs: bool = True,
) -> NewsApp:
    """The bot's Application: handlers from the command table, the store opened in
    post_init and closed in post_shutdown, HTML replies, Telegram's rate limits."""
    token = settings.token.reveal() if settings.token else OFFLINE_TOKEN
    context_types = ContextTypes(context=NewsContext, bot_data=BotData)
    builder: Any = (
        Application.builder()
        .token(token)
        .base_url(settings.api_base_url)
        .context_types(context_types)
        .defaults(
            Defaults(
                parse_mode=ParseMode.HTML,
                link_preview_options=LinkPreviewOptions(is_disabled=True),
            )
        )
        .post_init(_post_init)
        .post_shutdown(_post_shutdown)
    )
    if request is not None:
        builder = builder.request(request)
    if get_updates_request is not None:
        builder = builder.get_updates_request(get_updates_request)
    if rate_limits:
        # Replies and alerts share each chat's limits; a RetryAfter pauses only its chat
        # (replies wait it out, alert delivery requeues on its own).
        builder = builder.rate_limiter(ChatRateLimiter(max_retries=2))
    # Updates of different chats are answered concurrently, each chat's in order.
    builder = builder.concurrent_updates(ChatOrderedProcessor(MAX_CONCURRENT_UPDATES))
    app: NewsApp = builder.build()
    app.bot_data.admin_ids = settings.admin_ids
    app.bot_data.extras["settings"] = settings
    # The terminal chat runs no jobs: no feed polling, no alert delivery.
    app.bot_data.extras["run_jobs"] = jobs
    handlers.register(app)
    return app


async def _post_init(app: NewsApp) -> None:
    """Open the store and publish the command menu."""
    settings: Settings = app.bot_data.extras["settings"]
    app.bot_data.store = await Store.open(settings.db_path)
    app.bot_data.related = RelatedStories(app.bot_data.store)
    await app.bot.set_my_commands(handlers.menu())
    # JobQueue jobs live in memory: they are (re)scheduled here at every start.
    if app.bot_data.extras.get("run_jobs", True) and app.job_queue is not None:
        schedule_jobs(app)
    log.info("newsbot started as @%s on %s", app.bot.username, settings.db_path)


async def _post_shutdown(app: NewsApp) -> None:
    """Close the fetcher and the store."""
    fetcher = app.bot_data.fetcher
    if fetcher is not None:
        app.bot_data.fetcher = None
        await fetcher.aclose()
    store = app.bot_data.store
    if store is not None:
        app.bot_data.store = None
        await store.close()


@asynccontextmanager
async def running(app: NewsApp, *, polling: bool = True) -> AsyncIterator[NewsApp]:
    """Run `app` as run_polling() does (post_init and post_shutdown included) until the
    block ends; without `polling`, updates are fed with `app.process_update`."""
    await app.initialize()
    try:
        if app.post_init:
            await app.post_init(app)
        if polling and app.updater is not None:
            await app.updater.start_polling(
                poll_interval=0.0, timeout=1, allowed_updates=Update.ALL_TYPES
            )
        await app.start()
        try:
            yield app
        finally:
            if app.updater is not None and app.updater.running:
                await app.updater.stop()
            if app.running:
                await app.stop()
    finally:
        if app.post_shutdown:
            await app.post_shutdown(app)
        await app.shutdown()
