"""The feed-polling policy: intervals, hints, backoff, pausing, spreading."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from news.schedule import (
    MAX_BACKOFF_S,
    MAX_INTERVAL_S,
    MIN_INTERVAL_S,
    FeedState,
    after_poll,
    backoff_delay,
    describe_interval,
    duration_text,
    effective_interval,
    is_due,
    next_poll,
    should_pause,
    spread,
)

NOW = datetime(2024, 9, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("interval", "ttl", "max_age", "expected"),
    [
        (900, None, None, 900),
        (900, 60, None, 3600),  # ttl slows polling down
        (900, 5, None, 900),  # but never speeds it up
        (900, None, 7200, 7200),  # Cache-Control max-age too
        (900, 30, 7200, 7200),  # the longer hint wins
        (900, None, 0, 900),  # no-cache says nothing about polling
        (900, 100_000, None, MAX_INTERVAL_S),  # at most daily
        # NEWSBOT_POLL_SECONDS=60 means every minute (issue 9): only 10 s is the floor.
        (60, None, None, 60),
        (5, None, None, MIN_INTERVAL_S),
        (200_000, None, None, MAX_INTERVAL_S),
    ],
)
def test_effective_interval(
    interval: int, ttl: int | None, max_age: int | None, expected: int
) -> None:
    assert effective_interval(interval, ttl_minutes=ttl, max_age_seconds=max_age) == expected


def test_a_one_minute_setting_polls_every_minute() -> None:
    assert MIN_INTERVAL_S == 10
    assert next_poll(FeedState(60), NOW, ok=True) == NOW + timedelta(minutes=1)
    # Backoff starts from the feed's own interval, not from a hidden 5-minute floor.
    first = backoff_delay(60, 1, rng=random.Random(3))
    assert 0.8 * 120 <= first <= 1.2 * 120


@pytest.mark.parametrize(
    ("interval", "ttl", "max_age", "failures", "expected"),
    [
        (60, None, None, 0, "every 1 min (NEWSBOT_POLL_SECONDS)"),
        (60, 5, None, 0, "every 5 min (ttl 5 min)"),
        (60, None, 1800, 0, "every 30 min (Cache-Control max-age 30 min)"),
        (3600, 5, None, 0, "every 1 h (NEWSBOT_POLL_SECONDS)"),  # a shorter ttl is ignored
        (60, 100_000, None, 0, "every 24 h (ttl 1666 h 40 min, held to at most a day)"),
        (30, None, None, 0, "every 30 s (NEWSBOT_POLL_SECONDS)"),
        (60, 5, None, 3, "backing off: 3 failures"),
        (60, None, None, 1, "backing off: 1 failure"),
    ],
)
def test_describe_interval(
    interval: int, ttl: int | None, max_age: int | None, failures: int, expected: str
) -> None:
    got = describe_interval(
        interval,
        configured_by="NEWSBOT_POLL_SECONDS",
        ttl_minutes=ttl,
        max_age_seconds=max_age,
        failures=failures,
    )
    assert got == expected


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(10, "10 s"), (90, "1 min 30 s"), (300, "5 min"), (5400, "1 h 30 min"), (7200, "2 h")],
)
def test_duration_text(seconds: int, text: str) -> None:
    assert duration_text(seconds) == text


def test_success_schedules_the_next_poll_and_clears_failures() -> None:
    failing = FeedState(900, consecutive_failures=3, first_failure_at=NOW, last_error="HTTP 500")
    state = after_poll(failing, NOW, ok=True, ttl_minutes=60)
    assert state.consecutive_failures == 0
    assert state.first_failure_at is None
    assert state.last_error is None
    assert state.last_success_at == NOW
    assert state.next_poll_at == NOW + timedelta(hours=1)
    assert next_poll(failing, NOW, ok=True) == NOW + timedelta(seconds=900)


def test_backoff_doubles_with_jitter_up_to_the_cap() -> None:
    rng = random.Random(7)
    state = FeedState(600)
    delays = []
    for _ in range(10):
        new = after_poll(state, NOW, ok=False, error="boom", rng=rng)
        assert new.next_poll_at is not None
        delays.append((new.next_poll_at - NOW).total_seconds())
        state = new
    assert state.consecutive_failures == 10
    assert state.first_failure_at == NOW
    assert state.last_error == "boom"
    for n, delay in enumerate(delays, 1):
        nominal = min(MAX_BACKOFF_S, 600 * 2**n)
        assert 0.8 * nominal <= delay <= 1.2 * nominal
    assert max(delays) <= 1.2 * MAX_BACKOFF_S
    assert len(set(delays)) == len(delays)  # jittered, not in lockstep


def test_backoff_is_reproducible_with_a_seeded_random() -> None:
    a = [backoff_delay(300, n, rng=random.Random(1)) for n in range(1, 6)]
    b = [backoff_delay(300, n, rng=random.Random(1)) for n in range(1, 6)]
    assert a == b


def test_backoff_of_a_daily_feed_keeps_its_interval() -> None:
    assert backoff_delay(86_400, 1, rng=random.Random(0)) >= 0.8 * 86_400


def test_retry_after_is_respected() -> None:
    state = after_poll(
        FeedState(300), NOW, ok=False, retry_after_seconds=7200, rng=random.Random(0)
    )
    assert state.next_poll_at is not None
    assert state.next_poll_at - NOW >= timedelta(hours=2)


def test_first_failure_time_is_kept_across_failures() -> None:
    state = FeedState(300)
    state = after_poll(state, NOW, ok=False)
    state = after_poll(state, NOW + timedelta(hours=1), ok=False)
    assert state.first_failure_at == NOW


def test_should_pause_after_three_days_of_failures() -> None:
    state = FeedState(300, consecutive_failures=12, first_failure_at=NOW)
    assert not should_pause(state, NOW + timedelta(days=2, hours=23))
    assert should_pause(state, NOW + timedelta(days=3))
    # Three days but only two attempts (the bot was down): not yet.
    assert not should_pause(
        FeedState(300, consecutive_failures=2, first_failure_at=NOW), NOW + timedelta(days=4)
    )
    assert not should_pause(FeedState(300), NOW + timedelta(days=30))


def test_is_due() -> None:
    assert is_due(FeedState(300), NOW)
    assert is_due(FeedState(300, next_poll_at=NOW), NOW)
    assert not is_due(FeedState(300, next_poll_at=NOW + timedelta(seconds=1)), NOW)


def test_spread_evenly_over_the_interval() -> None:
    starts = spread(["a", "b", "c", "d"], NOW, timedelta(minutes=4))
    assert starts == [
        ("a", NOW),
        ("b", NOW + timedelta(minutes=1)),
        ("c", NOW + timedelta(minutes=2)),
        ("d", NOW + timedelta(minutes=3)),
    ]
    assert spread([], NOW, timedelta(minutes=4)) == []


def test_spread_interleaves_hosts() -> None:
    feeds = ["x.example/1", "x.example/2", "x.example/3", "y.example/1", "z.example/1"]
    starts = spread(feeds, NOW, timedelta(minutes=5), host=lambda f: f.split("/")[0])
    assert [f for f, _ in starts] == [
        "x.example/1",
        "y.example/1",
        "z.example/1",
        "x.example/2",
        "x.example/3",
    ]
    assert [t for _, t in starts] == [NOW + timedelta(minutes=i) for i in range(5)]
