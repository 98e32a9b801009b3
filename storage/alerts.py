"""Topic subscriptions and the alert queue (issue 3)."""

from __future__ import annotations

from collections.abc import Sequence

import aiosqlite

from news.articles import Article
from storage.base import StoreBase


class AlertsStore(StoreBase):
    """Subscriptions, matching of new stories and the alert queue."""

    async def _queue_alerts(
        self, db: aiosqlite.Connection, new: Sequence[tuple[int, Article]]
    ) -> None:
        """Queue one alert per (chat, story) for the new stories (id, article) that match a
        chat's subscriptions, inside the transaction that stores them."""

    async def _alert_stats(self) -> dict[str, int]:
        """Counts for `newsbot stats`: chats, subscriptions, queued/sent/failed alerts."""
        return {}
