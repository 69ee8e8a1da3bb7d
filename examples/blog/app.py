"""A tiny blog whose comments need a WeChat login.

The login is mounted under /wxlogin on the blog's own application: one event loop, one port,
one database pool (the blog's comments sit in its own `comments` table, the login's tables in
the `wxlogin` schema). The blog asks `current_user(request)` who is reading and guards comment
posting with `@login_required`; nothing else of the login's inside is touched.
"""

from __future__ import annotations

import logging
import sys
import warnings
from collections.abc import AsyncIterator
from html import escape
from urllib.parse import urlsplit

import asyncpg
from aiohttp import web

from wxlogin import Settings, current_user, login_required, mount
from wxlogin.clock import Clock, SystemClock
from wxlogin.ops.cli import database  # the embedded PostgreSQL, when no database URL is set
from wxlogin.settings import SettingsError

POOL = web.AppKey("blog_pool", asyncpg.Pool)
CLOCK = web.AppKey("blog_clock", Clock)
LOGIN_PREFIX = "/wxlogin"
MAX_COMMENT = 1000

POSTS = {
    "hello": (
        "Hello, WeChat login",
        "This blog's comments need a login: scan the code with WeChat, confirm on the phone, "
        "and this page comes back with a comment box.",
    ),
    "long-polling": (
        "Why the login page long-polls",
        "The page asks once and the server answers the moment the phone confirms: no request "
        "every second, no half-second lag.",
    ),
}

SCHEMA = """
CREATE TABLE IF NOT EXISTS comments (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    post        text NOT NULL,
    user_id     bigint NOT NULL,
    author      text NOT NULL,
    body        text NOT NULL,
    created_at  timestamptz NOT NULL
)
"""

CSP = "default-src 'self'; img-src 'self' https: data:; frame-ancestors 'none'; base-uri 'none'"


def page(title: str, body: str, status: int = 200) -> web.Response:
    html = f"""<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{escape(title)}</title></head>
<body style="font: 16px/1.5 system-ui, sans-serif; max-width: 40em; margin: 2em auto">
<p><a href="/">A tiny blog</a></p>
{body}
</body>
</html>
"""
    return web.Response(text=html, content_type="text/html", status=status, headers={
        "Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff",
        "Cache-Control": "no-store",
    })


async def index(request: web.Request) -> web.Response:
    items = "".join(
        f'<li><a href="/posts/{slug}">{escape(title)}</a></li>'
        for slug, (title, _text) in POSTS.items()
    )
    return page("A tiny blog", f"<h1>A tiny blog</h1><ul>{items}</ul>")


def found_post(request: web.Request) -> tuple[str, str, str]:
    slug = request.match_info["slug"]
    if slug not in POSTS:
        raise web.HTTPNotFound(text="No such post.")
    title, text = POSTS[slug]
    return slug, title, text


async def post_page(request: web.Request) -> web.Response:
    slug, title, text = found_post(request)
    async with request.app[POOL].acquire() as conn:
        rows = await conn.fetch(
            "SELECT author, body, created_at FROM comments WHERE post = $1 ORDER BY id", slug
        )
    comments = "".join(
        f'<li class="comment"><strong>{escape(row["author"])}</strong>: {escape(row["body"])}'
        f' <small>{row["created_at"]:%Y-%m-%d %H:%M}</small></li>'
        for row in rows
    ) or "<li>No comments yet.</li>"
    user = await current_user(request)
    if user is None:
        login = f"{LOGIN_PREFIX}/login?next=/posts/{slug}"
        box = f'<p><a id="login" href="{escape(login)}">Log in with WeChat to comment</a></p>'
    else:
        box = f"""<form method="post" action="/posts/{slug}/comments">
<p>Commenting as <strong id="me">{escape(user.nickname or "WeChat user")}</strong>
(<a href="{LOGIN_PREFIX}/account">account</a>)</p>
<textarea name="body" rows="3" cols="50" maxlength="{MAX_COMMENT}" required></textarea>
<p><button type="submit">Post comment</button></p>
</form>"""
    return page(title, f"<h1>{escape(title)}</h1><p>{escape(text)}</p>"
                       f"<h2>Comments</h2><ul>{comments}</ul>{box}")


@login_required
async def add_comment(request: web.Request) -> web.StreamResponse:
    slug, _title, _text = found_post(request)
    # The session cookie is SameSite=Lax, and a form from another site is refused here too.
    origin = request.headers.get("Origin")
    if origin is not None and urlsplit(origin).netloc != request.host:
        raise web.HTTPForbidden(text="Comments are posted from this site only.")
    user = await current_user(request)
    assert user is not None  # login_required let us in
    form = await request.post()
    body = str(form.get("body", "")).strip()
    if not body or len(body) > MAX_COMMENT:
        return page("Comment not posted", f"<p>A comment is 1 to {MAX_COMMENT} characters. "
                    f'<a href="/posts/{slug}">Back</a></p>', status=400)
    async with request.app[POOL].acquire() as conn:
        await conn.execute(
            "INSERT INTO comments (post, user_id, author, body, created_at)"
            " VALUES ($1, $2, $3, $4, $5)",
            slug, user.id, user.nickname or "WeChat user", body, request.app[CLOCK].now(),
        )
    raise web.HTTPSeeOther(f"/posts/{slug}")


def create_blog(settings: Settings, *, clock: Clock | None = None) -> web.Application:
    """The blog, with the login mounted under /wxlogin sharing the blog's pool."""
    database_url = settings.database_url
    if database_url is None:
        raise ValueError("the blog needs settings.database_url")
    app = web.Application()
    app[CLOCK] = clock or SystemClock()

    async def pool_ctx(app: web.Application) -> AsyncIterator[None]:
        pool = await asyncpg.create_pool(database_url, min_size=1, max_size=10)
        async with pool.acquire() as conn:
            await conn.execute(SCHEMA)
        app[POOL] = pool
        yield
        await pool.close()

    app.cleanup_ctx.append(pool_ctx)
    app.add_routes([
        web.get("/", index),
        web.get("/posts/{slug}", post_page),
        web.post("/posts/{slug}/comments", add_comment),
    ])
    mount(app, LOGIN_PREFIX, settings=settings, pool=POOL, clock=app[CLOCK])
    return app


def main() -> None:
    try:
        settings = Settings.from_env()
    except SettingsError as error:
        problems = "\n  ".join(error.problems)
        raise SystemExit(f"the configuration has problems:\n  {problems}") from None
    for module in ("aiohttp_session", "wxlogin.storage.sessions"):
        warnings.filterwarnings("ignore", category=web.NotAppKeyWarning, module=module)
    logging.basicConfig(level=settings.log_level, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    with database(settings) as ready:
        print(f"blog: open {ready.public_url}/posts/hello"
              + (" (sandbox mode: no WeChat account needed)" if ready.sandbox else ""),
              flush=True)
        web.run_app(create_blog(ready), host=ready.host, port=ready.port, print=None,
                    shutdown_timeout=5.0)
