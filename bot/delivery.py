"""Delivering queued alerts and daily digests to Telegram, within Telegram's limits.

The queue lives in the database (storage/alerts.py). A drain claims due alerts in arrival
order, at most one per chat and only as many as the limits allow right now, marks them
'sending' under this process's claim token, sends them concurrently, and records how each
send ended in batches. Limits are kept on our side, counted from when Telegram's answer
came back, so they hold at Telegram's end too: at most 30 sends in any second overall, one
a second per chat, 20 a minute per group. The bot's ChatRateLimiter (bot/app.py) keeps the
same limits for replies and alerts together; it rarely has to hold an alert back.

What a failed send does:
- RetryAfter: the alert goes back to the queue for `retry_after` seconds, and all alert
  sending pauses that long; the attempt does not count. The rate limiter does not retry
  it too (see `ChatRateLimiter`, NO_RETRY).
- Forbidden (blocked, kicked), "chat not found": the chat becomes inactive and its queued
  alerts are skipped; /start or adding the bot again resumes it.
- ChatMigrated: the chat's topics, settings and queued alerts move to the supergroup's id,
  and the alert is sent there.
- Telegram answering 5xx, or no connection at all: retried with exponential backoff, then
  marked failed after `max_attempts`.
- Anything that may have reached Telegram without us hearing back (a read timeout, a
  dropped connection, a process killed mid-send): never sent again. A story is alerted to
  a chat at most once: an alert left 'sending' by a dead process is marked failed after
  `stale_after`, not resent, because its message may have been delivered.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import secrets
import time
import warnings
from collections import deque
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import httpx
from telegram import InlineKeyboardMarkup
from telegram.error import (
    BadRequest,
    ChatMigrated,
    Forbidden,
    NetworkError,
    RetryAfter,
    TelegramError,
)
from telegram.ext import BaseRateLimiter, ExtBot

from handlers.topics import alert_keyboard, alert_text, digest_messages, next_digest_at
from storage.alerts import AlertOutcome, Chat, ClaimedAlert, OutcomeState
from storage.store import Store

log = logging.getLogger(__name__)

# `rate_limit_args` value for a send whose RetryAfter the caller handles itself.
NO_RETRY = -1

JSONResult = bool | dict[str, Any] | list[dict[str, Any]]


# Methods that post a message (and so count against a chat's flood limits) besides send*.
_POSTING = frozenset({"copyMessage", "copyMessages", "forwardMessage", "forwardMessages"})


def _posts(endpoint: str) -> bool:
    return endpoint in _POSTING or (endpoint.startswith("send") and endpoint != "sendChatAction")


@dataclass
class _ChatPace:
    """One chat's turn: its sends in order, and when it may next be sent to."""

    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    ready_at: float = 0.0  # monotonic; after a RetryAfter, the end of the pause
    answered: deque[float] = field(default_factory=deque)  # groups: the last minute's sends


class ChatRateLimiter(BaseRateLimiter[int]):
    """Telegram's limits kept per chat, for replies and alerts alike: at most one message a
    second to a chat (counted from when Telegram answered the previous one, so it holds at
    Telegram's end), 20 a minute to a group, 30 a second overall. A RetryAfter pauses only
    the chat it came from: that chat's sends wait it out (up to `max_retries` times) while
    every other chat goes on. PTB's AIORateLimiter has no per-private-chat limit and pauses
    every request on a RetryAfter.

    A caller passing ``rate_limit_args=NO_RETRY`` (alert delivery, which requeues on its
    own) gets a RetryAfter straight back; the chat's pause is still recorded."""

    def __init__(
        self,
        *,
        per_second: int = 30,
        chat_interval: float = 1.0,
        group_per_minute: int = 20,
        max_retries: int = 2,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._per_second = per_second
        self._chat_interval = chat_interval
        self._group_per_minute = group_per_minute
        self._max_retries = max_retries
        self._monotonic = monotonic
        self._paces: dict[int | str, _ChatPace] = {}
        self._started: deque[float] = deque()  # the last second's sends, overall

    async def initialize(self) -> None:
        """Nothing to open."""

    async def shutdown(self) -> None:
        """Nothing to close."""

    async def process_request(
        self,
        callback: Callable[..., Coroutine[Any, Any, JSONResult]],
        args: Any,
        kwargs: dict[str, Any],
        endpoint: str,
        data: dict[str, Any],
        rate_limit_args: int | None,
    ) -> JSONResult:
        """Send one request in its chat's turn; wait out a RetryAfter for that chat only."""
        chat = _chat_key(data.get("chat_id"))
        if chat is None or not _posts(endpoint):
            # Edits, callback answers, getChatMember...: not messages, never held back.
            return await callback(*args, **kwargs)
        retries = 0 if rate_limit_args == NO_RETRY else (rate_limit_args or self._max_retries)
        pace = self._pace(chat)
        async with pace.lock:
            attempt = 0
            while True:
                await self._turn(pace, group=_is_group(chat))
                try:
                    return await callback(*args, **kwargs)
                except RetryAfter as error:
                    pause = retry_seconds(error)
                    pace.ready_at = max(pace.ready_at, self._monotonic() + pause)
                    if attempt >= retries:
                        raise
                    attempt += 1
                    log.info("chat %s: flood limit, its sends wait %.1f s", chat, pause)
                finally:
                    answered = self._monotonic()
                    pace.ready_at = max(pace.ready_at, answered + self._chat_interval)
                    if _is_group(chat):
                        pace.answered.append(answered)

    def _pace(self, chat: int | str) -> _ChatPace:
        pace = self._paces.get(chat)
        if pace is None:
            if len(self._paces) > 4096:
                self._forget_idle()
            pace = self._paces[chat] = _ChatPace()
        return pace

    def _forget_idle(self) -> None:
        """Drop the turns of chats nobody sent to for a minute (their limits have lapsed)."""
        horizon = self._monotonic() - 60.0
        for chat, pace in list(self._paces.items()):
            recent = pace.answered[-1] if pace.answered else 0.0
            if not pace.lock.locked() and pace.ready_at < horizon and recent < horizon:
                del self._paces[chat]

    async def _turn(self, pace: _ChatPace, *, group: bool) -> None:
        """Wait until this chat, and the bot overall, may send again."""
        while True:
            now = self._monotonic()
            wait = pace.ready_at - now
            if group:
                while pace.answered and pace.answered[0] <= now - 60.0:
                    pace.answered.popleft()
                if len(pace.answered) >= self._group_per_minute:
                    wait = max(wait, pace.answered[0] + 60.0 - now)
            started = self._started
            # Counted from when sends start: alert delivery, the bulk sender, keeps the
            # overall limit from Telegram's answers itself, so this only guards replies.
            while started and started[0] <= now - 1.0:
                started.popleft()
            if len(started) >= self._per_second:
                wait = max(wait, started[0] + 1.0 - now)
            if wait <= 0:
                started.append(now)
                return
            await asyncio.sleep(wait)


def _chat_key(value: Any) -> int | str | None:
    if value is None:
        return None
    with contextlib.suppress(ValueError, TypeError):
        return int(value)
    return str(value)


def _is_group(chat: int | str) -> bool:
    # Negative ids are groups and channels; a "@name" is a public supergroup or channel.
    return isinstance(chat, str) or chat < 0


def retry_seconds(error: RetryAfter) -> float:
    """How long Telegram asked us to wait, in seconds."""
    delay = getattr(error, "_retry_after", None)  # what AIORateLimiter itself reads
    if isinstance(delay, timedelta):
        return delay.total_seconds()
    with warnings.catch_warnings():  # the int form is deprecated since PTB 22.2
        warnings.simplefilter("ignore")
        value = error.retry_after
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


# httpx errors that prove the request never reached Telegram: safe to send again.
_NOT_SENT = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.PoolTimeout,
    httpx.WriteError,
    httpx.WriteTimeout,
    httpx.LocalProtocolError,
    httpx.UnsupportedProtocol,
)


def may_have_arrived(error: NetworkError) -> bool:
    """Whether a failed send may still have been delivered: True when the connection
    broke after the request went out (no answer), False when Telegram answered with an
    error or the request never left."""
    cause = error.__cause__
    if cause is None:
        return False  # Telegram's own error answer (5xx, 502): nothing was sent
    return not isinstance(cause, _NOT_SENT)


def _chat_gone(error: BadRequest) -> bool:
    text = str(error).lower()
    return "chat not found" in text or "user not found" in text or "deactivated" in text


@dataclass(frozen=True, slots=True)
class Limits:
    """Telegram's broadcast limits, as the delivery keeps them."""

    per_second: int = 30
    chat_interval: float = 1.0
    group_per_minute: int = 20


@dataclass(frozen=True, slots=True)
class DeliveryConfig:
    """Knobs of the delivery jobs (tests shorten the intervals)."""

    interval: float = 1.0  # how often the queue is looked at without a wake-up
    digest_interval: float = 30.0  # how often due digests are looked for
    limits: Limits | None = field(default_factory=Limits)  # None: send as fast as we can
    # Sends under way at once: more only slows httpx's pool down (measured in
    # benchmarks/delivery.py); Telegram's 30 a second need far fewer.
    max_in_flight: int = 16
    backoff_base: float = 5.0  # first retry after a transient error, doubling each time
    backoff_max: float = 900.0
    max_attempts: int = 6
    flush_seconds: float = 0.2  # how long outcomes wait to be recorded in one transaction
    flush_size: int = 200
    stale_after: float = 600.0  # a 'sending' alert older than this belongs to a dead process


class Pacer:
    """Which chats may be sent to now, and how many sends may start, under `Limits`.

    A send holds its slots from when it starts until a window after its answer arrived:
    Telegram sees each message before we see its answer, so counting from the answer keeps
    Telegram's count within the limits whatever the network adds."""

    def __init__(
        self,
        limits: Limits | None,
        max_in_flight: int,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limits = limits
        self.capacity = max_in_flight  # sends under way at once
        self._monotonic = monotonic
        self._in_flight = 0
        self._reserved = 0
        self._window: deque[float] = deque()  # when recent sends stop counting (overall)
        self._busy: set[int] = set()
        self._chat_free_at: dict[int, float] = {}
        self._groups: dict[int, deque[float]] = {}
        self._paused_until = 0.0

    @property
    def in_flight(self) -> int:
        """Sends under way."""
        return self._in_flight

    def _prune(self, now: float) -> None:
        window = self._window
        while window and window[0] <= now:
            window.popleft()

    def free(self, now: float) -> int:
        """How many sends may start now."""
        if now < self._paused_until:
            return 0
        free = self.capacity - self._in_flight
        if self.limits is not None:
            self._prune(now)
            free = min(free, self.limits.per_second - self._in_flight - len(self._window))
        return max(free - self._reserved, 0)

    def reserve(self, count: int) -> None:
        """Hold `count` slots while a claim is under way."""
        self._reserved += count

    def unreserve(self, count: int) -> None:
        """Give back reserved slots."""
        self._reserved -= count

    def _group_full(self, chat_id: int, now: float) -> bool:
        if self.limits is None or chat_id >= 0:
            return False
        window = self._groups.get(chat_id)
        if not window:
            return False
        while window and window[0] <= now:
            window.popleft()
        if not window:
            del self._groups[chat_id]
            return False
        return len(window) >= self.limits.group_per_minute

    def ready(self, chat_id: int, now: float) -> bool:
        """Whether a send to this chat may start now."""
        if chat_id in self._busy or self.free(now) <= 0:
            return False
        if self._chat_free_at.get(chat_id, 0.0) > now:
            return False
        return not self._group_full(chat_id, now)

    def blocked(self, now: float) -> set[int]:
        """Chats no send may start to now: busy, or within their per-chat or group limit."""
        waiting = {chat for chat, at in self._chat_free_at.items() if at > now}
        for chat in list(self._chat_free_at):
            if chat not in waiting:
                del self._chat_free_at[chat]
        full = {chat for chat in list(self._groups) if self._group_full(chat, now)}
        return self._busy | waiting | full

    def take(self, chat_id: int) -> None:
        """A send to `chat_id` starts."""
        self._busy.add(chat_id)
        self._in_flight += 1

    def release(self, chat_id: int) -> None:
        """The send to `chat_id` got its answer."""
        now = self._monotonic()
        self._busy.discard(chat_id)
        self._in_flight -= 1
        if self.limits is None:
            return
        self._window.append(now + 1.0)
        self._chat_free_at[chat_id] = now + self.limits.chat_interval
        if chat_id < 0:
            self._groups.setdefault(chat_id, deque()).append(now + 60.0)

    def pause(self, seconds: float) -> None:
        """Start no send for `seconds` (Telegram said RetryAfter)."""
        self._paused_until = max(self._paused_until, self._monotonic() + seconds)

    def next_change(self, now: float) -> float | None:
        """The next moment a slot or a chat frees up, if any is pending."""
        moments = [at for at in self._chat_free_at.values() if at > now]
        if self._window:
            moments.append(self._window[0])
        if self._paused_until > now:
            moments.append(self._paused_until)
        return min(moments) if moments else None


@dataclass(frozen=True, slots=True)
class _Result:
    status: Literal["sent", "retry", "failed", "gone"]
    delay: float = 0.0


def utc_now() -> datetime:
    """The real time, as the default clock of the delivery."""
    return datetime.now(UTC)


Spawn = Callable[[Coroutine[Any, Any, Any]], "asyncio.Task[Any]"]


class Delivery:
    """The alert and digest sender of one bot process."""

    def __init__(
        self,
        store: Store,
        bot: ExtBot[Any],
        *,
        config: DeliveryConfig | None = None,
        clock: Callable[[], datetime] = utc_now,
        is_running: Callable[[], bool] = lambda: True,
        spawn: Spawn = asyncio.create_task,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config or DeliveryConfig()
        self.token = f"{os.getpid()}-{secrets.token_hex(6)}"
        self.pacer = Pacer(self.config.limits, self.config.max_in_flight, monotonic)
        self.sent = 0  # messages, for logs and benchmarks
        self.failed = 0
        self._store = store
        self._bot = bot
        self._clock = clock
        self._is_running = is_running
        self._spawn = spawn
        self._monotonic = monotonic
        # Only our own limiter understands NO_RETRY; without one, PTB refuses the argument.
        self._send_kwargs: dict[str, Any] = (
            {"rate_limit_args": NO_RETRY} if isinstance(bot.rate_limiter, ChatRateLimiter) else {}
        )
        # Claim in batches when nothing paces us: a claim is a write transaction.
        self._min_claim = 1 if self.config.limits else max(1, self.pacer.capacity // 2)
        self._outcomes: list[AlertOutcome] = []
        self._oldest_outcome = 0.0
        self._tasks: set[asyncio.Task[None]] = set()
        self._wakeup = asyncio.Event()
        self._kicked = False
        self._claiming = False
        self._drain_task: asyncio.Task[Any] | None = None
        self._digest_task: asyncio.Task[Any] | None = None

    # -- starting work -----------------------------------------------------------------

    def kick(self) -> None:
        """Look at the queue now: start a drain unless one is under way (which then looks
        again before it ends)."""
        self._kicked = True
        self._wakeup.set()
        if self._drain_task is not None and not self._drain_task.done():
            return
        if self._is_running():
            self._drain_task = self._spawn(self.drain())

    def start_digests(self) -> None:
        """Send due digests (and retire dead claims) unless that is under way already."""
        if self._digest_task is not None and not self._digest_task.done():
            return
        if self._is_running():
            self._digest_task = self._spawn(self.digest_round())

    # -- instant alerts ----------------------------------------------------------------

    async def drain(self) -> int:
        """Send due alerts until none is left or the bot stops; returns messages sent."""
        before = self.sent
        try:
            while True:
                running = self._is_running()
                idle = False
                if running:
                    now = self._monotonic()
                    free = self.pacer.free(now)
                    if free >= self._min_claim or (free > 0 and not self._tasks):
                        self._kicked = False
                        alerts = await self._claim(free, now)
                        for alert in alerts:
                            self._start(alert)
                        if alerts:
                            continue
                        idle = True
                if not self._tasks:
                    if not running:
                        break
                    if idle and not self._kicked:
                        # Chats held back by their own limit may still have alerts: wait
                        # for them if that is soon, else leave it to the next tick.
                        now = self._monotonic()
                        upcoming = self.pacer.next_change(now)
                        if upcoming is None or upcoming - now > self.config.interval:
                            break
                await self._flush(due_only=True)
                await self._wait()
        finally:
            if self._tasks:
                await asyncio.gather(*self._tasks, return_exceptions=True)
            await self._flush()
        return self.sent - before

    async def _claim(self, free: int, now: float) -> list[ClaimedAlert]:
        self._claiming = True
        self.pacer.reserve(free)
        try:
            return await self._store.claim_alerts(
                self.token, self._clock(), free, self.pacer.blocked(now)
            )
        finally:
            self.pacer.unreserve(free)
            self._claiming = False

    def _start(self, alert: ClaimedAlert) -> None:
        self.pacer.take(alert.chat_id)
        task = asyncio.create_task(self._deliver(alert))
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        self._wakeup.set()
        if not task.cancelled() and task.exception() is not None:
            log.error("alert send failed unexpectedly", exc_info=task.exception())

    async def _deliver(self, alert: ClaimedAlert) -> None:
        try:
            await self._send(
                alert.chat_id, alert_text(alert), alert_keyboard(alert.story_id), [alert]
            )
        finally:
            self.pacer.release(alert.chat_id)

    async def _wait(self) -> None:
        """Sleep until a send ends, a kick, a slot frees up or outcomes are due."""
        now = self._monotonic()
        timeout = self.config.interval
        upcoming = self.pacer.next_change(now)
        if upcoming is not None:
            timeout = min(timeout, upcoming - now)
        if self._outcomes:
            timeout = min(timeout, self._oldest_outcome + self.config.flush_seconds - now)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wakeup.wait(), max(timeout, 0.001))
        self._wakeup.clear()

    # -- one send ----------------------------------------------------------------------

    async def _send(
        self,
        chat_id: int,
        text: str,
        keyboard: InlineKeyboardMarkup | None,
        alerts: Sequence[ClaimedAlert],
        held: Sequence[ClaimedAlert] = (),
    ) -> _Result:
        """Send one message carrying `alerts` and record what became of them; `held` are
        further claimed alerts of the chat that follow it if the chat goes or moves."""
        try:
            await self._bot.send_message(chat_id, text, reply_markup=keyboard, **self._send_kwargs)
        except RetryAfter as error:
            delay = retry_seconds(error)
            self.pacer.pause(delay)
            log.warning("Telegram asked to wait %.0f s (chat %s): alerts paused", delay, chat_id)
            retry_at = self._clock() + timedelta(seconds=delay)
            self._record(alerts, "queued", str(error), retry_at=retry_at, counted=False)
            return _Result("retry", delay)
        except ChatMigrated as error:
            ids = [a.id for a in (*alerts, *held)]
            await self._store.migrate_chat(
                chat_id, error.new_chat_id, self._clock(), alert_ids=ids
            )
            self._wakeup.set()
            return _Result("gone")
        except Forbidden as error:
            await self._chat_gone(chat_id, str(error), [*alerts, *held])
            return _Result("gone")
        except BadRequest as error:
            if _chat_gone(error):
                await self._chat_gone(chat_id, str(error), [*alerts, *held])
                return _Result("gone")
            # Telegram refused this message itself: the same message would fail again.
            log.error("alert to chat %s refused: %s", chat_id, error)
            self._record(alerts, "failed", str(error))
            return _Result("failed")
        except NetworkError as error:
            if may_have_arrived(error):
                log.warning("no answer for an alert to chat %s: %s; not resent", chat_id, error)
                self._record(
                    alerts, "failed", f"no answer ({error}); not resent: it may have arrived"
                )
                return _Result("failed")
            return self._backoff(chat_id, alerts, error)
        except TelegramError as error:  # e.g. InvalidToken: the operator must act; retry
            return self._backoff(chat_id, alerts, error)
        except Exception as error:
            # Unknown: the message may have gone out, so it is not sent again.
            log.exception("unexpected error sending an alert to chat %s", chat_id)
            self._record(alerts, "failed", f"{type(error).__name__}: {error}")
            return _Result("failed")
        self.sent += 1
        self._record(alerts, "sent")
        return _Result("sent")

    async def _chat_gone(self, chat_id: int, reason: str, alerts: Sequence[ClaimedAlert]) -> None:
        log.info("chat %s is gone (%s): its alerts stop", chat_id, reason)
        await self._store.deactivate_chat(
            chat_id, reason, self._clock(), alert_ids=[a.id for a in alerts]
        )

    def _backoff(self, chat_id: int, alerts: Sequence[ClaimedAlert], error: Exception) -> _Result:
        attempts = max(a.attempts for a in alerts)
        if attempts >= self.config.max_attempts:
            log.error("giving up on chat %s after %d attempts: %s", chat_id, attempts, error)
            self._record(alerts, "failed", f"gave up after {attempts} attempts: {error}")
            return _Result("failed")
        delay = min(self.config.backoff_base * 2 ** (attempts - 1), self.config.backoff_max)
        delay *= random.uniform(0.9, 1.1)  # spread retries of many chats apart
        log.warning("alert to chat %s failed (%s): retry in %.1f s", chat_id, error, delay)
        retry_at = self._clock() + timedelta(seconds=delay)
        self._record(alerts, "queued", str(error), retry_at=retry_at)
        return _Result("retry", delay)

    def _record(
        self,
        alerts: Sequence[ClaimedAlert],
        state: OutcomeState,
        error: str | None = None,
        *,
        retry_at: datetime | None = None,
        counted: bool = True,
    ) -> None:
        if not self._outcomes:
            self._oldest_outcome = self._monotonic()
        if state == "failed":
            self.failed += len(alerts)
        error = error[:500] if error else None
        self._outcomes.extend(AlertOutcome(a.id, state, error, retry_at, counted) for a in alerts)

    async def _flush(self, *, due_only: bool = False) -> None:
        """Record pending outcomes in one transaction (when due, with `due_only`)."""
        if not self._outcomes:
            return
        young = self._monotonic() - self._oldest_outcome < self.config.flush_seconds
        if due_only and young and len(self._outcomes) < self.config.flush_size:
            return
        outcomes, self._outcomes = self._outcomes, []
        try:
            await self._store.record_outcomes(self.token, outcomes, self._clock())
        except BaseException:
            self._outcomes[:0] = outcomes  # kept for the next flush
            raise

    # -- digests -----------------------------------------------------------------------

    async def digest_round(self) -> int:
        """Send every due digest, and retire alerts a dead process left 'sending';
        returns how many digests went out."""
        now = self._clock()
        await self._store.fail_stale_sending(now - timedelta(seconds=self.config.stale_after))
        sent = 0
        for chat in await self._store.due_digests(now):
            if not self._is_running():
                break
            if await self._digest(chat, now):
                sent += 1
        return sent

    async def _digest(self, chat: Chat, now: datetime) -> bool:
        upcoming = None
        if chat.digest_time is not None:
            upcoming = next_digest_at(chat.digest_time, chat.timezone, now)
        alerts = await self._store.claim_digest(chat.id, self.token, now)
        if not alerts:
            await self._store.finish_digest(chat.id, upcoming, now, sent=False)
            return False
        by_id = {a.id: a for a in alerts}
        messages = digest_messages(alerts)
        parts = [[by_id[i] for i in ids] for _, ids in messages]
        result = _Result("sent")
        for index, ((text, _), part) in enumerate(zip(messages, parts, strict=True)):
            later = [a for p in parts[index + 1 :] for a in p]
            if not await self._acquire(chat.id):  # the bot is stopping
                self._record([*part, *later], "queued", "bot stopped", counted=False)
                result = _Result("retry")
                break
            try:
                result = await self._send(chat.id, text, None, part, held=later)
            finally:
                self.pacer.release(chat.id)
            if result.status == "retry":
                self._record(later, "queued", "digest interrupted", counted=False)
                break
            if result.status == "gone":
                break
        await self._flush()
        if result.status == "gone":
            return False
        if result.status == "retry":
            retry = now + timedelta(seconds=max(result.delay, self.config.interval))
            await self._store.finish_digest(chat.id, retry, now, sent=False)
            return False
        await self._store.finish_digest(chat.id, upcoming, now, sent=True)
        return True

    async def _acquire(self, chat_id: int) -> bool:
        """Wait until a send to the chat may start and take it; False if the bot stops."""
        while self._is_running():
            if not self._claiming and self.pacer.ready(chat_id, self._monotonic()):
                self.pacer.take(chat_id)
                return True
            await asyncio.sleep(0.05)
        return False
