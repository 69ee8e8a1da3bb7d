"""The owner's page, `/admin`, for members of `admin`: its actions.

Every change is a form POST to `/api/admin/…` (beside the rest of the API, so a proxy that
passes `/api/` to wxlogin passes these too) that must carry this site's `Origin` (required here,
not merely checked), from a logged-in member of `admin`; it runs one of login/owner.py's audited
actions and answers 303 back to the page, or, for what is shown only once (an invitation link, a
client's secret), a page showing it. Refusals are the contract's JSON errors, and change nothing.
"""

from __future__ import annotations

import re
from urllib.parse import urlencode

from aiohttp import web

from ..clients import absolute_url
from ..errors import BadInput, ForbiddenOrigin, NotLoggedIn, NotOwner
from ..login import owner
from ..storage import queries
from ..storage.db import acquire
from ..text import storable
from . import admin_page, inputs
from .browser import current_user
from .keys import BASE, CLOCK, SERVICES, SETTINGS
from .origin import check_origin
from .peer import client_ip

OWNERS = "admin"
ID = re.compile(r"[0-9]{1,18}")


async def acting_owner(request: web.Request) -> owner.Actor:
    """The logged-in owner behind a change, or the refusal (401, 403)."""
    if "Origin" not in request.headers:
        raise ForbiddenOrigin("A change on the owner's page must come from its own page.")
    check_origin(request)
    user = await current_user(request)
    if user is None:
        raise NotLoggedIn()
    if OWNERS not in user.groups:
        raise NotOwner()
    return owner.Actor(f"user:{user.id}",
                       client_ip(request, request.app[SETTINGS].trusted_proxies))


async def page(request: web.Request) -> web.Response:
    user = await current_user(request)
    base = request.app[BASE]
    if user is None:
        raise web.HTTPFound(f"{base}/login?" + urlencode({"next": f"{base}/admin"}))
    if OWNERS not in user.groups:
        return admin_page.forbidden(request)
    search = request.query.get("q", "")[:100]
    if not storable(search):
        raise BadInput("`q` must be plain text.")
    async with acquire(request.app[SERVICES].pool) as conn:
        shown = await admin_page.gather(conn, request, search)
    return admin_page.render_page(request, user, shown, search)


def back(request: web.Request, anchor: str) -> web.HTTPSeeOther:
    return web.HTTPSeeOther(f"{request.app[BASE]}/admin#{anchor}")


def user_id(request: web.Request) -> int:
    raw = request.match_info["user"]
    if not ID.fullmatch(raw):
        raise owner.NoSuchUser()
    return int(raw)


async def change_status(request: web.Request) -> web.Response:
    actor = await acting_owner(request)
    action = request.match_info["action"]
    if action not in owner.STATUS_ACTIONS:
        raise BadInput("The action is approve, enable or disable.")
    async with acquire(request.app[SERVICES].pool) as conn:
        await owner.set_status(conn, actor, user_id(request), action, request.app[CLOCK].now())
    raise back(request, "users")


def group_name(value: object) -> str:
    if not isinstance(value, str) or not queries.GROUP.fullmatch(value.strip()):
        raise BadInput("A group's name is 1 to 64 letters, digits, '_', '.' or '-'.")
    return value.strip()


def group_list(value: object) -> list[str]:
    if value is not None and not isinstance(value, str):
        raise BadInput("Groups are names separated by commas.")
    names = [name.strip() for name in (value or "").split(",") if name.strip()]
    if len(names) > 20:
        raise BadInput("At most 20 groups.")
    return [group_name(name) for name in names]


async def change_group(request: web.Request) -> web.Response:
    actor = await acting_owner(request)
    fields = await inputs.fields(request)
    change = fields.get("change")
    if change not in ("add", "remove"):
        raise BadInput("`change` is add or remove.")
    group = group_name(fields.get("group"))
    async with acquire(request.app[SERVICES].pool) as conn:
        await owner.set_group(conn, actor, user_id(request), group, change == "add",
                              request.app[CLOCK].now())
    raise back(request, "users")


def bounded_number(value: object, name: str, low: float, high: float, default: float) -> float:
    if value is None or value == "":
        return default
    try:
        number = float(str(value))
    except ValueError:
        raise BadInput(f"`{name}` must be a number.") from None
    if not low <= number <= high:
        raise BadInput(f"`{name}` must be from {low:g} to {high:g}.")
    return number


async def create_invitation(request: web.Request) -> web.Response:
    actor = await acting_owner(request)
    fields = await inputs.fields(request)
    groups = group_list(fields.get("groups"))
    uses = int(bounded_number(fields.get("uses"), "uses", 1, 100_000, 1))
    days = bounded_number(fields.get("days"), "days", 0.01, 3660, 7)
    note = (inputs.optional_text(fields, "note", 200) or "").strip()
    async with acquire(request.app[SERVICES].pool) as conn:
        made, token = await owner.invite(conn, actor, groups=groups, uses=uses, days=days,
                                         note=note, now=request.app[CLOCK].now())
    link = f"{request.app[SETTINGS].public_url}{request.app[BASE]}/invite/{token}"
    return admin_page.shown_once(request, "admin_invite_made", link, qr=True,
                                 detail=f"#{made.id} · {made.uses} · {', '.join(made.groups)}")


async def revoke_invitation(request: web.Request) -> web.Response:
    actor = await acting_owner(request)
    raw = request.match_info["invitation"]
    if not ID.fullmatch(raw):
        raise owner.NoSuchInvitation()
    async with acquire(request.app[SERVICES].pool) as conn:
        await owner.revoke_invitation(conn, actor, int(raw), request.app[CLOCK].now())
    raise back(request, "invitations")


async def add_client(request: web.Request) -> web.Response:
    actor = await acting_owner(request)
    fields = await inputs.fields(request)
    name = (inputs.optional_text(fields, "name", 100) or "").strip()
    if not name:
        raise BadInput("Give the client a name of at most 100 characters.")
    uris = (inputs.optional_text(fields, "redirect_uris", 20 * 2049) or "").split()
    if not uris or len(uris) > 20 or not all(map(absolute_url, uris)):
        raise BadInput("Give 1 to 20 redirect URIs, each an absolute http(s) URL.")
    async with acquire(request.app[SERVICES].pool) as conn:
        client_id, secret = await owner.add_client(
            conn, actor, name=name.strip(), redirect_uris=uris, post_logout_redirect_uris=[],
            public=fields.get("public") == "on", email=None,
            allowed_groups=group_list(fields.get("allowed_groups")),
            now=request.app[CLOCK].now(),
        )
    if secret is None:
        raise back(request, "clients")
    return admin_page.shown_once(request, "admin_secret_made", secret,
                                 detail=f"client_id: {client_id}")


async def rotate_client(request: web.Request) -> web.Response:
    actor = await acting_owner(request)
    client_id = request.match_info["client"]
    if len(client_id) > 200 or not storable(client_id):
        raise owner.NoSuchClient()
    async with acquire(request.app[SERVICES].pool) as conn:
        secret = await owner.rotate_client_secret(conn, actor, client_id,
                                                  request.app[CLOCK].now())
    return admin_page.shown_once(request, "admin_secret_made", secret,
                                 detail=f"client_id: {client_id}")


def routes() -> list[web.AbstractRouteDef]:
    return [
        web.get("/admin", page),
        web.post("/api/admin/users/{user}/groups", change_group),
        web.post("/api/admin/users/{user}/{action}", change_status),
        web.post("/api/admin/invitations", create_invitation),
        web.post("/api/admin/invitations/{invitation}/revoke", revoke_invitation),
        web.post("/api/admin/clients", add_client),
        web.post("/api/admin/clients/{client}/rotate", rotate_client),
    ]
