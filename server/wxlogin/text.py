"""Text that PostgreSQL (and a JSON file) can keep: no NUL, no lone surrogates."""

from __future__ import annotations


def storable(text: str) -> bool:
    """Text PostgreSQL can keep: no NUL, no lone surrogates (JSON's "\\ud800" makes them)."""
    if "\x00" in text:
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def header_text(value: str, limit: int) -> str:
    """A header as storable text: aiohttp maps undecodable bytes to surrogates."""
    cleaned = value.encode("utf-8", "replace").decode("utf-8").replace("\x00", "")
    return cleaned[:limit]
