"""OPML subscription lists: read any feed reader's export, write our own."""

from __future__ import annotations

import logging
import xml.etree.ElementTree as ET
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime

import defusedxml
import defusedxml.ElementTree as SafeET

from news.urls import canonical_url, is_http_url

log = logging.getLogger(__name__)


class OpmlError(ValueError):
    """The file is not OPML we can read (or declares a DTD, which we refuse)."""


@dataclass(frozen=True, slots=True)
class OpmlFeed:
    """One subscription: the feed URL, its title and the folder it was filed under."""

    url: str
    title: str | None = None
    folder: str | None = None
    html_url: str | None = None


def _attr(element: ET.Element, name: str) -> str | None:
    # Exporters disagree on case (xmlUrl, xmlurl, XMLURL); match it case-insensitively.
    for key, value in element.attrib.items():
        if key.lower() == name.lower():
            value = value.strip()
            return value or None
    return None


def parse_opml(data: bytes) -> list[OpmlFeed]:
    """The feeds listed in an OPML document (nested outlines included), each URL once.

    DTDs and entity declarations are refused outright (no expansion, no external fetch)."""
    try:
        root = SafeET.fromstring(data, forbid_dtd=True, forbid_entities=True)
    except defusedxml.DefusedXmlException as exc:
        raise OpmlError(f"refused: the OPML file declares a DTD or entities ({exc})") from exc
    except ET.ParseError as exc:
        raise OpmlError(f"not well-formed XML: {exc}") from exc
    if root.tag.lower() != "opml":
        raise OpmlError(f"not an OPML document (root element <{root.tag}>)")
    body = next((child for child in root if child.tag.lower() == "body"), None)
    if body is None:
        raise OpmlError("OPML document has no <body>")
    feeds: list[OpmlFeed] = []
    seen: set[str] = set()

    def walk(element: ET.Element, folder: str | None) -> None:
        for child in element:
            if child.tag.lower() != "outline":
                continue
            label = _attr(child, "title") or _attr(child, "text")
            url = _attr(child, "xmlUrl")
            if url is None:
                # An outline without a feed URL is a folder; its label files the feeds inside.
                walk(child, label or folder)
                continue
            if not is_http_url(url):
                log.warning("OPML outline %r skipped: not an http(s) URL: %r", label, url)
                continue
            key = canonical_url(url)
            if key not in seen:
                seen.add(key)
                feeds.append(OpmlFeed(url, label, folder, _attr(child, "htmlUrl")))
            walk(child, folder)

    walk(body, None)
    return feeds


def write_opml(feeds: Iterable[OpmlFeed], title: str, *, now: datetime | None = None) -> str:
    """An OPML 2.0 document listing `feeds`, grouped into folders where they have one."""
    root = ET.Element("opml", version="2.0")
    head = ET.SubElement(root, "head")
    ET.SubElement(head, "title").text = title
    created = now or datetime.now(UTC)
    ET.SubElement(head, "dateCreated").text = format_datetime(created.astimezone(UTC), True)
    body = ET.SubElement(root, "body")
    folders: dict[str, ET.Element] = {}
    for feed in feeds:
        parent = body
        if feed.folder:
            if feed.folder not in folders:
                folders[feed.folder] = ET.SubElement(
                    body, "outline", text=feed.folder, title=feed.folder
                )
            parent = folders[feed.folder]
        label = feed.title or feed.url
        attrs = {"type": "rss", "text": label, "title": label, "xmlUrl": feed.url}
        if feed.html_url:
            attrs["htmlUrl"] = feed.html_url
        ET.SubElement(parent, "outline", attrs)
    ET.indent(root, space="  ")
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, "unicode") + "\n"
