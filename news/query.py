"""The query language shared by /search and topic subscriptions.

Grammar (SPEC "Query language"): words must all appear; ``"a phrase"``; ``OR`` (upper
case only) between terms, binding tighter than the implicit AND (``a b OR c`` is
a AND (b OR c), as in FTS5 and Google); ``-word`` / ``-"a phrase"`` exclude;
``category:NAME`` / ``source:NAME`` (also ``category:"long name"`` and
``-category:opinion``). For people used to boolean search, an upper-case ``AND`` is
ignored (a space means AND already) and ``NOT word`` is ``-word``. Every other character
is literal text or ignored: nothing the user types reaches FTS5 or SQL as syntax,
because terms are emitted only as quoted FTS5 strings made of folded words, and field
values only as bound parameters.

A parsed `Query` is a conjunction of OR-groups of terms, a list of excluded terms and a
list of field filters, so it can be run by FTS5 (`Query.fts`) and evaluated in Python on
a prepared `Doc` (`Query.matches`) with the same result.
"""

from __future__ import annotations

import dataclasses
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from news.text import clean, stem, terms, words

if TYPE_CHECKING:
    from news.articles import Article

__all__ = [
    "FIELDS",
    "MAX_QUERY_CHARS",
    "MAX_QUERY_TERMS",
    "Doc",
    "Field",
    "FieldFilter",
    "Query",
    "QueryError",
    "Term",
    "field_key",
    "parse_query",
]

MAX_QUERY_CHARS = 500
MAX_QUERY_TERMS = 30

Field = Literal["category", "source"]
FIELDS: tuple[Field, ...] = ("category", "source")

# Phones turn typed quotes into typographic ones and some keyboards turn "-" into a
# dash, so these count as the quote and the minus the user meant.
_QUOTES = str.maketrans(dict.fromkeys("\u201c\u201d\u201e\u201f\u00ab\u00bb\uff02", '"'))
_MINUS = frozenset("-\u2010\u2011\u2012\u2013\u2014\u2212\ufe63\uff0d")
# Punctuation trimmed from the ends of a bare word when it is shown back to the user.
_TRIM = "()[]{}<>;,!?*^:`~|\\"


class QueryError(ValueError):
    """A query that cannot be run; the message is a short reply for the user."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def field_key(value: str) -> str:
    """The normalised form of a category or source value: folded words, single spaces.

    A filter value matches a story's field when its key is a contiguous whole-word run
    inside the field's key (``source:bbc`` matches "BBC News"; ``category:tech`` does not
    match "biotech")."""
    return " ".join(words(clean(value)))


def _fts_string(text: str) -> str:
    return '"' + text.replace('"', '""') + '"'


@dataclass(frozen=True, slots=True, order=True)
class Term:
    """A word, or a phrase of consecutive words, as folded words and their FTS5 stems."""

    words: tuple[str, ...]
    stems: tuple[str, ...] = field(compare=False)
    # " s1 s2 " looked up in a Doc column's space-joined stems: a C-speed phrase test.
    needle: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "needle", " " + " ".join(self.stems) + " ")

    @classmethod
    def of(cls, folded: Sequence[str]) -> Term:
        """A term from folded words (as returned by `news.text.words`)."""
        ws = tuple(folded)
        return cls(ws, tuple(stem(w) for w in ws))

    @property
    def is_phrase(self) -> bool:
        """True for more than one word."""
        return len(self.words) > 1

    def fts(self) -> str:
        """This term as a quoted FTS5 string (FTS5 stems it itself)."""
        return _fts_string(" ".join(self.words))

    def text(self) -> str:
        """This term in query syntax: a word, or a quoted phrase."""
        joined = " ".join(self.words)
        return f'"{joined}"' if self.is_phrase else joined

    def found_in(self, doc: Doc) -> bool:
        """Whether the doc contains this word, or this phrase within one column."""
        doc_terms = doc.terms
        if len(self.stems) == 1:
            return self.stems[0] in doc_terms
        if not all(s in doc_terms for s in self.stems):
            return False
        needle = self.needle
        return any(needle in column for column in doc.columns)


@dataclass(frozen=True, slots=True, order=True)
class FieldFilter:
    """A constraint on a story's category or source: any of `values` (field keys) must
    occur in the field's key as a whole-word run, or none of them when `negated`.

    SQL form, one bound parameter per value:
    ``instr(' ' || coalesce(category_key, '') || ' ', ' ' || ? || ' ') > 0``, OR-ed over
    the values and wrapped in NOT when negated (coalesce so that a story without the
    field passes a negated filter, as `matches` does)."""

    field: Field
    values: tuple[str, ...]
    negated: bool = False
    # (dataclasses.field: the name `field` is this class's attribute here.)
    _needles: tuple[str, ...] = dataclasses.field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_needles", tuple(f" {v} " for v in self.values))

    def matches(self, key: str | None) -> bool:
        """Whether a story whose field has key `key` (see `field_key`) passes."""
        padded = f" {key} "
        for needle in self._needles:
            if needle in padded:
                return not self.negated
        return self.negated

    def text(self) -> str:
        """This filter in query syntax."""
        rendered = [f"{self.field}:{_quote_if_spaced(v)}" for v in self.values]
        if self.negated:
            return " ".join("-" + r for r in rendered)
        return " OR ".join(rendered)


def _quote_if_spaced(value: str) -> str:
    return f'"{value}"' if " " in value else value


@dataclass(frozen=True, slots=True, eq=False)
class Doc:
    """A story prepared once for matching: its stems, and per searchable column (title,
    highlights, body) the stems joined by spaces, for phrases."""

    terms: frozenset[str]
    columns: tuple[str, ...]
    category: str = ""
    source: str = ""
    # The stems plus "category:word" / "source:word" for each word of the field keys:
    # what the percolator looks up.
    keys: frozenset[str] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        fields = [f"category:{w}" for w in self.category.split()]
        fields += [f"source:{w}" for w in self.source.split()]
        object.__setattr__(self, "keys", self.terms.union(fields) if fields else self.terms)

    @classmethod
    def from_fields(
        cls,
        title: str,
        highlights: Sequence[str],
        body: Sequence[str],
        category: str | None,
        source: str | None,
    ) -> Doc:
        """Prepare a story as the store indexes it: highlights and body paragraphs are
        each one column, joined with a blank line (a phrase may span two paragraphs)."""
        columns: list[str] = []
        all_terms: set[str] = set()
        for text in (title, "\n\n".join(highlights), "\n\n".join(body)):
            stems = terms(text)
            all_terms.update(stems)
            columns.append(" " + " ".join(stems) + " ")
        return cls(
            terms=frozenset(all_terms),
            columns=tuple(columns),
            category=field_key(category or ""),
            source=field_key(source or ""),
        )

    @classmethod
    def from_article(cls, article: Article) -> Doc:
        """Prepare an `Article` (title, highlights, body, category, source)."""
        return cls.from_fields(
            article.title, article.highlights, article.body, article.category, article.source
        )

    def field(self, name: Field) -> str:
        """The key of the named field ("" when the story has none)."""
        return self.category if name == "category" else self.source


@dataclass(frozen=True, slots=True)
class Query:
    """A parsed query: every group in `groups` must have a term present (the terms of a
    group are OR-ed), no `excluded` term may be present, and every filter must pass.

    Groups, terms and filters are sorted and deduplicated, so equivalent spellings of a
    query are equal and have the same `canonical` form."""

    groups: tuple[tuple[Term, ...], ...]
    excluded: tuple[Term, ...]
    filters: tuple[FieldFilter, ...]
    display: str = field(default="", compare=False)
    # The same conditions prepared for `matches`, which runs for every alert candidate:
    # set operations in C where no phrase is involved.
    _all_of: frozenset[str] = field(init=False, repr=False, compare=False)
    _any_of: tuple[frozenset[str], ...] = field(init=False, repr=False, compare=False)
    _phrase_groups: tuple[tuple[Term, ...], ...] = field(init=False, repr=False, compare=False)
    _none_of: frozenset[str] = field(init=False, repr=False, compare=False)
    _excluded_phrases: tuple[Term, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Every stem of a one-term group is required (a phrase needs all its words too,
        # then its order is checked).
        all_of = {s for group in self.groups if len(group) == 1 for s in group[0].stems}
        any_of = [
            frozenset(t.stems[0] for t in group)
            for group in self.groups
            if len(group) > 1 and not any(t.is_phrase for t in group)
        ]
        phrase_groups = [g for g in self.groups if any(t.is_phrase for t in g)]
        setattr_ = object.__setattr__
        setattr_(self, "_all_of", frozenset(all_of))
        setattr_(self, "_any_of", tuple(any_of))
        setattr_(self, "_phrase_groups", tuple(phrase_groups))
        setattr_(self, "_none_of", frozenset(t.stems[0] for t in self.excluded if not t.is_phrase))
        setattr_(self, "_excluded_phrases", tuple(t for t in self.excluded if t.is_phrase))

    @property
    def canonical(self) -> str:
        """A normalised, re-parseable form: stable across spacing, case and term order."""
        parts = [" OR ".join(t.text() for t in group) for group in self.groups]
        parts += [f.text() for f in self.filters if not f.negated]
        parts += ["-" + t.text() for t in self.excluded]
        parts += [f.text() for f in self.filters if f.negated]
        return " ".join(parts)

    def fts(self) -> str | None:
        """The FTS5 MATCH expression, or None when the query has no word to look for
        (only field filters, perhaps with exclusions: see `fts_exclude`)."""
        if not self.groups:
            return None
        parts = []
        for group in self.groups:
            if len(group) == 1:
                parts.append(group[0].fts())
            else:
                parts.append("(" + " OR ".join(t.fts() for t in group) + ")")
        expression = " AND ".join(parts)
        if self.excluded:
            excluded = " OR ".join(t.fts() for t in self.excluded)
            expression = f"({expression}) NOT ({excluded})"
        return expression

    def fts_exclude(self) -> str | None:
        """When `fts` is None but there are exclusions (``category:sport -football``):
        an FTS5 expression for the stories to leave out, for
        ``rowid NOT IN (SELECT rowid FROM fts WHERE fts MATCH ?)``. Otherwise None,
        because `fts` already carries the exclusions."""
        if self.groups or not self.excluded:
            return None
        return " OR ".join(t.fts() for t in self.excluded)

    def matches(self, doc: Doc) -> bool:
        """Whether the prepared story matches, exactly as FTS5 plus the filters would."""
        terms = doc.terms
        if not self._all_of <= terms or not terms.isdisjoint(self._none_of):
            return False
        for stems in self._any_of:
            if terms.isdisjoint(stems):
                return False
        for flt in self.filters:
            if not flt.matches(doc.category if flt.field == "category" else doc.source):
                return False
        for group in self._phrase_groups:
            if not any(t.found_in(doc) for t in group):
                return False
        return not any(t.found_in(doc) for t in self._excluded_phrases)


# --- parsing ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Item:
    """One lexed element: a text term or a field value (field set), maybe negated."""

    negated: bool
    term: Term | None
    field: Field | None
    value: str  # the field key
    shown: str  # how it is displayed back


def _strip_invisible(text: str) -> str:
    # Control, format, surrogate, private-use and unassigned characters become spaces:
    # they are never part of a word for us, and must not be echoed back to the user.
    return "".join(" " if unicodedata.category(c)[0] == "C" else c for c in text)


def _read_quoted(s: str, start: int) -> tuple[str, int]:
    """The text after the quote at `start` up to the closing quote (or the end, since an
    unbalanced quote is closed for the user), and the index after it."""
    end = s.find('"', start + 1)
    if end < 0:
        end = len(s)
    return s[start + 1 : end], end + 1


def _field_of(token: str) -> tuple[Field, str] | None:
    name, sep, value = token.partition(":")
    lowered = name.lower()
    if not sep:
        return None
    for candidate in FIELDS:
        if lowered == candidate:
            return candidate, value
    return None


def _lex(s: str) -> list[_Item | None]:
    """Split the cleaned query into items and OR operators (None), dropping items that
    hold no word at all."""
    out: list[_Item | None] = []
    i, n = 0, len(s)
    not_next = False
    while i < n:
        if s[i].isspace():
            i += 1
            continue
        negated, not_next = not_next, False
        if s[i] in _MINUS:
            j = i
            while j < n and s[j] in _MINUS:
                j += 1
            if j >= n or s[j].isspace():
                i = j  # a lone dash excludes nothing
                continue
            negated, i = True, j
        if s[i] == '"':
            inner, i = _read_quoted(s, i)
            found = words(inner)
            if found:
                shown = '"' + " ".join(inner.split()) + '"'
                out.append(_Item(negated, Term.of(found), None, "", _neg(negated) + shown))
            continue
        j = i
        while j < n and not s[j].isspace() and s[j] != '"':
            j += 1
        token, i = s[i:j], j
        if not negated:
            if token == "OR":
                out.append(None)
                continue
            # Boolean habits: AND is what a space means already; NOT excludes what
            # follows, like "-". Lower-case "and"/"not" stay words.
            if token == "AND":
                continue
            if token == "NOT":
                not_next = True
                continue
        named = _field_of(token)
        if named is not None:
            name, raw = named
            if not raw and i < n and s[i] == '"':
                raw, i = _read_quoted(s, i)
            key = field_key(raw)
            if not key:
                raise QueryError(
                    f"{name}: needs a name right after the colon, "
                    f'for example {name}:sport or {name}:"long name".'
                )
            shown = f"{_neg(negated)}{name}:{_quote_if_spaced(' '.join(raw.split()))}"
            out.append(_Item(negated, None, name, key, shown))
            continue
        found = words(token)
        if found:
            # A bare token of several words ("e-mail", "don't") is a phrase, as FTS5
            # would read it inside quotes.
            shown = token.strip(_TRIM) or token
            out.append(_Item(negated, Term.of(found), None, "", _neg(negated) + shown))
    return out


def _neg(negated: bool) -> str:
    return "-" if negated else ""


def _chain(stream: list[_Item | None]) -> tuple[list[list[_Item]], list[str]]:
    """Join items linked by OR into chains; a dangling OR (at either end, or doubled) is
    ignored. Returns the chains and the display parts."""
    chains: list[list[_Item]] = []
    shown: list[str] = []
    pending_or = False
    for element in stream:
        if element is None:  # OR
            pending_or = bool(chains)
            continue
        if pending_or:
            last = chains[-1][-1]
            if last.negated or element.negated:
                raise QueryError(
                    "OR can't join an exclusion. Write the words to look for with OR, "
                    "and exclusions apart: cats OR dogs -cartoon"
                )
            if last.field != element.field:
                raise QueryError(
                    "OR can join words or phrases, or values of one field "
                    "(category:sport OR category:tech), but not a word and a field."
                )
            chains[-1].append(element)
            shown[-1] += " OR " + element.shown
        else:
            chains.append([element])
            shown.append(element.shown)
        pending_or = False
    return chains, shown


def parse_query(text: str) -> Query:
    """Parse what the user typed; raise QueryError with a friendly reply when it can't
    be run."""
    s = _strip_invisible(clean(text)).translate(_QUOTES).strip()
    if len(s) > MAX_QUERY_CHARS:
        raise QueryError(
            f"That query is too long ({len(s)} characters; at most {MAX_QUERY_CHARS}). "
            "A few key words work best."
        )
    chains, shown = _chain(_lex(s))
    count = sum(len(chain) for chain in chains)
    if count > MAX_QUERY_TERMS:
        raise QueryError(
            f"That query has too many terms ({count}; at most {MAX_QUERY_TERMS}). "
            "A few key words work best."
        )

    groups: set[tuple[Term, ...]] = set()
    excluded: set[Term] = set()
    filters: set[FieldFilter] = set()
    negated_values: dict[Field, set[str]] = {}
    for chain in chains:
        head = chain[0]
        if head.field is None:
            found = tuple(sorted({item.term for item in chain if item.term is not None}))
            if head.negated:
                excluded.update(found)
            else:
                groups.add(found)
        elif head.negated:
            negated_values.setdefault(head.field, set()).update(item.value for item in chain)
        else:
            values = tuple(sorted({item.value for item in chain}))
            filters.add(FieldFilter(head.field, values))
    for name, keys in negated_values.items():
        filters.add(FieldFilter(name, tuple(sorted(keys)), negated=True))

    if not groups and not any(not f.negated for f in filters):
        if excluded or filters:
            example = "-" + min(excluded).text() if excluded else min(filters).text().split()[0]
            raise QueryError(
                "Add at least one word to look for: exclusions alone would match almost "
                f"everything. For example: protests {example}"
            )
        raise QueryError(
            "There is nothing to search for in that. Type a few words, "
            'for example: belarus protests, or a phrase in quotes: "climate change"'
        )
    return Query(
        groups=tuple(sorted(groups)),
        excluded=tuple(sorted(excluded)),
        filters=tuple(sorted(filters)),
        display=" ".join(shown),
    )
