"""URL helpers for messages and logs: never show a password or a signed query string."""
from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit

_URL_IN_TEXT = re.compile(r"\b[A-Za-z][A-Za-z0-9+.-]*://[^\s\"'<>]+")


def mask_url(url: str) -> str:
    """`scheme://user:***@host:port/path` with the password hidden and any query string dropped."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparseable url>"
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, hostport = netloc.rpartition("@")
        user, has_password, _ = userinfo.partition(":")
        netloc = f"{user}:***@{hostport}" if has_password else f"{user}@{hostport}"
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def scrub_urls(text: str) -> str:
    """`text` with every URL in it masked (passwords hidden, query strings dropped)."""
    return _URL_IN_TEXT.sub(lambda match: mask_url(match.group(0)), text)


def short_reason(exc: BaseException, limit: int = 200) -> str:
    """First non-empty line of an exception's message, URLs masked, cut to `limit` characters."""
    text = scrub_urls(str(getattr(exc, "orig", None) or exc))
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    first = lines[0] if lines else type(exc).__name__
    return first if len(first) <= limit else first[: limit - 1] + "…"
