"""URL helpers: the canonical form used to recognise one story behind many links."""

from __future__ import annotations

from urllib.parse import unquote, urlsplit, urlunsplit

# Query parameters that identify a click, a campaign or a share, never the page itself.
TRACKING_PARAMS = frozenset(
    {
        "fbclid",
        "gclid",
        "gclsrc",
        "dclid",
        "gbraid",
        "wbraid",
        "msclkid",
        "yclid",
        "twclid",
        "ttclid",
        "li_fat_id",
        "mc_cid",
        "mc_eid",
        "igshid",
        "igsh",
        "ref",
        "ref_src",
        "ref_url",
        "referrer",
        "cmpid",
        "ocid",
        "spm",
        "_ga",
        "_gl",
        "_hsenc",
        "_hsmi",
        "__hssc",
        "__hstc",
        "__hsfp",
        "hsctatracking",
        "mkt_tok",
        "_openstat",
        "rb_clickid",
        "guccounter",
        "guce_referrer",
        "guce_referrer_sig",
        "xtor",
        "icid",
        "smid",
        "s_cid",
        "wt.mc_id",
        "wt_mc",
        "oly_anon_id",
        "oly_enc_id",
        "vero_id",
        "vero_conv",
        "ck_subscriber_id",
        "__twitter_impression",
        "soc_src",
        "soc_trk",
        "sr_share",
        "at_medium",
        "at_campaign",
        "at_custom1",
        "at_custom2",
        "at_custom3",
        "at_custom4",
    }
)
# Whole families: utm_source, ns_campaign (BBC), pk_kwd (Matomo), hsa_ad (HubSpot) ...
TRACKING_PREFIXES = ("utm_", "ns_", "pk_", "mtm_", "hsa_", "itm_")

_DEFAULT_PORTS = {"http": 80, "https": 443}


def is_http_url(s: str) -> bool:
    """True for an absolute http(s) URL with a host."""
    try:
        parts = urlsplit(s.strip())
        _ = parts.port  # raises ValueError on a malformed port
    except ValueError:
        return False
    return parts.scheme.lower() in _DEFAULT_PORTS and bool(parts.hostname)


def is_tracking_param(name: str) -> bool:
    """True for a query parameter name that only tracks the click (utm_*, fbclid, ...)."""
    name = unquote(name).strip().lower()
    return name in TRACKING_PARAMS or name.startswith(TRACKING_PREFIXES)


def canonical_url(url: str) -> str:
    """The canonical form of an http(s) URL: lower-case scheme and host, no default port,
    no fragment, no tracking parameters, remaining parameters sorted; path case kept.
    Anything that is not an http(s) URL comes back stripped but otherwise unchanged."""
    url = url.strip()
    if not is_http_url(url):
        return url
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").rstrip(".")
    if ":" in host:  # an IPv6 literal keeps its brackets
        host = f"[{host}]"
    port = parts.port
    netloc = host if port is None or port == _DEFAULT_PORTS[scheme] else f"{host}:{port}"
    if parts.username is not None:
        # Userinfo is rare in feeds but belongs to the address; keep it as written.
        userinfo = parts.netloc.rpartition("@")[0]
        netloc = f"{userinfo}@{netloc}"
    path = parts.path or "/"
    # Filter and sort the raw pairs without re-encoding them, so `a=b%20c` stays as written.
    pairs = [
        pair
        for pair in parts.query.split("&")
        if pair and not is_tracking_param(pair.partition("=")[0])
    ]
    query = "&".join(sorted(pairs))
    return urlunsplit((scheme, netloc, path, query, ""))


def host_of(url: str) -> str:
    """The lower-case host of a URL ("" when it has none): the key for per-host limits."""
    try:
        return (urlsplit(url.strip()).hostname or "").rstrip(".").lower()
    except ValueError:
        return ""
