"""RSS and Atom feeds: parse them safely (feedparser underneath), turn their items into
articles, and fetch the full page when an item carries only a teaser."""

from __future__ import annotations

import asyncio
import calendar
import logging
import re
import time
import xml.parsers.expat
from collections.abc import Awaitable, Callable, Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_tz
from html import unescape
from typing import Any
from urllib.parse import urljoin

import feedparser
import lxml.etree
import lxml.html
from feedparser.encodings import convert_to_utf8

from news.articles import Article, ParseError, RelatedLink
from news.fetch import FEED_ACCEPT, Fetcher, FetchError, FetchResult
from news.pages import (
    PageArticle,
    PageError,
    fallback_title,
    fetch_page,
    parse_datetime,
    unwrap_media,
)
from news.parse import mostly_utf8
from news.text import clean
from news.text import content_hash as text_hash
from news.urls import canonical_url, is_http_url

log = logging.getLogger(__name__)

# An item with less text than this is a teaser: fetch its page for the story.
TEASER_CHARS = 600

_BLOCK_TAGS = frozenset(
    {
        *("address", "article", "aside", "blockquote", "body", "dd", "details", "div", "dl"),
        *("dt", "fieldset", "figure", "footer", "form", "h1", "h2", "h3", "h4", "h5", "h6"),
        *("header", "hr", "li", "main", "nav", "ol", "p", "pre", "section", "summary"),
        *("table", "tbody", "thead", "tfoot", "tr", "ul"),
    }
)
# Never body text: code, embeds, widgets, and image captions.
_SKIP_TAGS = frozenset(
    {
        *("script", "style", "noscript", "iframe", "object", "embed", "svg", "math"),
        *("button", "select", "textarea", "template", "audio", "video", "canvas"),
        *("figcaption", "head", "title"),
    }
)
_BR = "\x00"  # a <br> inside a paragraph, kept apart from source-formatting newlines
_WS = re.compile(r"\s+")
_ARROWS = "»→\u203a>"  # guillemet, arrow, single angle quote, greater-than
_MARKER_ONLY = re.compile(
    r"^(?:read more|read the (?:full|whole|rest of the) (?:story|article|post)|"
    r"read (?:full|whole) (?:story|article)|continue reading\b.{0,120}|keep reading|"
    rf"\(more\W*\)|more\s*[{_ARROWS}]+)\s*[.…{_ARROWS}]*$",
    re.I,
)
_MARKER_SUFFIX = re.compile(
    r"(?<=[.!?…\"\u201d\u2019)\]])\s+(?:read more|continue reading|keep reading|"
    rf"read the full (?:story|article)|more)\s*[.…{_ARROWS}]*$",
    re.I,
)
_ELLIPSIS_MARK = re.compile(r"\s*\[\s*(?:…|\.\.\.|&hellip;)\s*\]$")
_WP_FOOTER = re.compile(r"^The post .+ appeared first on .+\.?$", re.S)
_IMAGE_EXT = re.compile(r"\.(?:jpe?g|png|gif|webp|avif)(?:$|\?)", re.I)
_ENTITY_DECL = re.compile(r"<!ENTITY\s+(%\s*)?(\S+)\s+(.*?)>", re.I | re.S)
_SAFE_ENTITY_VALUE = re.compile(r"""\s*(["'])&#(?:\d{1,7}|x[0-9A-Fa-f]{1,6});\1\s*""")
_SY_MINUTES = {"hourly": 60, "daily": 1440, "weekly": 10080, "monthly": 43200, "yearly": 525600}


class FeedError(ValueError):
    """The data is not a feed we can read, or is one we refuse to read; says why."""


@dataclass(frozen=True, slots=True)
class FeedEntry:
    """One feed item, normalised: plain-text paragraphs (blank-line separated) in `text`,
    `published` UTC-aware; `truncated` when the feed marked the text as a teaser."""

    guid: str | None
    url: str | None
    title: str | None
    text: str
    published: datetime | None
    author: str | None
    categories: tuple[str, ...]
    image_url: str | None
    utc_offset_minutes: int | None = None
    truncated: bool = False
    position: int = 0  # 1-based place of the item in its feed, for error messages

    @property
    def name(self) -> str:
        """How a report names the item: its position and its guid (or link, or title)."""
        label = self.guid or self.url or self.title
        return f"item {self.position}" + (f" ({label})" if label else "")

    @property
    def paragraphs(self) -> tuple[str, ...]:
        """The text split into paragraphs."""
        return tuple(p for p in self.text.split("\n\n") if p)


@dataclass(frozen=True, slots=True)
class ParsedFeed:
    """A parsed feed. `warning` says what was wrong with a feed that was read anyway."""

    title: str | None
    link: str | None
    ttl_minutes: int | None
    entries: tuple[FeedEntry, ...]
    warning: str | None
    version: str | None = None
    encoding: str | None = None
    # Items that could not be read at all: (1-based position, reason).
    skipped: tuple[tuple[int, str], ...] = ()


# --- safety ---------------------------------------------------------------------------


def _scan_text(data: bytes) -> str:
    """The document as text good enough to find markup in, whatever its encoding."""
    if data[:2] in (b"\xff\xfe", b"\xfe\xff"):
        return data.decode("utf-16", "replace")
    if data[:2] in (b"<\x00", b"\x00<"):
        return data.decode("utf-16-le" if data[:1] == b"<" else "utf-16-be", "replace")
    # Every ASCII-compatible encoding keeps markup bytes as they are; latin-1 maps 1:1.
    return data.decode("latin-1")


# UTF-16/32 documents (BOM or not): never mistaken for broken UTF-8.
_WIDE_STARTS = (b"\xff\xfe", b"\xfe\xff", b"<\x00", b"\x00<", b"\x00\x00")


class _RootReached(Exception):
    pass


def _refuse(name: str, why: str) -> FeedError:
    return FeedError(
        f"refused: the document declares the XML entity {name!r} ({why}); "
        "entity declarations are never expanded"
    )


def _on_entity_decl(
    name: str,
    is_parameter: int,
    value: str | None,
    base: str | None,
    system_id: str | None,
    public_id: str | None,
    notation: str | None,
) -> None:
    if is_parameter:
        raise _refuse(name, "a parameter entity")
    if value is None or system_id or public_id:
        raise _refuse(name, "an external entity")
    # A short literal (what `<!ENTITY nbsp "&#160;">` declares) cannot blow up; anything
    # that refers to other entities or is long enough to multiply can.
    if len(value) > 8 or "&" in value or "<" in value:
        raise _refuse(name, "possible entity expansion attack")


def _stop_at_root(*_: Any) -> None:
    raise _RootReached


def check_entities(data: bytes) -> None:
    """Refuse documents that declare XML entities (billion laughs, quadratic blowup,
    external entities), except short literals such as `<!ENTITY nbsp "&#160;">`, which
    old RSS 0.91 feeds carry and which cannot expand."""
    if data[:2] not in (b"\xff\xfe", b"\xfe\xff", b"<\x00", b"\x00<") and not re.search(
        rb"<!ENTITY", data, re.I
    ):
        return
    # Expat reads the prolog as the real parsers will (quotes, comments and all) and
    # reports each declaration before anything could expand; we stop at the root element.
    parser = xml.parsers.expat.ParserCreate()
    parser.SetParamEntityParsing(xml.parsers.expat.XML_PARAM_ENTITY_PARSING_NEVER)
    parser.EntityDeclHandler = _on_entity_decl
    parser.StartElementHandler = _stop_at_root
    try:
        parser.Parse(data, True)
    except _RootReached:
        return
    except FeedError:
        raise
    except (xml.parsers.expat.ExpatError, ValueError, LookupError):
        pass
    # Expat could not read the prolog (an encoding it lacks, or broken markup, where the
    # lenient parser takes over): allow no entity declaration but a character reference.
    text = _scan_text(data)
    for match in _ENTITY_DECL.finditer(text):
        is_parameter, name, value = match.groups()
        if is_parameter or not _SAFE_ENTITY_VALUE.fullmatch(value):
            raise _refuse(name, "not a single character")
    if len(re.findall(r"<!ENTITY\b", text, re.I)) != len(_ENTITY_DECL.findall(text)):
        raise FeedError("refused: the document declares XML entities that cannot be checked")


# --- HTML to text -----------------------------------------------------------------------


def _html_paragraphs(html: str, base_url: str | None) -> tuple[list[str], str | None]:
    """Plain-text paragraphs of an HTML fragment, and its first real image URL."""
    try:
        root = lxml.html.fragment_fromstring(unwrap_media(html), create_parent="div")
    except (lxml.etree.ParserError, ValueError):
        return _tagless_paragraphs(html), None
    paragraphs: list[str] = []
    buffer: list[str] = []
    image: str | None = None
    skipping = 0

    def flush() -> None:
        raw = "".join(buffer)
        buffer.clear()
        # Two <br> in a row end a paragraph, as old feeds write them.
        for chunk in re.split(_BR + r"\s*" + _BR, raw):
            lines = [clean(_WS.sub(" ", line)) for line in chunk.split(_BR)]
            text = "\n".join(line for line in lines if line)
            if text:
                paragraphs.append(text)

    for event, element in lxml.etree.iterwalk(root, events=("start", "end")):
        tag = element.tag if isinstance(element.tag, str) else ""
        tag = tag.lower()
        if event == "start":
            if tag in _SKIP_TAGS or not tag:
                skipping += 1
                continue
            if skipping:
                continue
            if tag in _BLOCK_TAGS:
                flush()
            elif tag == "br":
                buffer.append(_BR)
            elif tag == "img" and image is None:
                image = _image_src(element, base_url)
            if element.text:
                buffer.append(_WS.sub(" ", element.text))
        else:
            if tag in _SKIP_TAGS or not tag:
                skipping -= 1
            elif not skipping and tag in _BLOCK_TAGS:
                flush()
            if not skipping and element.tail and element is not root:
                buffer.append(_WS.sub(" ", element.tail))
    flush()
    if not paragraphs and "<" in html:
        # libxml2 gives up on absurd nesting and drops the text; strip the tags instead.
        return _tagless_paragraphs(html), image
    return paragraphs, image


def _tagless_paragraphs(html: str) -> list[str]:
    text = re.sub(r"<(?:script|style)\b.*?</(?:script|style)\s*>", " ", html, flags=re.I | re.S)
    return _plain_paragraphs(unescape(re.sub(r"<[^>]*>", " ", text)))


def _image_src(element: Any, base_url: str | None) -> str | None:
    if element.get("width") in ("0", "1") or element.get("height") in ("0", "1"):
        return None  # a tracking pixel
    src = (element.get("src") or "").strip()
    full = urljoin(base_url or "", src) if src else ""
    return full if is_http_url(full) else None


def _plain_paragraphs(text: str) -> list[str]:
    out = []
    for chunk in re.split(r"\n\s*\n", text):
        chunk = clean(_WS.sub(" ", chunk))
        if chunk:
            out.append(chunk)
    return out


def html_to_paragraphs(html: str) -> tuple[str, ...]:
    """Plain-text paragraphs of an HTML fragment (scripts, embeds and captions dropped)."""
    return tuple(_html_paragraphs(html, None)[0])


def _strip_html(value: str) -> str:
    if "<" not in value and "&" not in value:
        return clean(value)
    return clean(" ".join(_html_paragraphs(value, None)[0]).replace("\n", " "))


def _text_field(holder: Any, key: str) -> str | None:
    """A title-like field as plain text: markup stripped only when feedparser says (or
    guesses) it is HTML, so that "5 < 6" in a plain title survives."""
    value = holder.get(key) or ""
    kind = (holder.get(f"{key}_detail") or {}).get("type") or ""
    text = _strip_html(value) if "html" in kind else clean(value)
    return text or None


def _trim_teaser(paragraphs: list[str]) -> tuple[list[str], bool]:
    """Drop "Read more" links and feed boilerplate; tell whether the text was cut short."""
    truncated = False
    while paragraphs and (_WP_FOOTER.match(paragraphs[-1]) or _MARKER_ONLY.match(paragraphs[-1])):
        if _MARKER_ONLY.match(paragraphs[-1]):
            truncated = True
        paragraphs = paragraphs[:-1]
    if paragraphs:
        last = paragraphs[-1]
        trimmed = _MARKER_SUFFIX.sub("", last)
        trimmed = _ELLIPSIS_MARK.sub("…", trimmed)
        if trimmed != last:
            truncated = True
        if trimmed.endswith(("…", "...")):
            truncated = True
        paragraphs = [*paragraphs[:-1], trimmed.strip()] if trimmed.strip() else paragraphs[:-1]
    return paragraphs, truncated


# --- parsing ----------------------------------------------------------------------------


def _xml_content_type(content_type: str | None) -> str:
    """The Content-Type to hand feedparser: always an XML type, keeping the charset.

    RFC 7303 replaced RFC 3023's "text/xml means US-ASCII" (which feedparser still applies)
    and servers often send feeds as text/html or nothing at all; the charset, when given,
    is what counts."""
    charset = None
    for param in (content_type or "").split(";")[1:]:
        name, _, value = param.partition("=")
        if name.strip().lower() == "charset" and value.strip(" \"'"):
            charset = value.strip(" \"'")
    return f"application/xml; charset={charset}" if charset else "application/xml"


def _warning(exc: BaseException | None) -> str | None:
    if exc is None:
        return None
    name = type(exc).__name__
    if name == "NonXMLContentType":
        return None
    if name == "SAXParseException":
        line = getattr(exc, "getLineNumber", lambda: None)()
        message = getattr(exc, "getMessage", lambda: str(exc))()
        where = f" at line {line}" if line else ""
        return f"malformed XML{where} ({message}); read leniently"
    if name == "CharacterEncodingOverride":
        return f"wrong encoding declared: {exc}"
    return f"{name}: {exc}"


def _utc(parsed: time.struct_time | None) -> datetime | None:
    if not parsed:
        return None
    try:
        return datetime.fromtimestamp(calendar.timegm(parsed), UTC)
    except (OverflowError, ValueError, OSError):
        return None


def _offset_minutes(raw: str | None) -> int | None:
    """The UTC offset a feed date was written in, for display in the source's zone."""
    if not raw:
        return None
    found = parse_datetime(raw)
    if found is not None:
        return found[1]
    parts = parsedate_tz(raw)
    if parts is None or parts[9] is None:
        return None
    if parts[9] == 0 and not re.search(r"[+-]\d{4}|\b(?:UT|UTC|GMT|Z)\b", raw):
        return None  # parsedate_tz says 0 for zones it does not know
    return parts[9] // 60


def _ttl(feed: Any) -> int | None:
    ttl = str(feed.get("ttl") or "").strip()
    if ttl.isdigit() and int(ttl) > 0:
        return int(ttl)
    period = str(feed.get("sy_updateperiod") or "").strip().lower()
    if period in _SY_MINUTES:
        frequency = str(feed.get("sy_updatefrequency") or "1").strip()
        per = int(frequency) if frequency.isdigit() and int(frequency) > 0 else 1
        return max(1, _SY_MINUTES[period] // per)
    return None


def _entry_image(entry: Any, html_image: str | None) -> str | None:
    candidates: list[str | None] = []
    for media in entry.get("media_content") or []:
        kind = (media.get("medium") or "").lower()
        mime = (media.get("type") or "").lower()
        url = media.get("url")
        if (
            kind == "image"
            or mime.startswith("image/")
            or (not kind and not mime and url and _IMAGE_EXT.search(url))
        ):
            candidates.append(url)
    candidates.extend(t.get("url") for t in entry.get("media_thumbnail") or [])
    for link in entry.get("links") or []:
        if link.get("rel") == "enclosure" and (link.get("type") or "").startswith("image/"):
            candidates.append(link.get("href"))
    candidates.append(html_image)
    for url in candidates:
        if url and is_http_url(url.strip()):
            return url.strip()
    return None


def _entry_text(entry: Any, base_url: str) -> tuple[list[str], str | None]:
    """The longest of the item's content and summary as paragraphs, and its first image."""
    details = [*(entry.get("content") or []), entry.get("summary_detail")]
    details = [d for d in details if d and d.get("value")]
    # The longest source is (nearly always) the fullest text; converting only that one
    # halves the cost for feeds that carry both content:encoded and a description.
    details.sort(key=lambda d: len(d["value"]), reverse=True)
    image: str | None = None
    for detail in details:
        value = detail["value"]
        if "html" in (detail.get("type") or "text/html"):
            paragraphs, found = _html_paragraphs(value, detail.get("base") or base_url)
            image = image or found
        else:
            paragraphs = _plain_paragraphs(value)
        if paragraphs:
            return paragraphs, image
    return [], image


def _entry_author(entry: Any) -> str | None:
    names = [clean(a.get("name") or "") for a in entry.get("authors") or [] if a]
    names = [n for n in dict.fromkeys(names) if n]
    if names:
        return ", ".join(names)
    author = clean(entry.get("author") or "")
    return author or None


def _entry_categories(entry: Any) -> tuple[str, ...]:
    found: list[str] = []
    for tag in entry.get("tags") or []:
        label = _strip_html(tag.get("label") or tag.get("term") or "")
        # Some feeds pack several categories into one, comma separated.
        found.extend(part.strip() for part in label.split(",") if part.strip())
    return tuple(dict.fromkeys(found))


def _entry(entry: Any, base_url: str, position: int = 0) -> FeedEntry | None:
    link = entry.get("link")
    if not link:
        link = next(
            (x.get("href") for x in entry.get("links") or [] if x.get("rel") == "alternate"),
            None,
        )
    url = urljoin(base_url, link.strip()) if link else None
    url = url if url and is_http_url(url) else None
    guid = clean(entry.get("id") or "") or None
    title = _text_field(entry, "title")
    paragraphs, html_image = _entry_text(entry, url or base_url)
    paragraphs, truncated = _trim_teaser(paragraphs)
    if not (title or paragraphs or url):
        return None
    parsed = entry.get("published_parsed") or entry.get("updated_parsed")
    raw_date = entry.get("published") if entry.get("published_parsed") else entry.get("updated")
    published = _utc(parsed)
    return FeedEntry(
        guid=guid,
        url=url,
        title=title,
        text="\n\n".join(paragraphs),
        published=published,
        author=_entry_author(entry),
        categories=_entry_categories(entry),
        image_url=_entry_image(entry, html_image),
        utc_offset_minutes=_offset_minutes(raw_date) if published else None,
        truncated=truncated,
        position=position,
    )


def parse_feed(data: bytes, *, url: str, content_type: str | None = None) -> ParsedFeed:
    """Parse an RSS (0.9x, 1.0, 2.0) or Atom feed in any encoding.

    Raises FeedError for something that is not a feed, or that declares XML entities; a
    malformed feed that can still be read gives its entries and a `warning`."""
    if not data.strip():
        raise FeedError("empty response: no feed")
    headers = {"content-type": _xml_content_type(content_type), "content-location": url}
    if not data.isascii() and data[:2] not in _WIDE_STARTS and mostly_utf8(data):
        # Bytes that form UTF-8 are UTF-8, whatever the feed declares; a few invalid ones
        # are replaced, where feedparser would re-read the whole feed as cp1252.
        data = data.decode("utf-8", "replace").encode("utf-8")
        headers["content-type"] = "application/xml; charset=utf-8"
    # Decode once, as feedparser would (HTTP charset, XML declaration, BOM, then a guess),
    # and check the document exactly as its parsers will see it: no encoding hides a DTD.
    decoding: dict[str, Any] = {}
    utf8 = convert_to_utf8(dict(headers), data, decoding)
    check_entities(utf8)
    encoding = decoding.get("encoding") or None
    if encoding:
        headers["content-type"] = "application/xml; charset=utf-8"
    parsed = feedparser.parse(
        utf8 if encoding else data,
        response_headers=headers,
        # We reduce content to plain text ourselves (scripts and styles dropped there) and
        # resolve image URLs against the entry's base: feedparser's own HTML passes would
        # only parse the same markup twice more.
        resolve_relative_uris=False,
        sanitize_html=False,
    )
    version = parsed.get("version") or None
    problems = [
        _warning(exc)
        for exc in (decoding.get("bozo_exception"), parsed.get("bozo_exception"))
        if exc is not None
    ]
    warning = "; ".join(p for p in problems if p) or None
    if not version and not parsed.entries:
        head = data[:1024].lower()
        if b"<html" in head or b"<!doctype html" in head:
            raise FeedError("not an RSS or Atom feed: got an HTML page")
        raise FeedError(f"not an RSS or Atom feed{f' ({warning})' if warning else ''}")
    feed = parsed.feed
    feed_link = feed.get("link")
    entries: list[FeedEntry] = []
    seen: set[tuple[str | None, ...]] = set()
    skipped: list[tuple[int, str]] = []
    for position, raw in enumerate(parsed.entries, 1):
        entry = _entry(raw, url, position)
        if entry is None:
            skipped.append((position, "the item has neither a title, text nor a link"))
            continue
        # An item repeated verbatim is listed once; a guid alone says which item it is, but
        # items without one are told apart by their text, never by a link they may share.
        key = (entry.guid,) if entry.guid else (entry.url, entry.title, entry.text)
        if key in seen:
            continue
        seen.add(key)
        entries.append(entry)
    if skipped:
        note = f"{len(skipped)} item(s) with neither title, text nor link skipped"
        warning = f"{warning}; {note}" if warning else note
    return ParsedFeed(
        title=_text_field(feed, "title"),
        link=urljoin(url, feed_link) if feed_link else None,
        ttl_minutes=_ttl(feed),
        entries=tuple(entries),
        warning=warning,
        version=version,
        encoding=encoding or parsed.get("encoding") or None,
        skipped=tuple(skipped),
    )


_FEED_TYPES = ("rss", "atom", "rdf", "xml")
_ROOT_TAG = re.compile(rb"<(rss|feed|rdf:RDF|html|body|head)\b", re.I)


def is_feed_document(body: bytes, content_type: str | None = None) -> bool:
    """A cheap sniff: does this response look like an RSS/Atom feed rather than an HTML page
    (for `ingest URL`, which accepts either)?"""
    media = (content_type or "").split(";")[0].strip().lower()
    if any(kind in media for kind in _FEED_TYPES) and "html" not in media:
        return True
    head = body[:65536]
    if b"<!ENTITY" in head:
        return True  # XML with a DTD, never HTML: parse_feed will say what is wrong
    first = _ROOT_TAG.search(head)
    return first is not None and first.group(1).lower() in (b"rss", b"feed", b"rdf:rdf")


# --- items to articles ------------------------------------------------------------------


def shared_links(feed: ParsedFeed) -> frozenset[str]:
    """Canonical links that are not one item's own page: the feed's homepage, and any link
    that several items share (a podcast's site, a live page). Fetching such a page would
    give every item the same text."""
    counts: dict[str, int] = {}
    for entry in feed.entries:
        if entry.url:
            key = canonical_url(entry.url)
            counts[key] = counts.get(key, 0) + 1
    shared = {url for url, count in counts.items() if count > 1}
    if feed.link:
        shared.add(canonical_url(feed.link))
    return frozenset(shared)


def needs_page(entry: FeedEntry, *, threshold: int = TEASER_CHARS) -> bool:
    """True when the item is a teaser (short, or cut off with "…"/"Read more") and has a
    link to fetch the full story from."""
    if not entry.url:
        return False
    return entry.truncated or len(entry.text) < threshold


def entry_to_article(
    entry: FeedEntry, *, feed_title: str | None, page: PageArticle | None = None
) -> Article:
    """The Article for a feed item; the item's page, when fetched, fills in the text (when
    longer) and whatever the item lacks (author, date, image, category, related links)."""
    body = entry.paragraphs
    related: tuple[RelatedLink, ...] = ()
    if page is not None and len(page.text) > len(entry.text):
        body = page.paragraphs
        related = page.related
    title = entry.title or (page.title if page else None) or fallback_title(body)
    if not title:
        raise ParseError("feed item has neither a title nor any text")
    categories = entry.categories or (page.categories if page else ())
    published, offset = entry.published, entry.utc_offset_minutes
    if published is None and page is not None:
        published, offset = page.published, page.utc_offset_minutes
    url = entry.url
    if page is not None:
        # The publisher's own address (after redirects), not a feed redirector's.
        url = page.canonical_url or page.url
    return Article(
        title=title,
        body=body,
        source=feed_title or (page.sitename if page else None),
        author=entry.author or (page.author if page else None),
        published=published,
        utc_offset_minutes=offset,
        url=canonical_url(url) if url else None,
        related=related,
        category=categories[0].lower() if categories else None,
        image_url=entry.image_url or (page.image_url if page else None),
        guid=entry.guid,
    )


def content_hash(article: Article) -> str:
    """The story's content hash, as the store dedups by it (news.text.content_hash)."""
    return text_hash(article.title, article.text)


def dedup_keys(article: Article) -> tuple[str | None, str | None, str]:
    """The keys one story is recognised by, strongest first: guid, canonical URL, hash."""
    url = canonical_url(article.url) if article.url else None
    return article.guid, url, content_hash(article)


# --- fetching ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FeedFetch:
    """A polled feed: the HTTP result and the parsed feed (None when not modified)."""

    result: FetchResult
    feed: ParsedFeed | None


@dataclass(frozen=True, slots=True)
class ImportedEntry:
    """One item made into an article; `page_error` says why its page could not be used
    (the article then carries the feed's teaser), `article` is None if nothing usable."""

    entry: FeedEntry
    article: Article | None
    page_error: str | None = None


async def fetch_feed(
    fetcher: Fetcher, url: str, *, etag: str | None = None, last_modified: str | None = None
) -> FeedFetch:
    """Fetch and parse a feed with a conditional GET (raises FetchError or FeedError)."""
    result = await fetcher.get(url, etag=etag, last_modified=last_modified, accept=FEED_ACCEPT)
    if result.not_modified:
        return FeedFetch(result, None)
    feed = await asyncio.to_thread(
        parse_feed, result.body, url=result.url, content_type=result.content_type
    )
    return FeedFetch(result, feed)


async def import_entries(
    fetcher: Fetcher,
    entries: Iterable[FeedEntry],
    *,
    feed_title: str | None,
    fetch_pages: bool = True,
    concurrency: int = 4,
    no_page: Collection[str] = frozenset(),
) -> list[ImportedEntry]:
    """Articles for `entries` (pass only the new ones), fetching the page of each teaser
    unless its canonical link is in `no_page` (see `shared_links`); a page that fails
    leaves the teaser, never the whole batch."""
    semaphore = asyncio.Semaphore(concurrency)

    async def one(entry: FeedEntry) -> ImportedEntry:
        page: PageArticle | None = None
        error: str | None = None
        if (
            fetch_pages
            and entry.url
            and needs_page(entry)
            and canonical_url(entry.url) not in no_page
        ):
            async with semaphore:
                try:
                    page = await fetch_page(fetcher, entry.url)
                except FetchError as exc:
                    error = exc.reason
                except PageError as exc:
                    error = str(exc)
        if error:
            log.info("page %s not used (%s); keeping the feed's own text", entry.url, error)
        try:
            article = entry_to_article(entry, feed_title=feed_title, page=page)
        except ParseError as exc:
            return ImportedEntry(entry, None, error or str(exc))
        return ImportedEntry(entry, article, error)

    return list(await asyncio.gather(*(one(e) for e in entries)))


async def filter_new(
    entries: Sequence[FeedEntry], is_new: Callable[[FeedEntry], Awaitable[bool]]
) -> list[FeedEntry]:
    """The entries `is_new` accepts, in feed order (checked before fetching any page)."""
    return [entry for entry in entries if await is_new(entry)]
