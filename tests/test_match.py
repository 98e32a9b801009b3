"""Topic matching: the percolator against brute force, and Python matching against FTS5.

The second property is the one that keeps alerts (`Query.matches`) and search (FTS5
running `Query.fts()` plus the filters in SQL) in agreement.
"""

from __future__ import annotations

import sqlite3

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from news.articles import Article
from news.match import Percolator
from news.query import Doc, FieldFilter, Query, QueryError, parse_query
from news.text import FTS_TOKENIZE, stem

# Words with shared stems, case and accent variants, hyphenated compounds and words that
# look like operators, so random queries and random stories often meet.
VOCABULARY = [
    "protest",
    "Protests",
    "protesters",
    "protesting",
    "Belarus",
    "minsk",
    "election",
    "elected",
    "café",
    "CAFE",
    "running",
    "runs",
    "e-mail",
    "mail",
    "covid-19",
    "19",
    "the",
    "or",
    "and",
    "not",
    "naïve",
    "tech",
    "news",
    "World",
]
# Half the words come from this core, so that phrases often meet column boundaries.
CORE = ["protest", "Belarus", "minsk", "e-mail"]
CATEGORIES = [None, "sport", "Tech", "biotech", "opinion", "opinions", "US", "intl_world"]
SOURCES = [None, "BBC News", "CNN", "bbc", "World News Tonight"]
FILTER_VALUES = ["sport", "tech", "opinion", "us", "world", "bbc", "news", "bbc news", "cnn"]
SEPARATORS = [" ", " ", " ", ", ", ". ", " - ", "\n", ": "]


@st.composite
def texts(draw: st.DrawFn, min_words: int, max_words: int) -> str:
    word = st.one_of(st.sampled_from(CORE), st.sampled_from(VOCABULARY))
    chosen = draw(st.lists(word, min_size=min_words, max_size=max_words))
    out = ""
    for word in chosen:
        out += word + draw(st.sampled_from(SEPARATORS))
    return out.strip()


@st.composite
def docs(draw: st.DrawFn) -> Article:
    return Article(
        title=draw(texts(0, 5)),
        highlights=tuple(draw(st.lists(texts(1, 6), max_size=3))),
        body=tuple(draw(st.lists(texts(1, 12), max_size=4))),
        category=draw(st.sampled_from(CATEGORIES)),
        source=draw(st.sampled_from(SOURCES)),
    )


@st.composite
def term_texts(draw: st.DrawFn) -> str:
    kind = draw(st.integers(0, 3))
    if kind == 0:  # a phrase
        return '"' + draw(texts(2, 3)) + '"'
    word = draw(st.one_of(st.sampled_from(CORE), st.sampled_from(VOCABULARY)))
    if kind == 1 and word not in ("or", "and", "not"):  # OR, AND, NOT are operators
        word = draw(st.sampled_from([word.upper(), word.title(), word + ",", "(" + word + ")"]))
    return word


@st.composite
def query_texts(draw: st.DrawFn) -> str:
    parts = [
        " OR ".join(draw(st.lists(term_texts(), min_size=1, max_size=3)))
        for _ in range(draw(st.integers(0, 3)))
    ]
    parts += ["-" + t for t in draw(st.lists(term_texts(), max_size=2))]
    for _ in range(draw(st.integers(0, 2))):
        name = draw(st.sampled_from(["category", "source"]))
        values = draw(st.lists(st.sampled_from(FILTER_VALUES), min_size=1, max_size=2))
        rendered = [f'{name}:"{v}"' if " " in v else f"{name}:{v}" for v in values]
        if draw(st.booleans()):
            parts += ["-" + r for r in rendered]
        else:
            parts.append(" OR ".join(rendered))
    if not parts:
        parts.append(draw(term_texts()))
    return " ".join(draw(st.permutations(parts)))


@st.composite
def queries(draw: st.DrawFn) -> Query:
    text = draw(query_texts())
    try:
        return parse_query(text)
    except QueryError:
        # Exclusions alone: the generator made a query a user would be told to fix.
        return parse_query(draw(term_texts()) + " " + text)


def _reply(text: str) -> str:
    """The QueryError reply to `text`, or "" when it parses."""
    try:
        parse_query(text)
    except QueryError as error:
        return str(error)
    return ""


def test_generated_queries_parse() -> None:
    """The generator makes valid queries, or exclusions alone (which `queries` fixes)."""

    @given(query_texts())
    @settings(max_examples=200, deadline=None)
    def check(text: str) -> None:
        reply = _reply(text)
        assert reply == "" or reply.startswith(_reply("-x").partition(":")[0])

    check()


# --- the percolator ---------------------------------------------------------------------


def _doc(title: str, body: str = "", category: str | None = None) -> Doc:
    return Doc.from_fields(title, [], [body] if body else [], category, "BBC News")


def test_match_add_remove_replace() -> None:
    percolator = Percolator()
    percolator.add(1, parse_query("belarus"))
    percolator.add(2, parse_query("belarus protests"))
    percolator.add(3, parse_query('"belarus protests"'))
    percolator.add(4, parse_query("Belarus"))  # the same query as 1
    percolator.add(5, parse_query("category:sport"))
    percolator.add(6, parse_query("source:bbc -belarus"))
    assert len(percolator) == 6
    assert 4 in percolator
    doc = _doc("Protests in Belarus", category="politics")
    assert percolator.match(doc) == [1, 2, 4]
    assert percolator.match(_doc("Belarus protests")) == [1, 2, 3, 4]
    assert percolator.match(_doc("Tennis", category="Sport")) == [5, 6]
    percolator.remove(1)
    percolator.remove(1)  # unknown ids are ignored
    assert percolator.match(doc) == [2, 4]
    percolator.remove(4)
    assert percolator.match(doc) == [2]
    percolator.add(2, parse_query("minsk"))  # replaces the earlier query
    assert percolator.match(doc) == []
    assert percolator.match(_doc("Minsk")) == [2, 6]
    assert len(percolator) == 4


def test_match_does_not_scan_every_subscription() -> None:
    percolator = Percolator()
    percolator.add_many((i, parse_query(f"topic{i} news")) for i in range(2000))
    percolator.add_many((3000 + i, parse_query(f'"topic{i} news" minsk')) for i in range(2000))
    percolator.add(5000, parse_query("belarus OR minsk"))
    percolator.add(5001, parse_query('"ice hockey" belarus'))
    percolator.add(5002, parse_query("belarus -hockey"))
    doc = _doc("Belarus news", "Ice hockey in Minsk, topic7 too")
    assert percolator.match(doc) == [7, 5000, 5001]
    # "topicN news" is filed under the pair (topicN, news) and matched outright; of the
    # 2000 phrase queries only the one filed under (topic7, news) is verified. The
    # exclusion is settled by the index too: "hockey" blocks it.
    verified = {query.canonical for query in percolator.candidates(doc)}
    assert verified == {'minsk "topic7 news"', 'belarus "ice hockey"'}


def test_frequency_hint_picks_the_rarest_terms() -> None:
    # The hint is keyed by stems, as an fts5vocab table lists them.
    assert [stem(w) for w in ("belarus", "elections", "sport")] == ["belaru", "elect", "sport"]
    query = parse_query("belarus elections sport")
    doc = _doc("The election in Belarus")
    plain = Percolator()
    plain.add(1, query)  # filed under the two longest stems: (belaru, elect)
    assert [q.canonical for q in plain.candidates(doc)] == [query.canonical]
    assert plain.match(doc) == []
    hinted = Percolator(term_frequency={"belaru": 500, "elect": 900, "sport": 40})
    hinted.add(1, query)  # filed under the two rarest: (sport, belaru)
    assert hinted.candidates(doc) == []
    assert hinted.match(_doc("Sport: the election in Belarus")) == [1]


def test_remove_cleans_the_index() -> None:
    percolator = Percolator()
    queries = [
        "belarus",
        "belarus news",
        "belarus -sport",
        '"ice hockey"',
        "a OR b c",
        "category:sport -category:opinion",
        'source:"bbc news" minsk',
    ]
    for i, text in enumerate(queries):
        percolator.add(i, parse_query(text))
        percolator.add(100 + i, parse_query(text))
    for i in range(len(queries)):
        percolator.remove(i)
        percolator.remove(100 + i)
    assert len(percolator) == 0
    assert percolator.match(_doc("Belarus news", "Ice hockey, a b c")) == []
    # Nothing is left behind in the index.
    tables = ("_subscriptions", "_slots", "_checked", "_rows", "_arrays", "_codes", "_uses")
    assert {name: len(getattr(percolator, name)) for name in tables} == dict.fromkeys(tables, 0)


def test_codes_of_second_keys_are_reused() -> None:
    percolator = Percolator()
    for round_ in range(3):
        # Pairs with new second keys each round, then gone: codes are freed and reused.
        for i in range(50):
            percolator.add(i, parse_query(f"belarus w{round_}x{i}"))
        assert percolator.match(_doc(f"Belarus w{round_}x7")) == [7]
        for i in range(50):
            percolator.remove(i)
    assert percolator._code_limit <= 2 + 50


def test_subscription_ids_are_non_negative() -> None:
    with pytest.raises(ValueError, match="non-negative"):
        Percolator().add(-1, parse_query("belarus"))


def test_field_only_queries_are_filed_under_the_field() -> None:
    percolator = Percolator()
    percolator.add(1, parse_query('source:"world news"'))
    percolator.add(2, parse_query("category:tech OR category:sport"))
    assert percolator.match(Doc.from_fields("x", [], [], "Biotech", "World News Tonight")) == [1]
    assert percolator.match(Doc.from_fields("x", [], [], "sport", None)) == [2]
    assert percolator.match(Doc.from_fields("world news", [], [], None, None)) == []


def test_doc_from_article() -> None:
    article = Article(
        title="Minsk", body=("Belarus protests",), highlights=("x",), category="World"
    )
    assert parse_query('"belarus protests" category:world minsk').matches(
        Doc.from_article(article)
    )


@settings(max_examples=100, deadline=None)
@given(
    st.lists(queries(), min_size=1, max_size=25),
    st.lists(docs(), min_size=1, max_size=6),
    st.sets(st.integers(0, 24)),
    st.booleans(),
)
def test_percolator_agrees_with_brute_force(
    subscriptions: list[Query], stories: list[Article], removed: set[int], hinted: bool
) -> None:
    hint = {"protest": 50, "belarus": 3, "the": 1000, "mail": 1} if hinted else None
    percolator = Percolator(term_frequency=hint)
    prepared = [Doc.from_article(article) for article in stories]
    live: dict[int, Query] = {}

    def agree() -> None:
        assert len(percolator) == len(live)
        for doc in prepared:
            expected = sorted(i for i, q in live.items() if q.matches(doc))
            assert percolator.match(doc) == expected

    # Each state is checked: all added, some removed, the removed back under new ids (the
    # index is then updated in place, not rebuilt).
    for sub_id, query in enumerate(subscriptions):
        percolator.add(sub_id, query)
        live[sub_id] = query
    agree()
    gone = sorted(removed & live.keys())
    for sub_id in gone:
        percolator.remove(sub_id)
        del live[sub_id]
    agree()
    for sub_id in gone:
        percolator.add(100 + sub_id, subscriptions[sub_id])
        live[100 + sub_id] = subscriptions[sub_id]
    agree()


# --- Python matching against SQLite FTS5 ---------------------------------------------------


def _filter_sql(flt: FieldFilter) -> tuple[str, list[str]]:
    """The SQL form documented on FieldFilter (the store's side, restated for the test)."""
    column = {"category": "category_key", "source": "source_key"}[flt.field]
    test = f"instr(' ' || coalesce({column}, '') || ' ', ' ' || ? || ' ') > 0"
    condition = "(" + " OR ".join([test] * len(flt.values)) + ")"
    return ("NOT " + condition if flt.negated else condition), list(flt.values)


def _sql_matches(db: sqlite3.Connection, query: Query) -> set[int]:
    where, params = ["1"], []
    fts, exclude = query.fts(), query.fts_exclude()
    if fts is not None:
        where.append("id IN (SELECT rowid FROM fts WHERE fts MATCH ?)")
        params.append(fts)
    if exclude is not None:
        where.append("id NOT IN (SELECT rowid FROM fts WHERE fts MATCH ?)")
        params.append(exclude)
    for flt in query.filters:
        sql, values = _filter_sql(flt)
        where.append(sql)
        params += values
    rows = db.execute(f"SELECT id FROM stories WHERE {' AND '.join(where)}", params)
    return {row[0] for row in rows}


def _load(stories: list[Article]) -> sqlite3.Connection:
    db = sqlite3.connect(":memory:")
    db.execute("CREATE TABLE stories(id INTEGER PRIMARY KEY, category_key TEXT, source_key TEXT)")
    db.execute(
        f"CREATE VIRTUAL TABLE fts USING fts5(title, highlights, body, tokenize='{FTS_TOKENIZE}')"
    )
    for i, article in enumerate(stories, 1):
        doc = Doc.from_article(article)
        # A story without the field stores NULL: coalesce in the filter keeps it passing
        # negated filters, as Query.matches does.
        db.execute(
            "INSERT INTO stories VALUES (?, ?, ?)", (i, doc.category or None, doc.source or None)
        )
        db.execute(
            "INSERT INTO fts(rowid, title, highlights, body) VALUES (?, ?, ?, ?)",
            (i, article.title, "\n\n".join(article.highlights), "\n\n".join(article.body)),
        )
    return db


@settings(max_examples=100, deadline=None)
@given(st.lists(docs(), min_size=1, max_size=10), st.lists(queries(), min_size=1, max_size=8))
def test_matches_agrees_with_fts5(stories: list[Article], subscriptions: list[Query]) -> None:
    db = _load(stories)
    try:
        prepared = {i: Doc.from_article(a) for i, a in enumerate(stories, 1)}
        for query in subscriptions:
            expected = _sql_matches(db, query)
            assert {i for i, doc in prepared.items() if query.matches(doc)} == expected, (
                query.canonical,
                query.fts(),
            )
    finally:
        db.close()


@pytest.mark.parametrize(
    ("query", "title", "highlights", "body"),
    [
        ('"belarus protests"', "", ("Minsk, Belarus", "Protests"), ()),
        ('"belarus protests"', "Belarus", (), ("Protests",)),
        ('"e mail"', "", (), ("e", "mail")),
        ("protesting -running", "Protesters", (), ("runs",)),
        ("café OR naive", "CAFE", (), ()),
    ],
)
def test_column_edges_agree_with_fts5(
    query: str, title: str, highlights: tuple[str, ...], body: tuple[str, ...]
) -> None:
    article = Article(title=title, highlights=highlights, body=body)
    db = _load([article])
    try:
        parsed = parse_query(query)
        in_sql = _sql_matches(db, parsed) == {1}
        assert parsed.matches(Doc.from_article(article)) is in_sql
    finally:
        db.close()
