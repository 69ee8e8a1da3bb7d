"""What the phone is shown when it scans: which site asks, from which browser and system, where,
and how long ago the code was made; enough to notice "that isn't my laptop"."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from .scenes import Scene

BROWSERS = (
    ("MicroMessenger/", "WeChat"), ("Edg/", "Edge"), ("OPR/", "Opera"), ("Firefox/", "Firefox"),
    ("Chrome/", "Chrome"), ("Chromium/", "Chromium"), ("Safari/", "Safari"),
)
SYSTEMS = (
    ("Windows", "Windows"), ("Android", "Android"), ("iPhone", "iOS"), ("iPad", "iPadOS"),
    ("Mac OS X", "macOS"), ("CrOS", "ChromeOS"), ("HarmonyOS", "HarmonyOS"), ("Linux", "Linux"),
)


def describe_agent(agent: str) -> tuple[str, str]:
    """A coarse (browser, OS) for the phone to show; enough to notice "that isn't my laptop"."""
    browser = next((name for mark, name in BROWSERS if mark in agent), "Unknown browser")
    system = next((name for mark, name in SYSTEMS if mark in agent), "Unknown system")
    return browser, system


def scan_context(scene: Scene, public_url: str, now: datetime) -> dict[str, Any]:
    """The `context` of a scan's answer (and of any other front door's "is this you?")."""
    browser, system = describe_agent(scene.browser_agent)
    context: dict[str, Any] = {
        "site": urlsplit(public_url).hostname or public_url,
        "browser": browser,
        "os": system,
        "created_seconds_ago": max(0, int((now - scene.created_at).total_seconds())),
    }
    if scene.browser_place:
        context["place"] = scene.browser_place
    return context
