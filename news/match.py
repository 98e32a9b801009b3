"""Topic matching: which subscriptions does a new story match, without scanning them all.

The percolator idea (Elasticsearch percolator, Lucene Monitor): each subscription's query
is indexed under keys that any matching story must contain. For a conjunction, one
required OR-group is enough (the rarest: by a term-frequency hint when given, else by
the longest stems); for an OR-group, one key per branch; a phrase under one of its
words; a query of field filters only under a word of one positive filter's value. A
story then gathers candidates from its own stems and field words, and only candidates
are verified with `Query.matches`. Identical queries (same canonical form) are indexed
and verified once, however many chats subscribe to them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from news.query import FIELDS, Doc, Field, Query, Term

__all__ = ["Percolator"]

# An index key: ("", stem) for a text term, (field name, word) for a field filter.
_Key = tuple[str, str]


@dataclass(slots=True)
class _Slot:
    """One distinct query, the keys it is indexed under, and its subscribers."""

    query: Query
    keys: frozenset[_Key]
    subscribers: set[int] = field(default_factory=set)
    # Candidates of a one-group query of single words with no other clause are matches
    # already (the story holds the key stem), so they skip verification.
    exact: bool = False


class Percolator:
    """An index of subscription queries, matched against one story at a time."""

    def __init__(self, term_frequency: Mapping[str, float] | None = None) -> None:
        """`term_frequency` maps stems to how common they are (e.g. document counts from
        an fts5vocab 'row' table); without it the longest stem counts as rarest."""
        self._frequency = term_frequency
        self._subscriptions: dict[int, str] = {}  # sub id -> canonical query
        self._slots: dict[str, _Slot] = {}  # canonical query -> slot
        self._index: dict[_Key, set[str]] = {}  # key -> canonical queries

    def __len__(self) -> int:
        """The number of subscriptions."""
        return len(self._subscriptions)

    def __contains__(self, sub_id: object) -> bool:
        """Whether a subscription id is indexed."""
        return sub_id in self._subscriptions

    def add(self, sub_id: int, query: Query) -> None:
        """Index a subscription (replacing any earlier query under the same id)."""
        if sub_id in self._subscriptions:
            self.remove(sub_id)
        canonical = query.canonical
        slot = self._slots.get(canonical)
        if slot is None:
            keys = self._keys(query)
            slot = _Slot(query, keys, exact=_is_exact(query))
            self._slots[canonical] = slot
            for key in keys:
                self._index.setdefault(key, set()).add(canonical)
        slot.subscribers.add(sub_id)
        self._subscriptions[sub_id] = canonical

    def add_many(self, subscriptions: Iterable[tuple[int, Query]]) -> None:
        """Index many subscriptions (e.g. all of them at start-up)."""
        for sub_id, query in subscriptions:
            self.add(sub_id, query)

    def remove(self, sub_id: int) -> None:
        """Drop a subscription; unknown ids are ignored."""
        canonical = self._subscriptions.pop(sub_id, None)
        if canonical is None:
            return
        slot = self._slots[canonical]
        slot.subscribers.discard(sub_id)
        if slot.subscribers:
            return
        del self._slots[canonical]
        for key in slot.keys:
            bucket = self._index[key]
            bucket.discard(canonical)
            if not bucket:
                del self._index[key]

    def candidates(self, doc: Doc) -> list[str]:
        """Canonical forms of the distinct queries the story must be verified against."""
        index = self._index
        found: set[str] = set()
        for stem in doc.terms:
            bucket = index.get(("", stem))
            if bucket:
                found.update(bucket)
        for name in FIELDS:
            for word in doc.field(name).split():
                bucket = index.get((name, word))
                if bucket:
                    found.update(bucket)
        return list(found)

    def match(self, doc: Doc) -> list[int]:
        """Sorted ids of the subscriptions whose query matches the story."""
        slots = self._slots
        matched: list[int] = []
        for canonical in self.candidates(doc):
            slot = slots[canonical]
            if slot.exact or slot.query.matches(doc):
                matched.extend(slot.subscribers)
        matched.sort()
        return matched

    # --- choosing keys ----------------------------------------------------------------

    def _cost(self, stem: str) -> float:
        if self._frequency is not None:
            # A stem the hint has never seen is rare; +1 makes OR-groups count branches.
            return float(self._frequency.get(stem, 0)) + 1.0
        return 1.0 / len(stem) ** 3

    def _term_key(self, term: Term) -> tuple[float, _Key]:
        # Any stem of a phrase is required; the rarest one narrows most.
        cost, stem = min((self._cost(s), s) for s in term.stems)
        return cost, ("", stem)

    def _keys(self, query: Query) -> frozenset[_Key]:
        best: tuple[float, frozenset[_Key]] | None = None
        for group in query.groups:
            chosen = [self._term_key(term) for term in group]
            option = (sum(c for c, _ in chosen), frozenset(k for _, k in chosen))
            if best is None or option[0] < best[0]:
                best = option
        if best is not None:
            return best[1]
        for flt in query.filters:
            if not flt.negated:
                return frozenset(_field_key_word(flt.field, value) for value in flt.values)
        # parse_query never builds a query without a positive group or filter.
        raise ValueError(f"query {query.canonical!r} has nothing to index")


def _field_key_word(name: Field, value: str) -> _Key:
    # Every word of the value must be in the story's field; the longest is the rarest.
    return name, max(value.split(), key=len)


def _is_exact(query: Query) -> bool:
    return (
        len(query.groups) == 1
        and not query.excluded
        and not query.filters
        and all(not term.is_phrase for term in query.groups[0])
    )
