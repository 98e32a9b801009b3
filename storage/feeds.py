"""Feeds the bot polls (issue 4)."""

from __future__ import annotations

from storage.base import StoreBase


class FeedsStore(StoreBase):
    """Feeds, their polling state and their dedup keys."""

    async def _feed_stats(self) -> dict[str, int]:
        """Counts for `newsbot stats`: feeds (active, paused)."""
        return {}
