"""The login's operations, called alike by every front door.

Start a login attempt, fetch its code, wait for it to move, claim it (scan), confirm it, deny it,
attach an avatar to it, and log its browser in. Each takes what it needs (the `Login` services, the
answer from jscode2session, the parsed input) and returns a result or raises an `ApiError`; none
knows which front door called it, and none shapes an HTTP answer. Each state change is one
conditional UPDATE in `scenes`; the waiting polls of this process are woken at once, those of
others by the NOTIFY that rides in the same statement.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import asyncpg

from ..clock import Clock
from ..errors import (
    REFUSALS,
    DrawBudgetSpent,
    LoginAlreadyUsed,
    NotLoggedIn,
    SceneAlreadyClaimed,
    SceneClosed,
    SceneExpired,
)
from ..storage import queries
from ..storage.db import acquire
from ..storage.sessions import PgStorage
from ..wechat.client import CodeImage, Phone, WxSession
from ..wechat.crypto import Profile
from . import access, scenes
from .codes import CodeDrawer
from .context import scan_context
from .notify import Hub
from .phones import PhoneBook
from .scenes import Scene
from .steps import user_key


@dataclass(frozen=True)
class Login:
    """What the operations need: made once per app, shared by every front door."""

    pool: asyncpg.Pool
    clock: Clock
    hub: Hub
    storage: PgStorage
    drawer: CodeDrawer
    counted: Callable[[str], None]  # a step of the funnel happened (for the metrics)
    arrived: Callable[[int | None], None] = lambda entry: None  # a confirmed login's entry
    registration: str = "open"  # WXLOGIN_REGISTRATION
    phones: PhoneBook = PhoneBook("off", bytes(32))  # WXLOGIN_PHONE, and the numbers' key


async def reusable(login: Login, owner: str, fresh_for: float, appid: str) -> Scene | None:
    """The browser's own live pending scene of this kind (a refresh, a second tab): shown
    again, no new draw."""
    async with acquire(login.pool) as conn:
        found = await scenes.live_pending(conn, owner, login.clock.now(), fresh_for, appid)
    if found is not None:
        login.counted("reused")
    return found


async def start(
    login: Login,
    *,
    owner: str,
    appid: str,
    agent: str,
    ip: str,
    place: str,
    ttl: int,
    draw_budget: int,
) -> Scene:
    """A new login attempt owned by the browser key `owner`; refused while the shared budget
    of code draws for this minute is spent."""
    now = login.clock.now()
    async with acquire(login.pool) as conn:
        if draw_budget:
            wait = await queries.take_draw(conn, now, draw_budget)
            if wait:
                raise DrawBudgetSpent(wait)
        scene = await scenes.create(
            conn, owner=owner, appid=appid, browser_agent=agent, browser_ip=ip,
            browser_place=place, now=now, expires_at=now + timedelta(seconds=ttl),
        )
    login.counted("created")
    return scene


async def owned(login: Login, scene: str, owner: str | None) -> Scene:
    """The scene if the browser key `owner` owns it (else SceneNotFound)."""
    async with acquire(login.pool) as conn:
        return await scenes.get_owned(conn, scene, owner)


async def code_image(login: Login, scene: str, owner: str | None, draw_appid: str) -> CodeImage:
    """The scene's code, for its owner while it is open: drawn by WeChat once, then kept."""
    found = await owned(login, scene, owner)
    state = found.state(login.clock.now())
    if state == "expired":
        raise SceneExpired()
    if state not in scenes.OPEN:
        raise SceneClosed()
    # A scene made for a mini program this server no longer runs is drawn by today's.
    appid = found.appid if login.drawer.draws_for(found.appid) else draw_appid
    return await login.drawer.get(scene, appid)


async def wait_for_change(
    login: Login, scene: str, owner: str | None, since: str, seconds: float
) -> tuple[Scene, datetime]:
    """The scene once its state differs from `since`, or as it is after `seconds` (or at
    shutdown), and when it was read. No pooled connection is held while waiting; the row is
    read again on every wake-up, since the notification only says "look again"."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    with login.hub.watch(scene, since) as waiter:
        while True:
            waiter.event.clear()  # before the read, so a change during it is not lost
            found = await owned(login, scene, owner)
            now = login.clock.now()
            state, remaining = found.state(now), deadline - loop.time()
            if state != since or remaining <= 0 or login.hub.closing:
                return found, now
            if state in scenes.OPEN:  # wake for the expiry too
                remaining = min(remaining, found.seconds_left(now) + 0.01)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(remaining):
                    await waiter.event.wait()


async def claim(login: Login, scene: str, claimant: str, public_url: str,
                entry: int | None = None) -> dict[str, Any]:
    """Scan: the scene is this person's to confirm or deny; returns what the phone shows, and
    whether the site asks for their phone number. `entry`: how they arrived (scene value)."""
    now = login.clock.now()
    async with acquire(login.pool) as conn:
        moved = await scenes.transition(conn, scene, "scan", claimant=claimant, now=now,
                                        entry=entry)
    login.hub.wake(scene)
    login.counted("scanned")
    return {**scan_context(moved, public_url, now), "phone": login.phones.mode}


async def confirm(
    login: Login,
    scene: str,
    *,
    appid: str,
    wx: WxSession,
    profile: Profile,
    avatar_link: Callable[[str], str],
    address: str = "",
    phone: Phone | None = None,
) -> queries.User:
    """Confirm: the person behind `wx` (WeChat's answer to their code) is upserted with their
    profile, or the avatar they uploaded for this scene, and the scene is theirs, confirmed.
    When the owner's rules turn them away, the scene is denied with the reason instead, and
    the refusal (LoginRefused) is raised once that is stored."""
    claimant, now = user_key(appid, wx), login.clock.now()
    async with acquire(login.pool) as conn, conn.transaction():
        uploaded = await queries.avatar_for(conn, scene, claimant)
        admitted = await access.admit(
            conn, registration=login.registration, scene=scene, appid=appid, wx=wx,
            profile=profile, avatar_url=avatar_link(uploaded) if uploaded else profile.avatar_url,
            address=address, now=now, phone=phone, phones=login.phones,
        )
        user_id = admitted.user.id if admitted.user is not None else None
        moved = await scenes.transition(
            conn, scene, "refuse" if admitted.refused else "confirm", claimant=claimant,
            now=now, user_id=user_id, reason=admitted.refused,
        )
    login.hub.wake(scene)
    if admitted.refused is not None:
        login.counted("refused")
        raise REFUSALS[admitted.refused]()
    login.counted("confirmed")
    login.arrived(moved.entry)
    assert admitted.user is not None
    return admitted.user


async def deny(login: Login, scene: str, claimant: str) -> None:
    """Decline: only whoever scanned may; the scene is closed for good."""
    async with acquire(login.pool) as conn:
        await scenes.transition(conn, scene, "deny", claimant=claimant, now=login.clock.now())
    login.hub.wake(scene)
    login.counted("denied")


async def check_scanned(login: Login, scene: str) -> None:
    """Refuse at once (nothing decoded, no code spent) unless the scene awaits its claimant."""
    async with acquire(login.pool) as conn:
        found, now = await scenes.get(conn, scene), login.clock.now()
    if found is None or found.state(now) != "scanned":
        raise scenes.refuse(found, now)


async def check_confirmable(login: Login, scene: str, claimant: str) -> None:
    """Refuse before anything is paid for (a phone number) unless this person may confirm the
    scene now: open, and pending or scanned by them. The confirm itself checks again."""
    async with acquire(login.pool) as conn:
        found, now = await scenes.get(conn, scene), login.clock.now()
    state = found.state(now) if found is not None else None
    if found is None or state not in scenes.OPEN or (
        state == "scanned" and found.claimant != claimant
    ):
        raise scenes.refuse(found, now)


async def attach_avatar(login: Login, scene: str, claimant: str, image: bytes) -> str:
    """Keep an avatar for the scene's claimant; returns its id (confirm then uses it)."""
    avatar_id = secrets.token_urlsafe(16)
    async with acquire(login.pool) as conn, conn.transaction():
        found, now = await scenes.get(conn, scene), login.clock.now()
        # Only while the uploader holds the claim (an avatar is not a state change, so a read
        # is enough: one that lands as the scene closes is simply never used).
        if found is None or found.state(now) != "scanned":
            raise scenes.refuse(found, now)
        if found.claimant != claimant:
            raise SceneAlreadyClaimed()
        await queries.avatar_put(conn, avatar_id, scene, claimant, image, now)
    return avatar_id


async def avatar_image(login: Login, avatar_id: str) -> bytes | None:
    async with acquire(login.pool) as conn:
        return await queries.avatar_image(conn, avatar_id)


async def active_user(login: Login, user_id: object) -> queries.User | None:
    """The user a session names, unless there is none or they may not log in."""
    if not isinstance(user_id, int):
        return None
    async with acquire(login.pool) as conn:
        user = await queries.get_user(conn, user_id)
    return None if user is None or not user.active else user


@dataclass(frozen=True)
class LoggedIn:
    """A browser's login: the user, and the session the browser must now carry (None when it
    already carries it)."""

    user: queries.User
    session_id: str | None = None
    session: dict[str, Any] = field(default_factory=dict)


async def log_in(
    login: Login, found: Scene, owner: str, *, session_id: str | None, session_user: object
) -> LoggedIn:
    """The owner's browser of a confirmed scene is logged in, exactly once: a new session id
    (derived from the scene's single-use gate) to succeed `session_id`, the browser's current
    one; and a lost answer delivered again."""
    storage, now = login.storage, login.clock.now()
    async with acquire(login.pool) as conn:
        # A browser logged in already (as this person or another) goes through the gate too: a
        # new login is a new session, and its time is the login's (OIDC's auth_time).
        async with conn.transaction():
            nonce = secrets.token_bytes(16)
            opened = await scenes.open_login_gate(conn, found.scene, owner, nonce, now)
            if opened is not None and opened.user_id is not None:
                user = await queries.get_user(conn, opened.user_id)
                if user is None or not user.active:
                    raise NotLoggedIn("This account cannot log in.")
                new_id = storage.derived_id(found.scene, nonce)
                await storage.login(
                    conn, current=session_id, session_id=new_id, browser=owner, user_id=user.id,
                    now=now,
                )
                login.counted("logged_in")
                return LoggedIn(user, new_id, {"browser": owner, "user_id": user.id})
        # The gate was used before. If this browser's answer was lost, it still holds the
        # pre-login session: hand out the same post-login session again, never a second one.
        current = await scenes.get(conn, found.scene)
        if (
            session_id is not None
            and current is not None
            and current.login_nonce
            and current.expires_at > now  # re-delivery lasts as long as the scene would
        ):
            again = storage.derived_id(found.scene, current.login_nonce)
            user_id = await storage.pending_login(conn, again, session_id)
            user = await queries.get_user(conn, user_id) if user_id is not None else None
            if user is not None and user.active:
                return LoggedIn(user, again, {"browser": owner, "user_id": user.id})
        if current is not None and current.user_id is not None and (
            session_user == current.user_id  # another tab got here first, just now
        ):
            user = await queries.get_user(conn, current.user_id)
            if user is not None and user.active:
                return LoggedIn(user)
    raise LoginAlreadyUsed()
