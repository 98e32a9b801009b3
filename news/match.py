"""Topic matching: which subscriptions does a new story match, without scanning them all.

The percolator idea (Elasticsearch percolator, Lucene Monitor's presearcher): each
subscription's query is filed under keys that any story it matches must contain, and a
story is verified only against the queries filed under keys it holds.

A query is a conjunction of disjunctions: each OR-group (a lone word or phrase is a group
of one; a phrase contributes each of its words), and each positive field filter (any of
its values). Every disjunction gives one key per alternative: the alternative's rarest
stem, or ``field:word`` for a field value. The query is filed under the cross product of
its two rarest disjunctions (a pair of keys the story must both hold), or under the
alternatives of its only one. Rarity comes from a term-frequency hint (document counts
per stem, e.g. an fts5vocab 'row' table) or, without one, from stem length.

A query that is exactly "the story holds the keys of one of its paths" (words and
one-word field values, no phrase, no exclusion, at most two groups) is never verified:
its subscribers are filed under the keys directly. Identical queries (same canonical
form) are filed and verified once, however many chats subscribe to them.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from news.query import FIELDS, Doc, Query

__all__ = ["Percolator"]

# An index key: a stem for a text term, "field:word" for a field filter value (stems
# hold no colon, so the two never collide).
_Key = str
_Path = tuple[_Key, ...]  # one key, or two keys a story must both hold

# Without a hint, how common a stem is guessed from its length; a field word (a
# category or source) is taken to be commoner than any word.
_FIELD_COST = 1.0
# Beyond this many pairs, the cross product of two disjunctions is not worth filing.
_MAX_PATHS = 9


@dataclass(slots=True, eq=False)  # identity: slots are set members
class _Slot:
    """One distinct query, the paths it is filed under, and its subscribers."""

    query: Query
    paths: tuple[_Path, ...]
    direct: bool
    subscribers: set[int] = field(default_factory=set)


@dataclass(slots=True, eq=False)
class _Node:
    """What is filed under a key: queries to verify, subscribers matched outright, and
    the second keys of pairs that start with this key."""

    verify: set[_Slot] = field(default_factory=set)
    direct: set[int] = field(default_factory=set)
    then: dict[_Key, _Node] = field(default_factory=dict)

    def empty(self) -> bool:
        return not (self.verify or self.direct or self.then)


class Percolator:
    """An index of subscription queries, matched against one story at a time."""

    def __init__(self, term_frequency: Mapping[str, float] | None = None) -> None:
        """`term_frequency` maps stems to how common they are (e.g. document counts from
        an fts5vocab 'row' table); without it the longest stem counts as rarest."""
        self._frequency = term_frequency
        self._field_cost = (
            max(term_frequency.values(), default=1.0) + 1.0
            if term_frequency is not None
            else _FIELD_COST
        )
        self._subscriptions: dict[int, str] = {}  # sub id -> canonical query
        self._slots: dict[str, _Slot] = {}  # canonical query -> slot
        self._index: dict[_Key, _Node] = {}

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
            paths, direct = self._paths(query)
            slot = self._slots[canonical] = _Slot(query, paths, direct)
            if not direct:
                for path in paths:
                    self._node(path).verify.add(slot)
        if slot.direct:
            for path in slot.paths:
                self._node(path).direct.add(sub_id)
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
        gone = not slot.subscribers
        if gone:
            del self._slots[canonical]
        for path in slot.paths:
            if slot.direct:
                self._prune(path, lambda node: node.direct.discard(sub_id))
            elif gone:
                self._prune(path, lambda node: node.verify.discard(slot))

    def candidates(self, doc: Doc) -> list[Query]:
        """The distinct queries the story has to be verified against (subscriptions
        matched outright by their keys are not among them)."""
        return [slot.query for slot in self._gather(doc)[0]]

    def match(self, doc: Doc) -> list[int]:
        """Sorted ids of the subscriptions whose query matches the story."""
        verify, matched = self._gather(doc)
        for slot in verify:
            if slot.query.matches(doc):
                matched.update(slot.subscribers)
        return sorted(matched)

    # --- the index ----------------------------------------------------------------------

    def _node(self, path: _Path) -> _Node:
        node = self._index.get(path[0])
        if node is None:
            node = self._index[path[0]] = _Node()
        for key in path[1:]:
            child = node.then.get(key)
            if child is None:
                child = node.then[key] = _Node()
            node = child
        return node

    def _prune(self, path: _Path, change: Callable[[_Node], object]) -> None:
        first = self._index.get(path[0])
        if first is None:
            return
        if len(path) == 1:
            change(first)
        else:
            second = first.then.get(path[1])
            if second is None:
                return
            change(second)
            if second.empty():
                del first.then[path[1]]
        if first.empty():
            del self._index[path[0]]

    def _gather(self, doc: Doc) -> tuple[set[_Slot], set[int]]:
        keys = set(doc.terms)
        for name in FIELDS:
            keys.update(f"{name}:{word}" for word in doc.field(name).split())
        index = self._index
        verify: set[_Slot] = set()
        matched: set[int] = set()
        # dict.keys() & set walks the story's keys, not the index: C speed, however
        # many subscriptions there are.
        for key in index.keys() & keys:
            node = index[key]
            if node.verify:
                verify.update(node.verify)
            if node.direct:
                matched.update(node.direct)
            then = node.then
            if then:
                for second in then.keys() & keys:
                    pair = then[second]
                    if pair.verify:
                        verify.update(pair.verify)
                    if pair.direct:
                        matched.update(pair.direct)
        return verify, matched

    # --- choosing keys ------------------------------------------------------------------

    def _cost(self, key: _Key) -> float:
        if ":" in key:
            return self._field_cost
        if self._frequency is not None:
            # A stem the hint has never seen is rare; +1 makes alternatives add up.
            return float(self._frequency.get(key, 0)) + 1.0
        return 1.0 / len(key) ** 3

    def _paths(self, query: Query) -> tuple[tuple[_Path, ...], bool]:
        """The paths to file `query` under, and whether holding a path is a match."""
        cost = self._cost
        disjunctions: list[tuple[_Key, ...]] = []
        for group in query.groups:
            if len(group) == 1:
                # Every word of a lone term is required: each is a disjunction of one.
                disjunctions.extend((stem,) for stem in group[0].stems)
            else:
                disjunctions.append(tuple(min(t.stems, key=cost) for t in group))
        for flt in query.filters:
            if not flt.negated:
                disjunctions.append(
                    tuple(f"{flt.field}:{max(v.split(), key=len)}" for v in flt.values)
                )
        if not disjunctions:
            # parse_query never builds a query without a positive group or filter.
            raise ValueError(f"query {query.canonical!r} has nothing to index")
        ranked = sorted(set(disjunctions), key=lambda d: (sum(map(cost, d)), d))
        first = ranked[0]
        paths: list[_Path] = [(key,) for key in first]
        filed = 1
        if len(ranked) > 1 and len(first) * len(ranked[1]) <= _MAX_PATHS:
            filed = 2
            paths = []
            for a, b in itertools.product(first, ranked[1]):
                # The rarer key first: fewer stories reach the second step.
                pair = (a,) if a == b else tuple(sorted((a, b), key=lambda k: (cost(k), k)))
                paths.append(pair)
        exact = (
            filed == len(ranked)
            and not query.excluded
            and all(not t.is_phrase for group in query.groups for t in group)
            and all(not f.negated and all(" " not in v for v in f.values) for f in query.filters)
        )
        return tuple(dict.fromkeys(paths)), exact
