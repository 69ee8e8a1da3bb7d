"""The pages' words in Chinese and English, chosen by `?lang=` or else `Accept-Language`."""

from __future__ import annotations

import json
from pathlib import Path

from aiohttp import web

LANGUAGES = ("zh", "en")

# The words are data, kept beside this module (one key per phrase, both languages).
STRINGS: dict[str, dict[str, str]] = json.loads(
    (Path(__file__).parent / "i18n.json").read_text(encoding="utf-8")
)
assert STRINGS["zh"].keys() == STRINGS["en"].keys()


COOKIE = "wxlogin_lang"


def language(request: web.Request) -> str:
    """`?lang=` wins, then the choice remembered from it, then the most wanted language of
    Accept-Language that we speak (q=0 means "not this one"), else English."""
    for asked in (request.query.get("lang", ""), request.cookies.get(COOKIE, "")):
        if asked in LANGUAGES:
            return asked
    best, best_weight = "en", 0.0
    for part in request.headers.get("Accept-Language", "").split(","):
        tag, *params = (piece.strip() for piece in part.split(";"))
        weight = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    weight = float(value)
                except ValueError:
                    weight = 0.0
        if not 0.0 < weight <= 1.0:
            continue
        primary = tag.lower().split("-")[0]
        if primary in LANGUAGES and weight > best_weight:
            best, best_weight = primary, weight
    return best


def remember(request: web.Request, response: web.StreamResponse) -> None:
    """A language picked with `?lang=` sticks across pages and redirects."""
    asked = request.query.get("lang", "")
    if asked in LANGUAGES and request.cookies.get(COOKIE) != asked:
        response.set_cookie(COOKIE, asked, max_age=365 * 24 * 3600, path="/", samesite="Lax",
                            httponly=True)
