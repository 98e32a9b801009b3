"""Text normalisation and the tokenizer shared by search, matching and analysis.

Terms are exactly what SQLite FTS5's ``porter unicode61 remove_diacritics 2`` indexes:
words are split and folded here, and stemmed by SQLite's own porter tokenizer (through
an in-memory FTS5 table, cached per word), so a query matched in Python (topic alerts)
and the same query run by FTS5 (search) always agree.
"""

from __future__ import annotations

import hashlib
import re
import sqlite3
import threading
import unicodedata
from collections.abc import Iterable

FTS_TOKENIZE = "porter unicode61 remove_diacritics 2"

_WORD = re.compile(r"[^\W_]+")
_SPACES = re.compile(r"[ \t\u00a0\u1680\u2000-\u200a\u202f\u205f\u3000]+")
# Zero-width and soft-hyphen characters, bidi marks, embeddings and isolates, and C0/C1
# control characters other than tab and newline: invisible in text, harmful in messages.
_INVISIBLE = re.compile(
    "[\u200b-\u200f\u2060\ufeff\u00ad\u061c\u202a-\u202e\u2066-\u2069"
    "\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]"
)


def clean(text: str) -> str:
    """Normalise Unicode oddities: NFC, no-break and odd spaces to one space, invisible
    characters removed, ends stripped."""
    text = _INVISIBLE.sub("", unicodedata.normalize("NFC", text))
    return _SPACES.sub(" ", text).strip()


def fold(text: str) -> str:
    """Lower-case and remove diacritics, as unicode61 with remove_diacritics does."""
    text = text.lower()
    if text.isascii():
        return text
    decomposed = unicodedata.normalize("NFD", text)
    # A text holds few distinct combining marks: remove each with one C-speed replace.
    for mark in {ch for ch in decomposed if ch >= "\u0300" and unicodedata.combining(ch)}:
        decomposed = decomposed.replace(mark, "")
    return decomposed


def words(text: str) -> list[str]:
    """Folded words of `text`, split as unicode61 splits them (letters and digits)."""
    return _WORD.findall(fold(text))


class _Stemmer:
    """SQLite's porter stemmer, reached through an in-memory FTS5 table."""

    def __init__(self) -> None:
        self._db = sqlite3.connect(":memory:", check_same_thread=False)
        self._db.execute(f"CREATE VIRTUAL TABLE w USING fts5(x, tokenize='{FTS_TOKENIZE}')")
        self._db.execute("CREATE VIRTUAL TABLE v USING fts5vocab(w, 'instance')")
        self._cache: dict[str, str] = {}
        self._lock = threading.Lock()

    def stems(self, folded: Iterable[str]) -> list[str]:
        folded = list(folded)
        cache = self._cache
        missing = {w for w in folded if w not in cache}
        if missing:
            self._learn(missing)
        return [cache[w] for w in folded]

    def _learn(self, missing: set[str]) -> None:
        ordered = sorted(missing)
        with self._lock:
            db = self._db
            db.executemany("INSERT INTO w(rowid, x) VALUES (?, ?)", enumerate(ordered, 1))
            found = dict(db.execute("SELECT doc, term FROM v"))
            db.execute("DELETE FROM w")
            if len(self._cache) > 500_000:
                self._cache.clear()
            for i, word in enumerate(ordered, 1):
                # A word FTS5 would not index at all keeps its folded form.
                self._cache[word] = found.get(i, word)


_STEMMER = _Stemmer()


def stem(word: str) -> str:
    """The FTS5 porter stem of one folded word."""
    return _STEMMER.stems([word])[0]


def terms(text: str) -> list[str]:
    """Stemmed, folded tokens of `text` in order: what FTS5 indexes for it."""
    return _STEMMER.stems(words(text))


def content_hash(title: str, body: str) -> str:
    """The dedup key of a story reached by no known URL or guid: a hash of its folded
    words, title and body (case, accents, spacing and punctuation ignored)."""
    return hash_words(words(title), words(body))


def hash_words(title_words: list[str], body_words: list[str]) -> str:
    """`content_hash` of a story already split into folded words."""
    key = " ".join(title_words) + "\n" + " ".join(body_words)
    return hashlib.sha1(key.encode("utf-8")).hexdigest()
