"""How alerts and digests read, and the time rules of digests (pure functions)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from handlers.render import MAX_MESSAGE
from handlers.topics import (
    alert_text,
    digest_messages,
    next_digest_at,
    parse_digest_time,
    parse_timezone,
    topics_line,
)
from storage.alerts import ClaimedAlert
from tests.fakes.botapi import parse_html


def claimed(n: int, title: str = "Title", **fields: object) -> ClaimedAlert:
    values: dict[str, object] = {
        "id": n,
        "chat_id": 1,
        "story_id": 100 + n,
        "kind": "instant",
        "topics": ("barrier",),
        "attempts": 1,
        "title": title,
        "highlight": "",
        "lead": "",
    }
    values.update(fields)
    return ClaimedAlert(**values)  # type: ignore[arg-type]


def test_alert_is_short_escaped_and_names_its_topics() -> None:
    alert = claimed(
        1,
        "Tom & Jerry <b>win</b>",
        topics=("a<b", "c & d", "e", "f", "g"),
        lead="First sentence here. Second one.",
    )
    text = alert_text(alert)
    plain, _ = parse_html(text)  # valid Telegram HTML
    assert plain.splitlines()[0] == "🔔 a<b · c & d · e +2 more"
    assert "Tom & Jerry <b>win</b>" in plain
    assert "First sentence here." in plain
    assert "Second one" not in plain
    assert plain.endswith("/read_101")


def test_alert_prefers_the_publishers_highlight_and_clips_long_text() -> None:
    text = alert_text(claimed(2, "x" * 1000, highlight="Key point. " * 100, lead="Body."))
    plain, _ = parse_html(text)
    assert "Body." not in plain
    assert len(plain) < 800
    assert "…" in plain


def test_digest_splits_into_numbered_messages_carrying_every_alert_once() -> None:
    alerts = [claimed(n, f"Story number {n} " + "long title " * 20) for n in range(1, 61)]
    messages = digest_messages(alerts)
    assert len(messages) > 1
    carried = [alert_id for _, ids in messages for alert_id in ids]
    assert carried == list(range(1, 61))
    for index, (text, ids) in enumerate(messages, 1):
        assert len(text) <= MAX_MESSAGE
        plain, _ = parse_html(text)
        assert plain.startswith(f"📰 Your daily digest · 60 stories ({index}/{len(messages)})")
        for alert_id in ids:
            assert f"/read_{100 + alert_id}" in plain
    [(single, ids)] = digest_messages(alerts[:1])
    assert ids == (1,)
    assert "(1/1)" not in single


@pytest.mark.parametrize(
    ("typed", "stored"),
    [
        ("Europe/Minsk", "Europe/Minsk"),
        ("america/new_york", "America/New_York"),
        ("UTC", "UTC"),
        ("gmt", "UTC"),
        ("UTC+3", "UTC+03:00"),
        ("UTC-05:30", "UTC-05:30"),
        ("+0530", "UTC+05:30"),
        ("UTC+0", "UTC"),
        ("UTC+15", None),
        ("Mars/Olympus", None),
        ("../../etc/passwd", None),
        ("", None),
    ],
)
def test_time_zones_are_iana_names_or_utc_offsets(typed: str, stored: str | None) -> None:
    assert parse_timezone(typed) == stored


def test_digest_times_are_24_hour() -> None:
    assert [parse_digest_time(t) for t in ("8:00", "08:00", "18.30", "23:59")] == [
        "08:00",
        "08:00",
        "18:30",
        "23:59",
    ]
    assert [parse_digest_time(t) for t in ("24:00", "8", "8:60", "noon")] == [None] * 4


def test_next_digest_moment_follows_the_zone_and_its_summer_time() -> None:
    winter = datetime(2025, 3, 1, 7, 0, tzinfo=UTC)
    assert next_digest_at("08:00", "UTC", winter) == datetime(2025, 3, 1, 8, 0, tzinfo=UTC)
    assert next_digest_at("07:00", "UTC", winter) == datetime(2025, 3, 2, 7, 0, tzinfo=UTC)
    assert next_digest_at("08:00", "UTC+03:00", winter) == datetime(2025, 3, 2, 5, 0, tzinfo=UTC)
    # London moves to summer time on 30 March 2025: 08:00 local is 08:00 UTC, then 07:00.
    before = datetime(2025, 3, 29, 9, 0, tzinfo=UTC)
    assert next_digest_at("08:00", "Europe/London", before) == datetime(
        2025, 3, 30, 7, 0, tzinfo=UTC
    )
    assert next_digest_at("08:00", "Europe/London", winter) == datetime(
        2025, 3, 1, 8, 0, tzinfo=UTC
    )


def test_topics_line_escapes_and_counts_the_rest() -> None:
    assert topics_line(["<x>"]) == "&lt;x&gt;"
    assert topics_line(["a", "b", "c", "d"]) == "a · b · c <i>+1 more</i>"
