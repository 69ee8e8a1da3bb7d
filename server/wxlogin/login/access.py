"""Who may log in: the registration mode, invitations, and pending or disabled accounts.

`admit` decides, inside the login's transaction, for every door that makes a user (the scene's
confirm, the mini program's own token): the person's locks are held from the lookup to the
write, and an invitation's use is spent in the same transaction, so a login that fails later
gives it back.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from ..storage import audit, invitations, queries
from ..storage.db import Conn
from ..wechat.client import Phone, WxSession
from ..wechat.crypto import Profile
from .phones import PhoneBook, masked


def sealer(phone: Phone | None, phones: PhoneBook | None
           ) -> Callable[[int], tuple[bytes, str]] | None:
    """How a shared number is kept: sealed to its user's row, and masked for the owner."""
    if phone is None or phones is None:
        return None
    book = phones
    return lambda user_id: (book.seal(phone.number, f"user:{user_id}"), masked(phone.number))


def stranger(appid: str, openid: str) -> str:
    """A newcomer turned away, as the audit names them: the same person always the same, but
    not their openid (the page shows the audit)."""
    return "wechat:" + hashlib.sha256(f"{appid}:{openid}".encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Admission:
    user: queries.User | None  # None only for a newcomer turned away (nothing is made)
    refused: str | None = None  # approval_pending, not_invited or user_disabled


def status_for(current: str | None, registration: str, invited: bool) -> str | None:
    """The status a login leaves the person in; None: a newcomer who may not even ask.

    An invitation or an open site lets anyone in who is not disabled (a pending account too:
    "open" means nobody waits for approval). Otherwise an existing account keeps its status,
    and a newcomer waits (approval) or is turned away (invite)."""
    if current == "disabled":
        return current
    if invited or registration == "open":
        return "active"
    if current is not None:
        return current
    return "pending" if registration == "approval" else None


async def admit(
    conn: Conn,
    *,
    registration: str,
    scene: str | None,
    appid: str,
    wx: WxSession,
    profile: Profile,
    avatar_url: str | None,
    address: str,
    now: datetime,
    phone: Phone | None = None,
    phones: PhoneBook | None = None,
) -> Admission:
    """Find or make the person behind `wx` under the owner's rules; a refusal is audited."""
    person = await queries.find_person(conn, appid=appid, openid=wx.openid, unionid=wx.unionid)
    invitation = None
    if person.status != "disabled" and scene is not None:
        invitation = await invitations.redeem(conn, scene, now)
    status = status_for(person.status, registration, invitation is not None)
    user = None
    if status is not None and status != "disabled":
        user = await queries.save_person(
            conn, person, appid=appid, openid=wx.openid, unionid=wx.unionid,
            nickname=profile.nickname, avatar_url=avatar_url, now=now, status=status,
            logged_in=status == "active", phone=sealer(phone, phones),
        )
    if invitation is not None and user is not None:
        if invitation.groups:
            await queries.add_groups(conn, user.id, list(invitation.groups), now)
            user = await queries.get_user(conn, user.id) or user
        await audit.record(
            conn, at=now, actor=f"user:{user.id}",
            action="invitation_used", subject=f"invitation:{invitation.id}",
            detail={"groups": list(invitation.groups), "appid": appid}, address=address,
        )
    refused = {None: "not_invited", "pending": "approval_pending",
               "disabled": "user_disabled"}.get(status)
    if refused is None:
        return Admission(user)
    known = person.user_id or (user.id if user else None)
    await audit.record(
        conn, at=now, actor=f"user:{known}" if known else stranger(appid, wx.openid),
        action="login_refused", subject=f"user:{known}" if known else "",
        detail={"reason": refused, "appid": appid}, address=address,
    )
    return Admission(user, refused)
