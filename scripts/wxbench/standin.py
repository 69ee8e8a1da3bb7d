"""The WeChat stand-in the servers call (tests/fakewechat.py), served from the orchestrator.

Imported only by the orchestrator, once the repository is on sys.path: the load generators never
need aiohttp or the stand-in."""

from __future__ import annotations

import secrets

from aiohttp import web

from tests.fakewechat import FakeWeChat


class BenchWeChat(FakeWeChat):
    """The stand-in plus one control: many codes minted in one call."""

    async def mint_many(self, request: web.Request) -> web.Response:
        """`n` people, `per` codes each: what wx.login gives them, one call each."""
        count = min(int(request.query.get("n", "1")), 10_000)
        per = min(int(request.query.get("per", "1")), 10)
        people = []
        for _ in range(count):
            openid = "o" + secrets.token_hex(12)
            people.append([self.mint(openid) for _ in range(per)])
        return web.json_response({"people": people})

    def app(self) -> web.Application:
        app = super().app()
        app.router.add_post("/_bench/mint", self.mint_many)
        return app
