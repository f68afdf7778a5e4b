"""What may be shown of a URL that carries credentials (a proxy's basic
auth in an InfluxDB or SMF URL): logs, /readyz, the doctor and the
session sources show the user and *** for the password. The password is
kept for the client alone."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit


def shown_url(url: str) -> str:
    """The URL as logs, /readyz and the doctor show it: a password in it
    replaced by ***."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "(an unreadable URL)"
    if parts.password is None:
        return url
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{parts.username}:***@{host}"))


def url_password(url: str | None) -> str | None:
    try:
        return urlsplit(url).password if url else None
    except ValueError:
        return None
