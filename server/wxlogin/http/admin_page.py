"""The owner's page rendered: charts, pending approvals, users, invitations, OIDC clients and the
audit. Every value is escaped; the one script (/static/admin.js) only copies a link."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from html import escape

import segno
from aiohttp import web

from .. import i18n
from ..clients import OidcClient
from ..metrics import ARRIVALS
from ..storage import audit, invitations, oidc_clients, overview
from ..storage.db import Conn
from ..storage.queries import User
from . import charts
from .keys import BASE, CLOCK, SETTINGS
from .pages import render


@dataclass(frozen=True)
class Shown:
    now: datetime
    days: list[overview.Day]
    counts: dict[str, int]
    pending: list[overview.UserRow]
    users: list[overview.UserRow]
    invitations: list[invitations.Invitation]
    clients: list[OidcClient]
    audit: list[audit.Entry]
    arrivals: list[tuple[int, int]]


async def gather(conn: Conn, request: web.Request, search: str) -> Shown:
    now = request.app[CLOCK].now()
    return Shown(
        now=now,
        days=await overview.days(conn, now),
        counts=await overview.user_counts(conn),
        pending=await overview.users(conn, status="pending", limit=100),
        users=await overview.users(conn, search),
        invitations=await invitations.every(conn, 50),
        clients=await oidc_clients.every(conn),
        audit=await audit.recent(conn, 50),
        arrivals=await overview.arrivals(conn, now),
    )


def when(value: datetime | None, never: str) -> str:
    return f"{value:%Y-%m-%d %H:%M}" if value is not None else never


def post_button(action: str, label: str, *, fields: dict[str, str] | None = None,
                kind: str = "") -> str:
    hidden = "".join(f'<input type="hidden" name="{escape(k)}" value="{escape(v)}">'
                     for k, v in (fields or {}).items())
    return (f'<form method="post" action="{escape(action)}" class="inline">{hidden}'
            f'<button type="submit" class="small {kind}">{escape(label)}</button></form>')


def user_rows(request: web.Request, rows: list[overview.UserRow], w: dict[str, str]) -> str:
    base = request.app[BASE]
    out = []
    for row in rows:
        target = f"{base}/api/admin/users/{row.id}"
        actions = []
        if row.status == "pending":
            actions.append(post_button(f"{target}/approve", w["admin_approve"]))
        if row.status == "disabled":
            actions.append(post_button(f"{target}/enable", w["admin_enable"]))
        else:
            actions.append(post_button(f"{target}/disable", w["admin_disable"], kind="quiet"))
        groups = " ".join(
            post_button(f"{target}/groups", w["admin_remove_group"].format(group=g),
                        fields={"change": "remove", "group": g}, kind="tag")
            for g in row.groups
        )
        adder = (f'<form method="post" action="{escape(target)}/groups" class="inline">'
                 f'<input type="hidden" name="change" value="add">'
                 f'<input name="group" size="8" maxlength="64" required'
                 f' aria-label="{escape(w["admin_group_name"])}"'
                 f' placeholder="{escape(w["admin_group_name"])}">'
                 f'<button type="submit" class="small quiet">{escape(w["admin_add_group"])}'
                 f"</button></form>")
        avatar = (f'<img class="avatar" src="{escape(row.avatar_url)}" alt="" width="24"'
                  f' height="24"> ' if row.avatar_url else "")
        phone = (f'<br><span class="muted phone">{escape(row.phone_masked)}</span>'
                 if row.phone_masked else "")
        out.append(
            f'<tr data-user="{row.id}" data-status="{escape(row.status)}"><td>{row.id}</td>'
            f"<td>{avatar}{escape(row.nickname or '—')}{phone}</td>"
            f'<td><span class="badge {escape(row.status)}">'
            f"{escape(w['admin_status_' + row.status])}</span></td>"
            f"<td>{groups}{adder}</td>"
            f"<td>{when(row.last_login_at, w['admin_never'])}</td>"
            f"<td>{escape(', '.join(row.appids) or '—')}</td>"
            f'<td class="actions">{"".join(actions)}</td></tr>'
        )
    return "".join(out)


def listing(headings: list[str], rows: str, empty: str) -> str:
    """A scrollable table of `rows` under these column headings; `empty` when there are none."""
    if not rows:
        return f'<p class="muted">{escape(empty)}</p>'
    head = "".join(f'<th scope="col">{escape(heading)}</th>' for heading in headings)
    return (f'<div class="scroll"><table><thead><tr>{head}</tr></thead>'
            f"<tbody>{rows}</tbody></table></div>")


def users_table(request: web.Request, rows: list[overview.UserRow], w: dict[str, str],
                empty: str) -> str:
    return listing([w[k] for k in (
        "admin_id", "admin_nickname", "admin_status", "admin_groups", "admin_last_login",
        "admin_came_through", "admin_actions")], user_rows(request, rows, w), empty)


def activity(shown: Shown, w: dict[str, str]) -> str:
    logins = [(f"{d.day:%Y-%m-%d}", d.confirmed) for d in shown.days]
    total = {key: sum(getattr(d, key) for d in shown.days)
             for key in ("created", "scanned", "confirmed", "denied", "refused", "expired")}
    steps = [(w["admin_codes"], total["created"]), (w["admin_scanned"], total["scanned"]),
             (w["admin_confirmed"], total["confirmed"]), (w["admin_declined"], total["denied"]),
             (w["admin_refused"], total["refused"]), (w["admin_expired"], total["expired"])]
    table = "".join(f"<tr><td>{escape(day)}</td><td>{count}</td></tr>"
                    for day, count in logins if count)
    return f"""<section id="activity" class="card">
<h2>{escape(w['admin_activity'])}</h2>
<h3>{escape(w['admin_logins_chart'])}</h3>
<figure id="logins-chart" data-total="{total['confirmed']}">{charts.bars(logins,
    label=w['admin_logins_chart'])}</figure>
<details><summary>{escape(w['admin_logins_chart'])}</summary>
<table><thead><tr><th scope="col">{escape(w['admin_day'])}</th>
<th scope="col">{escape(w['admin_logins'])}</th></tr></thead><tbody>{table}</tbody></table>
</details>
<h3>{escape(w['admin_funnel_chart'])}</h3>
<figure id="funnel-chart">{charts.funnel(steps, label=w['admin_funnel_chart'])}</figure>
<h3>{escape(w['admin_arrivals'])}</h3>
{arrivals_table(shown, w)}
</section>"""


def arrivals_table(shown: Shown, w: dict[str, str]) -> str:
    rows = "".join(
        f'<tr data-arrival="{escape(ARRIVALS.get(entry, "other"))}"><td>'
        f'{escape(w.get("admin_arrival_" + ARRIVALS.get(entry, "other"), str(entry)))}'
        f"{f' ({entry})' if entry else ''}</td><td>{logins}</td></tr>"
        for entry, logins in shown.arrivals
    )
    if not rows:
        return f'<p class="muted">{escape(w["admin_no_audit"])}</p>'
    return (f'<table id="arrivals"><thead><tr><th scope="col">{escape(w["admin_arrival"])}</th>'
            f'<th scope="col">{escape(w["admin_logins"])}</th></tr></thead>'
            f"<tbody>{rows}</tbody></table>")


def invitations_section(request: web.Request, shown: Shown, w: dict[str, str]) -> str:
    base = request.app[BASE]
    rows = "".join(
        f'<tr data-invitation="{i.id}" data-state="{i.state(shown.now)}"><td>{i.id}</td>'
        f"<td>{escape(', '.join(i.groups) or '—')}</td><td>{i.used}/{i.uses}</td>"
        f"<td>{when(i.expires_at, '')}</td>"
        f"<td>{escape(w['admin_invite_state_' + i.state(shown.now)])}</td>"
        f"<td>{escape(i.note)}</td><td>"
        + (post_button(f"{base}/api/admin/invitations/{i.id}/revoke", w["admin_revoke"],
                       kind="quiet") if i.state(shown.now) == "live" else "")
        + "</td></tr>"
        for i in shown.invitations
    )
    table = listing(["#", *(w[k] for k in (
        "admin_groups", "admin_used", "admin_expires", "admin_status", "admin_invite_note",
        "admin_actions"))], rows, w["admin_no_invitations"])
    return f"""<section id="invitations" class="card">
<h2>{escape(w['admin_invitations'])}</h2>
<form method="post" action="{escape(base)}/api/admin/invitations" class="grid" id="invite-form">
<label>{escape(w['admin_invite_groups'])}<input name="groups" maxlength="400"></label>
<label>{escape(w['admin_invite_uses'])}<input name="uses" type="number" min="1" max="100000"
 value="1"></label>
<label>{escape(w['admin_invite_days'])}<input name="days" type="number" min="1" max="3660"
 value="7"></label>
<label>{escape(w['admin_invite_note'])}<input name="note" maxlength="200"></label>
<button type="submit">{escape(w['admin_invite_create'])}</button>
</form>
{table}
</section>"""


def clients_section(request: web.Request, shown: Shown, w: dict[str, str]) -> str:
    base = request.app[BASE]
    declared = request.app[SETTINGS].oidc_clients
    rows = []
    for client in [*declared, *shown.clients]:
        from_env = client in declared
        kind = w["admin_client_public"] if client.public else w["admin_client_confidential"]
        action = ""
        if from_env:
            action = f'<span class="muted">{escape(w["admin_client_declared"])}</span>'
        elif not client.public:
            action = post_button(f"{base}/api/admin/clients/{client.client_id}/rotate",
                                 w["admin_rotate"], kind="quiet")
        rows.append(
            f'<tr data-client="{escape(client.client_id)}"><td><code>'
            f"{escape(client.client_id)}</code></td><td>{escape(client.name)}</td>"
            f"<td>{escape(kind)}</td><td>{escape(' '.join(client.redirect_uris))}</td>"
            f"<td>{escape(', '.join(client.allowed_groups) or '—')}</td><td>{action}</td></tr>"
        )
    table = listing([w[k] for k in (
        "admin_client_id", "admin_client_name", "admin_client_kind", "admin_redirect_uris",
        "admin_groups", "admin_actions")], "".join(rows), w["admin_no_clients"])
    return f"""<section id="clients" class="card">
<h2>{escape(w['admin_clients'])}</h2>
{table}
<details><summary>{escape(w['admin_client_add'])}</summary>
<form method="post" action="{escape(base)}/api/admin/clients" class="grid" id="client-form">
<label>{escape(w['admin_client_name'])}<input name="name" maxlength="100" required></label>
<label>{escape(w['admin_client_redirects'])}<textarea name="redirect_uris" rows="2" required>
</textarea></label>
<label>{escape(w['admin_client_allowed'])}<input name="allowed_groups" maxlength="400"></label>
<label class="check"><input type="checkbox" name="public">
{escape(w['admin_client_public_check'])}</label>
<button type="submit">{escape(w['admin_client_add'])}</button>
</form></details>
</section>"""


def audit_section(shown: Shown, w: dict[str, str]) -> str:
    rows = "".join(
        f"<tr><td>{when(e.at, '')}</td><td>{escape(e.actor)}</td><td>{escape(e.action)}</td>"
        f"<td>{escape(e.subject)}</td>"
        f"<td><code>{escape(json.dumps(e.detail, ensure_ascii=False)) if e.detail else ''}"
        f"</code></td><td>{escape(e.address)}</td></tr>"
        for e in shown.audit
    )
    body = listing([w[k] for k in (
        "admin_when", "admin_who", "admin_what", "admin_whom", "admin_detail", "admin_address")],
        rows, w["admin_no_audit"])
    return f'<section id="audit" class="card"><h2>{escape(w["admin_audit"])}</h2>{body}</section>'


def render_page(request: web.Request, user: User, shown: Shown, search: str) -> web.Response:
    w = i18n.STRINGS[i18n.language(request)]
    base = request.app[BASE]
    mode = request.app[SETTINGS].registration
    total = sum(shown.counts.values())
    body = f"""<main class="admin">
<header class="admin-head"><h1>{escape(w['admin_title'])}</h1>
<p class="muted">{escape(w['admin_logged_in'])}: <strong>{escape(user.nickname or '—')}</strong>
 (#{user.id}) · {escape(w['admin_mode'])}: <strong id="registration">{escape(mode)}</strong>
 — {escape(w['admin_mode_' + mode])}</p></header>
{activity(shown, w)}
<section id="pending" class="card">
<h2>{escape(w['admin_pending'])} ({shown.counts.get('pending', 0)})</h2>
{users_table(request, shown.pending, w, w['admin_no_pending'])}
</section>
<section id="users" class="card">
<h2>{escape(w['admin_users'])}</h2>
<p class="muted">{escape(w['admin_users_count'].format(n=total))}</p>
<form method="get" action="{escape(base)}/admin#users" class="search" role="search">
<input name="q" value="{escape(search)}" maxlength="100" aria-label="{escape(w['admin_search'])}"
 placeholder="{escape(w['admin_search'])}">
<button type="submit">{escape(w['admin_search_button'])}</button></form>
{users_table(request, shown.users, w, w['admin_no_users'])}
</section>
{invitations_section(request, shown, w)}
{clients_section(request, shown, w)}
{audit_section(shown, w)}
</main>"""
    return render(request, title_key="admin_title", body=body)


def forbidden(request: web.Request) -> web.Response:
    w = i18n.STRINGS[i18n.language(request)]
    body = (f'<main><section class="card"><h1>{escape(w["admin_title"])}</h1>'
            f'<p id="forbidden">{escape(w["admin_forbidden"])}</p></section></main>')
    return render(request, title_key="admin_title", body=body, status=403)


def shown_once(request: web.Request, message_key: str, value: str, *, detail: str = "",
               qr: bool = False) -> web.Response:
    """A link or a secret that is never shown again: with a copy button (and a QR code)."""
    w = i18n.STRINGS[i18n.language(request)]
    code = ""
    if qr:
        svg = segno.make(value, error="m").svg_inline(scale=5, dark="#111", light="#fff")
        code = f'<figure class="qr" id="shown-qr">{svg}</figure>'
    body = f"""<main><section class="card" id="shown">
<h1>{escape(w['admin_title'])}</h1>
<p>{escape(w[message_key])}</p>
<p class="muted">{escape(detail)}</p>
{code}
<p><input id="shown-value" readonly value="{escape(value)}" aria-label="{escape(w[message_key])}">
</p>
<p><button type="button" id="copy" data-done="{escape(w['admin_copied'])}">
{escape(w['admin_copy'])}</button></p>
<p><a href="{escape(request.app[BASE])}/admin">{escape(w['admin_back'])}</a></p>
</section></main>"""
    return render(request, title_key="admin_title", body=body, scripts=("admin.js",))
