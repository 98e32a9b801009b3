"""Feed-polling policy, pure: when to poll a feed next, when to give up on it, and how
to spread a batch of due feeds over the polling interval."""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import TypeVar

T = TypeVar("T")

# A feed's own hint (ttl, Cache-Control) may slow polling down, within these bounds; the
# lower bound is the one NEWSBOT_POLL_SECONDS documents, so the setting is what happens.
MIN_INTERVAL_S = 10
MAX_INTERVAL_S = 24 * 3600
# After errors: the interval doubles per consecutive failure, up to this cap.
MAX_BACKOFF_S = 6 * 3600
JITTER = 0.2  # +/- 20 % on backoff delays, so failed feeds do not retry in lockstep
PAUSE_AFTER = timedelta(days=3)
PAUSE_MIN_FAILURES = 3

_RANDOM = random.Random()


@dataclass(frozen=True, slots=True)
class FeedState:
    """What the policy needs to know about one feed between polls."""

    interval_s: int
    consecutive_failures: int = 0
    first_failure_at: datetime | None = None
    last_success_at: datetime | None = None
    next_poll_at: datetime | None = None
    last_error: str | None = None


def effective_interval(
    interval_s: int,
    *,
    ttl_minutes: int | None = None,
    max_age_seconds: int | None = None,
    min_interval_s: int = MIN_INTERVAL_S,
    max_interval_s: int = MAX_INTERVAL_S,
) -> int:
    """Seconds between successful polls: the configured interval, lengthened by the feed's
    ttl or Cache-Control max-age, never below `min_interval_s` nor above `max_interval_s`."""
    hints = [h for h in (ttl_minutes and ttl_minutes * 60, max_age_seconds) if h and h > 0]
    wanted = max([interval_s, *hints])
    return max(min_interval_s, min(max_interval_s, wanted))


def duration_text(seconds: int) -> str:
    """A poll interval for people: "30 s", "5 min", "1 min 30 s", "2 h", "1 h 30 min"."""
    if seconds < 60 or (seconds < 600 and seconds % 60):
        minutes, rest = divmod(seconds, 60)
        return f"{minutes} min {rest} s" if minutes else f"{rest} s"
    minutes = round(seconds / 60)
    hours, rest = divmod(minutes, 60)
    if not hours:
        return f"{minutes} min"
    return f"{hours} h {rest} min" if rest else f"{hours} h"


def describe_interval(
    interval_s: int,
    *,
    configured_by: str,
    ttl_minutes: int | None = None,
    max_age_seconds: int | None = None,
    failures: int = 0,
) -> str:
    """How often a feed is polled and why, as `feeds list` and /feeds show it: "every 1 min
    (NEWSBOT_POLL_SECONDS)", "every 5 min (ttl 5 min)", "backing off: 3 failures".
    `configured_by` names where `interval_s` came from."""
    if failures:
        return f"backing off: {failures} failure{'s' if failures != 1 else ''}"
    seconds = effective_interval(
        interval_s, ttl_minutes=ttl_minutes, max_age_seconds=max_age_seconds
    )
    ttl_s = ttl_minutes * 60 if ttl_minutes and ttl_minutes > 0 else 0
    age_s = max_age_seconds if max_age_seconds and max_age_seconds > 0 else 0
    wanted = max(interval_s, ttl_s, age_s)
    if wanted > interval_s:
        why = (
            f"ttl {duration_text(ttl_s)}"
            if ttl_s >= age_s
            else f"Cache-Control max-age {duration_text(age_s)}"
        )
    else:
        why = configured_by
    if seconds != wanted:
        why += ", held to at most a day" if seconds < wanted else ", held to the 10 s minimum"
    return f"every {duration_text(seconds)} ({why})"


def backoff_delay(
    interval_s: int,
    failures: int,
    *,
    rng: random.Random | None = None,
    max_backoff_s: int = MAX_BACKOFF_S,
    min_interval_s: int = MIN_INTERVAL_S,
) -> float:
    """Seconds to wait after `failures` consecutive failures (>= 1): the interval doubled
    per failure, capped (a feed polled less often than the cap keeps its interval), with
    jitter."""
    base = max(interval_s, min_interval_s)
    cap = max(max_backoff_s, base)
    delay = min(cap, base * (1 << min(failures, 30)))
    jitter = (rng or _RANDOM).uniform(1 - JITTER, 1 + JITTER)
    return max(float(min_interval_s), delay * jitter)


def after_poll(
    state: FeedState,
    now: datetime,
    *,
    ok: bool,
    error: str | None = None,
    ttl_minutes: int | None = None,
    max_age_seconds: int | None = None,
    retry_after_seconds: int | None = None,
    rng: random.Random | None = None,
) -> FeedState:
    """The feed's state after a poll at `now` (`state` is the state before it), with
    `next_poll_at` set."""
    if ok:
        wait = float(
            effective_interval(
                state.interval_s, ttl_minutes=ttl_minutes, max_age_seconds=max_age_seconds
            )
        )
        return replace(
            state,
            consecutive_failures=0,
            first_failure_at=None,
            last_success_at=now,
            next_poll_at=now + timedelta(seconds=wait),
            last_error=None,
        )
    failures = state.consecutive_failures + 1
    wait = backoff_delay(state.interval_s, failures, rng=rng)
    if retry_after_seconds:
        # The server said when to come back; believe it within the same bounds.
        wait = max(wait, float(min(retry_after_seconds, MAX_INTERVAL_S)))
    return replace(
        state,
        consecutive_failures=failures,
        first_failure_at=state.first_failure_at or now,
        next_poll_at=now + timedelta(seconds=wait),
        last_error=error,
    )


def next_poll(
    state: FeedState,
    now: datetime,
    *,
    ok: bool,
    ttl_minutes: int | None = None,
    max_age_seconds: int | None = None,
    retry_after_seconds: int | None = None,
    rng: random.Random | None = None,
) -> datetime:
    """When to poll next after a poll at `now` that succeeded or failed (`state` as it
    was before that poll)."""
    updated = after_poll(
        state,
        now,
        ok=ok,
        ttl_minutes=ttl_minutes,
        max_age_seconds=max_age_seconds,
        retry_after_seconds=retry_after_seconds,
        rng=rng,
    )
    assert updated.next_poll_at is not None
    return updated.next_poll_at


def should_pause(state: FeedState, now: datetime) -> bool:
    """True when the feed has failed on every poll for PAUSE_AFTER (3 days) or more, and at
    least PAUSE_MIN_FAILURES times: stop polling it and tell the admins."""
    return (
        state.first_failure_at is not None
        and state.consecutive_failures >= PAUSE_MIN_FAILURES
        and now - state.first_failure_at >= PAUSE_AFTER
    )


def is_due(state: FeedState, now: datetime) -> bool:
    """True when the feed should be polled at `now` (a feed never polled is due)."""
    return state.next_poll_at is None or state.next_poll_at <= now


def spread(
    feeds: Sequence[T],
    now: datetime,
    interval: timedelta,
    *,
    host: Callable[[T], str] | None = None,
) -> list[tuple[T, datetime]]:
    """Start times for `feeds` spaced evenly over `interval` from `now`, so a batch of due
    feeds does not go out at once; with `host`, feeds of the same host are interleaved with
    the others instead of started back to back."""
    if not feeds:
        return []
    ordered: list[T] = list(feeds)
    if host is not None:
        groups: dict[str, list[T]] = {}
        for feed in feeds:
            groups.setdefault(host(feed), []).append(feed)
        # Round-robin over hosts: one feed of each host, then the next of each, ...
        queues = list(groups.values())
        ordered = [q[i] for i in range(max(map(len, queues))) for q in queues if i < len(q)]
    step = interval / len(ordered)
    return [(feed, now + step * i) for i, feed in enumerate(ordered)]
