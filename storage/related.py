"""What the related-stories index keeps in the database: the fitted model and one vector
per story (issue 5)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from storage.base import StoreBase


class RelatedStore(StoreBase):
    """The related-stories model and the story vectors it made."""

    async def related_model(self) -> tuple[bytes, int, datetime] | None:
        """The stored model (its bytes, the archive size it was fitted on, when), if any."""
        rows = await self._all("SELECT model, fitted_on, fitted_at FROM related_model")
        if not rows:
            return None
        model, fitted_on, fitted_at = rows[0]
        return bytes(model), int(fitted_on), datetime.fromisoformat(fitted_at)

    async def related_fitted_at(self) -> datetime | None:
        """When the stored model was fitted (cheap: for noticing a refit)."""
        fitted_at = await self._one("SELECT fitted_at FROM related_model")
        return datetime.fromisoformat(fitted_at) if fitted_at else None

    async def save_related_model(self, model: bytes, fitted_on: int) -> None:
        """Replace the model; every vector of the old one goes (they are not comparable)."""
        now = datetime.now(UTC).isoformat(timespec="microseconds")
        async with self.transaction() as db:
            await db.execute("DELETE FROM story_vectors")
            await db.execute(
                "INSERT INTO related_model (id, model, fitted_on, fitted_at) VALUES (1, ?, ?, ?) "
                "ON CONFLICT (id) DO UPDATE SET model = excluded.model, "
                "fitted_on = excluded.fitted_on, fitted_at = excluded.fitted_at",
                (model, fitted_on, now),
            )

    async def story_ids(self) -> list[int]:
        """Every story id, in order."""
        return [int(row[0]) for row in await self._all("SELECT id FROM stories ORDER BY id")]

    async def story_texts_by_id(self, ids: Sequence[int]) -> list[tuple[int, str, str]]:
        """(id, title, body) of the stories with these ids."""
        marks = ",".join("?" * len(ids))
        rows = await self._all(
            f"SELECT id, title, body FROM stories WHERE id IN ({marks}) ORDER BY id", list(ids)
        )
        return [(int(i), str(t), str(b)) for i, t, b in rows]

    async def stories_without_vectors(self, limit: int = 1000) -> list[tuple[int, str, str]]:
        """(id, title, body) of stories the current model has not embedded yet."""
        rows = await self._all(
            "SELECT id, title, body FROM stories WHERE id NOT IN "
            "(SELECT story_id FROM story_vectors) ORDER BY id LIMIT ?",
            (limit,),
        )
        return [(int(i), str(t), str(b)) for i, t, b in rows]

    async def save_vectors(self, vectors: Sequence[tuple[int, bytes]]) -> None:
        """Store story vectors (id, float32 bytes) of the current model."""
        async with self.transaction() as db:
            await db.executemany(
                "INSERT INTO story_vectors (story_id, vector) VALUES (?, ?) "
                "ON CONFLICT (story_id) DO UPDATE SET vector = excluded.vector",
                vectors,
            )

    async def vectors(self, *, after_id: int = 0) -> list[tuple[int, bytes]]:
        """Story vectors with ids above `after_id`, in id order."""
        rows = await self._all(
            "SELECT story_id, vector FROM story_vectors WHERE story_id > ? ORDER BY story_id",
            (after_id,),
        )
        return [(int(i), bytes(v)) for i, v in rows]
