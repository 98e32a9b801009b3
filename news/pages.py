"""Article pages: the story's text and metadata pulled out of a news site's HTML."""

from __future__ import annotations

import asyncio
import codecs
import json
import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any
from urllib.parse import urljoin

import chardet
import lxml.html
from trafilatura import bare_extraction
from trafilatura.utils import load_html

from news.articles import Article, RelatedLink
from news.fetch import PAGE_ACCEPT, Fetcher
from news.parse import mostly_utf8
from news.text import clean, fold
from news.urls import canonical_url, host_of, is_http_url

log = logging.getLogger(__name__)

# Less text than this is a login wall, an index page or an error page, not an article.
MIN_PAGE_CHARS = 200
# A table cell holding this much running text is page layout, not data.
LAYOUT_CELL_CHARS = 120

_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9._:-]+)""", re.I)
_RELATED = re.compile(
    r"^(?:also read|read also|read more|see also|related|more on this story|more)\s*:\s*(.+)$",
    re.I,
)
# Leftovers an extractor sometimes keeps from ad slots and share bars.
_JUNK_LINE = re.compile(
    r"^(?:advertisement|advert|sponsored|ad|share|share this|share this article|print|email)$",
    re.I,
)
_DATE_META = (
    "article:published_time",
    "datepublished",
    "og:published_time",
    "pubdate",
    "publishdate",
    "publish_date",
    "publication_date",
    "parsely-pub-date",
    "sailthru.date",
    "dc.date",
    "dc.date.issued",
    "dcterms.created",
    "dcterms.issued",
    "date",
)
_ARTICLE_TYPES = {
    "article",
    "newsarticle",
    "reportagenewsarticle",
    "analysisnewsarticle",
    "blogposting",
    "posting",
    "liveblogposting",
    "opinionnewsarticle",
    "webpage",
}


class PageError(ValueError):
    """No article could be extracted from the page; the message says why."""


@dataclass(frozen=True, slots=True)
class PageArticle:
    """What an article page yields: text paragraphs and metadata (dates UTC-aware)."""

    url: str
    title: str | None
    paragraphs: tuple[str, ...]
    author: str | None = None
    published: datetime | None = None
    utc_offset_minutes: int | None = None
    image_url: str | None = None
    sitename: str | None = None
    categories: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    description: str | None = None
    canonical_url: str | None = None
    language: str | None = None
    related: tuple[RelatedLink, ...] = ()

    @property
    def text(self) -> str:
        """The paragraphs as one string, separated by a blank line."""
        return "\n\n".join(self.paragraphs)


# Void media tags, which libxml2's HTML parser takes for containers of all that follows.
_VOID_MEDIA = re.compile(r"</?(?:embed|source|track|param)\b[^>]*>", re.I)
_BLOCK_START = r"<(?:p|div|h[1-6]|ul|ol|li|table|section|article|blockquote|figure|pre)\b"
# A media element closed before any block of text: the player and its fallback, dropped.
_CLOSED_MEDIA = re.compile(
    rf"<(iframe|video|audio|object|canvas)\b[^>]*>(?:(?!{_BLOCK_START}|<\1\b).)*?</\1\s*>",
    re.I | re.S,
)
# What is left is unclosed: drop the tag (and its fallback words), keep what follows.
_OPEN_MEDIA = re.compile(r"<(?:iframe|video|audio|object|canvas)\b[^>]*>[^<]*", re.I)
_CLOSE_MEDIA = re.compile(r"</(?:iframe|video|audio|object|canvas)\s*>", re.I)


def unwrap_media(html: str) -> str:
    """The HTML with its embeds, players and iframes removed so that none swallows the
    text after it: void tags (`embed`, `source`, `track`) and unclosed `iframe`, `video`,
    `audio`, `object` are containers to libxml2 (an iframe's content is even raw text)."""
    if "<" not in html:
        return html
    html = _VOID_MEDIA.sub(" ", html)
    html = _CLOSED_MEDIA.sub(" ", html)
    html = _OPEN_MEDIA.sub(" ", html)
    return _CLOSE_MEDIA.sub(" ", html)


_LAYOUT_BLOCKS = frozenset(
    {"p", "div", "table", "ul", "ol", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "pre"}
)


def _cell_prose(cell: lxml.html.HtmlElement) -> int:
    """Characters of text in a table cell, leaving out tables nested in it."""
    total = len(cell.text or "")
    for child in cell:
        if not isinstance(child.tag, str) or child.tag.lower() != "table":
            total += len(child.text_content())
        total += len(child.tail or "")
    return total


def _unwrap_layout_tables(tree: lxml.html.HtmlElement) -> None:
    """Old sites lay a whole article out in a table: a table with a cell of running prose
    becomes plain blocks, so the extractor keeps its text; data tables (short cells) stay
    tables and are left out of the body."""
    # Innermost first: an outer table whose cell holds an unwrapped one is layout too.
    for table in reversed(list(tree.iter("table"))):
        cells = [
            cell
            for cell in table.iter("td", "th")
            if next(cell.iterancestors("table"), None) is table
        ]
        if not any(_cell_prose(cell) >= LAYOUT_CELL_CHARS for cell in cells):
            continue
        # Its own rows and cells, gathered before any is renamed (nested tables keep theirs).
        parts = [
            element
            for element in table.iter("thead", "tbody", "tfoot", "tr", "td", "th")
            if next(element.iterancestors("table"), None) is table
        ]
        table.tag = "div"
        for element in parts:
            # A cell of running text is a paragraph; one holding blocks, a container.
            inline = element.tag in ("td", "th") and not any(
                isinstance(child.tag, str) and child.tag.lower() in _LAYOUT_BLOCKS
                for child in element.iterdescendants()
            )
            element.tag = "p" if inline else "div"


def charset_of(content_type: str | None) -> str | None:
    """The charset parameter of a Content-Type header, if any."""
    if not content_type:
        return None
    for param in content_type.split(";")[1:]:
        name, _, value = param.partition("=")
        if name.strip().lower() == "charset" and value.strip(" \"'"):
            return value.strip(" \"'")
    return None


# Labels browsers read as windows-1252 (WHATWG Encoding): the C1 bytes are its letters.
_CP1252_LABELS = frozenset(
    {
        "iso-8859-1",
        "iso8859-1",
        "latin-1",
        "latin1",
        "l1",
        "ascii",
        "us-ascii",
        "cp819",
        "ibm819",
        "iso-ir-100",
        "windows-1252",
    }
)


def _codec(label: str | None) -> str | None:
    if not label:
        return None
    label = label.strip().lower()
    if label in _CP1252_LABELS:
        return "cp1252"
    try:
        return codecs.lookup(label).name
    except LookupError:
        return None


def decode_html(data: bytes, content_type: str | None = None) -> str:
    """Decode an HTML page: a BOM; else UTF-8 when the bytes are UTF-8 (a few invalid bytes
    replaced, whatever the page declares); else the HTTP charset, then <meta charset>, when
    the bytes decode in it; else what chardet finds; else windows-1252."""
    boms = ((b"\xef\xbb\xbf", "utf-8"), (b"\xff\xfe", "utf-16"), (b"\xfe\xff", "utf-16"))
    for bom, encoding in boms:
        if data.startswith(bom):
            return data.decode(encoding, "replace")
    if mostly_utf8(data):
        # Declarations are often wrong (a template's leftover); bytes that form UTF-8 are
        # UTF-8, and one bad byte must not turn every accented letter into mojibake.
        return data.decode("utf-8", "replace")
    declared = [charset_of(content_type)]
    found = _META_CHARSET.search(data[:4096])
    if found:
        declared.append(found.group(1).decode("ascii"))
    for label in declared:
        codec = _codec(label)
        if codec is None or codec.startswith("utf-"):
            continue  # not a charset, or UTF-8 that the bytes just showed they are not
        try:
            return data.decode(codec)
        except UnicodeDecodeError:
            continue
    guess = _codec(chardet.detect(data).get("encoding"))
    if guess is not None:
        return data.decode(guess, "replace")
    # Nothing fits: windows-1252 decodes any byte and is what such pages most often are.
    return data.decode("windows-1252", "replace")


def parse_datetime(value: str) -> tuple[datetime, int | None] | None:
    """An ISO 8601 date or date-time as (UTC-aware datetime, the source's UTC offset in
    minutes or None when it gave no zone); None when it is not such a date."""
    value = value.strip()
    if not value:
        return None
    if value.endswith(("Z", "z")):
        value = value[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        try:
            day = date.fromisoformat(value[:10])
        except ValueError:
            return None
        return datetime(day.year, day.month, day.day, tzinfo=UTC), None
    if parsed.tzinfo is None:
        # No zone given: UTC is the only honest guess, and we say we guessed.
        return parsed.replace(tzinfo=UTC), None
    offset = parsed.utcoffset()
    minutes = None if offset is None else int(offset.total_seconds() // 60)
    return parsed.astimezone(UTC), minutes


def _json_ld_objects(tree: lxml.html.HtmlElement) -> Iterator[dict[str, Any]]:
    for script in tree.iterfind(".//script[@type]"):
        if "ld+json" not in (script.get("type") or "").lower():
            continue
        try:
            data = json.loads(script.text or "")
        except ValueError:
            continue
        stack: list[Any] = [data]
        while stack:
            item = stack.pop()
            if isinstance(item, list):
                stack.extend(reversed(item))
            elif isinstance(item, dict):
                yield item
                if "@graph" in item:
                    stack.append(item["@graph"])


def _page_published(tree: lxml.html.HtmlElement) -> tuple[datetime, int | None] | None:
    # Structured data first: it carries the time and zone that htmldate often drops.
    for obj in _json_ld_objects(tree):
        kinds = obj.get("@type", "")
        kinds = kinds if isinstance(kinds, list) else [kinds]
        if any(str(k).lower() in _ARTICLE_TYPES for k in kinds):
            value = obj.get("datePublished") or obj.get("dateCreated")
            if isinstance(value, str) and (found := parse_datetime(value)):
                return found
    metas: dict[str, str] = {}
    for meta in tree.iterfind(".//meta"):
        key = (meta.get("property") or meta.get("name") or meta.get("itemprop") or "").lower()
        content = meta.get("content")
        if key and content and key not in metas:
            metas[key] = content
    for key in _DATE_META:
        if key in metas and (found := parse_datetime(metas[key])):
            return found
    for time_el in tree.iterfind(".//time[@datetime]"):
        marks = f"{time_el.get('itemprop') or ''} {time_el.get('class') or ''}".lower()
        published = "publish" in marks or "pubdate" in time_el.attrib
        if published and (found := parse_datetime(time_el.get("datetime") or "")):
            return found
    return None


def _anchors(tree: lxml.html.HtmlElement) -> dict[str, str]:
    anchors: dict[str, str] = {}
    for a in tree.iterfind(".//a[@href]"):
        label = fold(clean(a.text_content()))
        if len(label) >= 8 and label not in anchors:
            anchors[label] = a.get("href") or ""
    return anchors


def _site_matches(a: str, b: str) -> bool:
    # Same site, allowing www./amp. style subdomains: compare the last two labels.
    ha, hb = host_of(a), host_of(b)
    return bool(ha) and ha.split(".")[-2:] == hb.split(".")[-2:]


def _absolute(base: str, href: str | None) -> str | None:
    if not href:
        return None
    full = urljoin(base, href.strip())
    return full if is_http_url(full) else None


def extract_page(html: bytes | str, *, url: str, content_type: str | None = None) -> PageArticle:
    """The article on an HTML page: text paragraphs (navigation, ads, comments dropped),
    title, author, date (UTC-aware), image, site name, categories and tags.

    Raises PageError when the page holds no article text."""
    text = decode_html(html, content_type) if isinstance(html, bytes) else html
    try:
        tree = load_html(unwrap_media(text))
    except (ValueError, TypeError) as exc:
        raise PageError(f"unreadable HTML: {exc}") from exc
    if tree is None:
        raise PageError("empty or unreadable HTML")
    _unwrap_layout_tables(tree)
    published = _page_published(tree)
    anchors = _anchors(tree)
    language = tree.get("lang")
    doc = bare_extraction(
        tree,
        url=url,
        with_metadata=True,
        include_comments=False,
        include_tables=False,
        date_extraction_params={"extensive_search": False, "original_date": True},
    )
    if doc is None or isinstance(doc, dict):
        raise PageError("no article text found on the page")
    title = clean(doc.title) if doc.title else None
    paragraphs: list[str] = []
    related: list[RelatedLink] = []
    for line in (doc.text or "").split("\n"):
        line = clean(line)
        if not line or _JUNK_LINE.match(line):
            continue
        if not paragraphs and title and fold(line) == fold(title):
            continue  # the headline repeated as the first line of the text
        match = _RELATED.match(line)
        if match and len(match.group(1)) < 200:
            label = clean(match.group(1))
            related.append(RelatedLink(label, _absolute(url, anchors.get(fold(label)))))
            continue
        paragraphs.append(line)
    if sum(len(p) for p in paragraphs) < MIN_PAGE_CHARS:
        raise PageError("no article text found on the page")
    if published is None and doc.date and (found := parse_datetime(doc.date)):
        published = found
    canonical = doc.url if doc.url and is_http_url(doc.url) else None
    if canonical and not _site_matches(canonical, url):
        # A page may claim any canonical URL; only trust one on its own site.
        log.debug("ignoring canonical URL %s of %s: another site", canonical, url)
        canonical = None
    tags = tuple(
        dict.fromkeys(clean(t) for tag in (doc.tags or []) for t in tag.split(",") if clean(t))
    )
    return PageArticle(
        url=url,
        title=title,
        paragraphs=tuple(paragraphs),
        author=clean(doc.author) if doc.author else None,
        published=published[0] if published else None,
        utc_offset_minutes=published[1] if published else None,
        image_url=_absolute(url, doc.image),
        sitename=clean(doc.sitename) if doc.sitename else None,
        categories=tuple(dict.fromkeys(clean(c) for c in (doc.categories or []) if clean(c))),
        tags=tags,
        description=clean(doc.description) if doc.description else None,
        canonical_url=canonical,
        language=(doc.language or language or None),
        related=tuple(related),
    )


def fallback_title(paragraphs: tuple[str, ...], limit: int = 100) -> str | None:
    """A title made from the first paragraph, cut at a word boundary, for untitled items."""
    if not paragraphs:
        return None
    first = paragraphs[0]
    if len(first) <= limit:
        return first
    cut = first[:limit].rsplit(" ", 1)[0].rstrip(",;:-")
    return cut + "…"


def page_to_article(page: PageArticle) -> Article:
    """The Article for an extracted page (URL canonicalised, first category lower-cased)."""
    title = page.title or fallback_title(page.paragraphs)
    if not title:
        raise PageError("the page has neither a title nor text")
    category = page.categories[0].lower() if page.categories else None
    return Article(
        title=title,
        body=page.paragraphs,
        source=page.sitename,
        author=page.author,
        published=page.published,
        utc_offset_minutes=page.utc_offset_minutes,
        url=canonical_url(page.canonical_url or page.url),
        related=page.related,
        category=category,
        image_url=page.image_url,
    )


_HTML_TYPES = ("text/html", "application/xhtml+xml", "text/plain", "application/xml", "text/xml")


async def fetch_page(fetcher: Fetcher, url: str) -> PageArticle:
    """Fetch an article page and extract it (raises FetchError or PageError)."""
    result = await fetcher.get(url, accept=PAGE_ACCEPT)
    media_type = (result.content_type or "").split(";")[0].strip().lower()
    if media_type and media_type not in _HTML_TYPES:
        raise PageError(f"not an HTML page ({media_type})")
    # Extraction is CPU work (tens of ms for a big page): keep it off the event loop so the
    # bot keeps answering chats while a poll imports.
    return await asyncio.to_thread(
        extract_page, result.body, url=result.url, content_type=result.content_type
    )
