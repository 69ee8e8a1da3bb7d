"""The audit: every owner action and every refused login, kept `WXLOGIN_AUDIT_DAYS` days."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from .db import Conn


@dataclass(frozen=True)
class Entry:
    id: int
    at: datetime
    actor: str    # "user:ID" on the owner's page, "cli" in a terminal, the person for a refusal
    action: str   # e.g. "approve", "disable", "invite", "login_refused"
    subject: str  # whom or what: "user:ID", "invitation:ID", "client:ID"
    detail: dict[str, Any]
    address: str  # the client's address, when there was one

    def described(self) -> dict[str, Any]:
        return {"id": self.id, "at": self.at.isoformat(), "actor": self.actor,
                "action": self.action, "subject": self.subject, "detail": self.detail,
                "address": self.address}


async def record(
    conn: Conn, *, at: datetime, actor: str, action: str, subject: str = "",
    detail: dict[str, Any] | None = None, address: str = "",
) -> None:
    await conn.execute(
        "INSERT INTO wxlogin.audit (at, actor, action, subject, detail, address)"
        " VALUES ($1, $2, $3, $4, $5::jsonb, $6)",
        at, actor, action, subject, json.dumps(detail or {}, ensure_ascii=False), address,
    )


async def recent(conn: Conn, limit: int = 100) -> list[Entry]:
    rows = await conn.fetch(
        "SELECT id, at, actor, action, subject, detail::text AS detail, address"
        " FROM wxlogin.audit ORDER BY at DESC, id DESC LIMIT $1",
        limit,
    )
    return [Entry(**{**dict(row), "detail": json.loads(row["detail"])}) for row in rows]
