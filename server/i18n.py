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


def language(request: web.Request) -> str:
    """`?lang=` wins; else the first of Accept-Language's choices that we speak; else English."""
    asked = request.query.get("lang", "")
    if asked in LANGUAGES:
        return asked
    choices = []
    for part in request.headers.get("Accept-Language", "").split(","):
        tag, _, params = part.strip().partition(";")
        weight = 1.0
        if params.strip().startswith("q="):
            try:
                weight = float(params.strip()[2:])
            except ValueError:
                weight = 0.0
        choices.append((weight, tag.strip().lower()))
    for _weight, tag in sorted(choices, key=lambda c: -c[0]):
        primary = tag.split("-")[0]
        if primary in LANGUAGES:
            return primary
    return "en"
