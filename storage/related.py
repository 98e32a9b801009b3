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

    async def set_related_fitted_on(self, fitted_on: int) -> None:
        """Record the archive size the stored model stands for (an import that fitted it
        early, on a sample of its stories, sets the size it ended with)."""
        async with self.transaction() as db:
            await db.execute("UPDATE related_model SET fitted_on = ?", (fitted_on,))

    async def forget_related_model(self) -> None:
        """Drop the model and every vector (similar stories fall back to FTS5 until the
        next fit)."""
        async with self.transaction() as db:
            await db.execute("DELETE FROM story_vectors")
            await db.execute("DELETE FROM related_model")

    async def stories_without_vectors(
        self, limit: int = 1000, *, after_id: int = 0
    ) -> list[tuple[int, str, str]]:
        """(id, title, body) of stories above `after_id` the current model has not embedded
        yet, in id order."""
        rows = await self._all(
            "SELECT s.id, s.title, s.body FROM stories s "
            "LEFT JOIN story_vectors v ON v.story_id = s.id "
            "WHERE s.id > ? AND v.story_id IS NULL ORDER BY s.id LIMIT ?",
            (after_id, limit),
        )
        return [(int(i), str(t), str(b)) for i, t, b in rows]

    async def save_vectors(
        self, vectors: Sequence[tuple[int, bytes]], *, fitted_at: datetime
    ) -> int:
        """Store story vectors (id, float32 bytes) made by the model fitted at `fitted_at`;
        none when another model has replaced it since (its vectors would not compare).
        Returns how many were stored."""
        stamp = fitted_at.isoformat(timespec="microseconds")
        async with self.transaction() as db:
            async with db.execute("SELECT fitted_at FROM related_model") as cursor:
                current = await cursor.fetchone()
            if current is None or current[0] != stamp:
                return 0
            await db.executemany(
                "INSERT INTO story_vectors (story_id, vector) VALUES (?, ?) "
                "ON CONFLICT (story_id) DO UPDATE SET vector = excluded.vector",
                vectors,
            )
        return len(vectors)

    async def count_vectors(self) -> int:
        """How many stories the current model has embedded."""
        return int(await self._one("SELECT count(*) FROM story_vectors"))

    async def vectors(
        self, *, after_id: int = 0, limit: int | None = None
    ) -> list[tuple[int, bytes]]:
        """Story vectors with ids above `after_id`, in id order (at most `limit`)."""
        rows = await self._all(
            "SELECT story_id, vector FROM story_vectors WHERE story_id > ? ORDER BY story_id "
            "LIMIT ?",
            (after_id, -1 if limit is None else limit),
        )
        return [(int(i), bytes(v)) for i, v in rows]
