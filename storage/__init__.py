"""Persistence on SQLite (aiosqlite): schema, migrations and every query."""

from storage.models import (
    AddResult,
    NotFoundError,
    SearchPage,
    StorageError,
    Story,
    StoryHead,
)
from storage.store import Prepared, Store

__all__ = [
    "AddResult",
    "NotFoundError",
    "Prepared",
    "SearchPage",
    "StorageError",
    "Store",
    "Story",
    "StoryHead",
    "open_store",
]


async def open_store(path: str) -> Store:
    """Open the database at `path`, creating and migrating it as needed."""
    return await Store.open(path)
