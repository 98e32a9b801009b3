"""Topic subscriptions and the alert queue (issue 3)."""

from __future__ import annotations

import aiosqlite

from news.articles import Article
from storage.base import StoreBase


class AlertsStore(StoreBase):
    """Subscriptions, matching of new stories and the alert queue."""

    async def _queue_alerts(
        self, db: aiosqlite.Connection, story_id: int, article: Article
    ) -> None:
        """Queue one alert per chat whose subscriptions match the new story (inside the
        transaction that stores it)."""

    async def _alert_stats(self) -> dict[str, int]:
        """Counts for `newsbot stats`: chats, subscriptions, queued/sent/failed alerts."""
        return {}
