"""`newsbot summarize`: summaries and highlights of stored stories or of an archive, as
JSON Lines or text; nothing is stored. The bot's /summary uses the same news.summarize."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from news.articles import ParseError
from news.parse import parse_jsonl
from news.summarize import summarize_story
from storage import NotFoundError, Store


async def summarize_sources(
    sources: Sequence[str],
    *,
    db_path: Path,
    sentences: int | None,
    as_json: bool,
    out: TextIO,
    err: TextIO,
) -> int:
    """Write one summary per story of `sources` (story ids, or JSON Lines archives);
    return the exit status: 1 when nothing could be summarised."""
    written = failed = 0
    store: Store | None = None
    try:
        for source in sources:
            if source.isascii() and source.isdigit():
                if store is None:
                    store = await Store.open(db_path)
                try:
                    story = await store.story(int(source))
                except NotFoundError:
                    print(f"newsbot: no story {source}", file=err)
                    failed += 1
                    continue
                own = () if story.highlights_generated else story.highlights
                _write(out, source, story.title, story.body, own, sentences, as_json)
                written += 1
                continue
            path = Path(source)
            try:
                lines = await asyncio.to_thread(path.read_text, encoding="utf-8")
            except (OSError, UnicodeDecodeError) as error:
                print(f"newsbot: {source}: {error}", file=err)
                failed += 1
                continue
            for line_no, result in parse_jsonl(lines.splitlines()):
                if isinstance(result, ParseError):
                    print(f"newsbot: {source}:{line_no}: {result}", file=err)
                    failed += 1
                    continue
                key = result.external_id or f"{source}:{line_no}"
                _write(out, key, result.title, result.body, (), sentences, as_json)
                written += 1
    finally:
        if store is not None:
            await store.close()
    return 1 if failed and not written else 0


def _write(
    out: TextIO,
    key: str,
    title: str,
    body: Sequence[str],
    publisher_highlights: Sequence[str],
    sentences: int | None,
    as_json: bool,
) -> None:
    result = summarize_story(title, body, sentences)
    # The publisher's highlights when the story has them, as the bot shows them.
    highlights = list(publisher_highlights) or list(result.highlights)
    if as_json:
        record = {"id": key, "summary": list(result.summary), "highlights": highlights}
        out.write(json.dumps(record, ensure_ascii=False) + "\n")
        return
    out.write(f"{key}: {title}\n  Summary: {' '.join(result.summary)}\n")
    out.writelines(f"  • {h}\n" for h in highlights)
    out.write("\n")
