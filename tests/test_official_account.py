"""The official account's callback, `/wechat/oa`: its URL check (the console's server
configuration) with WeChat's own vector, refusals, and the settings that configure it."""

from __future__ import annotations

import pytest

from tests.conftest import MakeBrowser, MakeServer
from wxlogin.settings import OfficialAccount, Settings, SettingsError

ACCOUNT = OfficialAccount("wxoa0000000000001", "oa-secret", "AAAAA")
SIGNED = {"signature": "899cf89e464efb63f54ddac96b0a0a235f53aa78", "timestamp": "1714037059",
          "nonce": "486452656", "echostr": "7313253485710846171"}


async def test_the_url_check_answers_echostr_when_signed(
    make_server: MakeServer, browser: MakeBrowser,
) -> None:
    server = await make_server(oa=ACCOUNT)
    console = await browser(server)
    answer = await console.get("/wechat/oa", params=SIGNED)
    assert answer.status == 200 and await answer.text() == SIGNED["echostr"]
    assert answer.headers["Content-Type"].startswith("text/plain")


@pytest.mark.parametrize("change", [
    {"signature": "899cf89e464efb63f54ddac96b0a0a235f53aa79"},  # one digit off
    {"timestamp": "1714037060"},  # signed for another moment
    {"signature": ""}, {"nonce": "x" * 500}, {"echostr": ""},
])
async def test_an_unsigned_url_check_is_refused(
    make_server: MakeServer, browser: MakeBrowser, change: dict[str, str],
) -> None:
    server = await make_server(oa=ACCOUNT)
    answer = await (await browser(server)).get("/wechat/oa", params={**SIGNED, **change})
    assert answer.status == 403 and (await answer.json())["error"] == "bad_signature"


async def test_without_an_official_account_there_is_no_callback(
    make_server: MakeServer, browser: MakeBrowser,
) -> None:
    answer = await (await browser(await make_server())).get("/wechat/oa", params=SIGNED)
    assert answer.status == 404 and (await answer.json())["error"] == "not_found"


BASE = {"WXLOGIN_APPID": "wx0000000000000001", "WXLOGIN_SECRET": "s" * 32}


def test_the_official_account_settings() -> None:
    settings = Settings.from_env({
        **BASE, "WXLOGIN_OA_APPID": "wxoa1", "WXLOGIN_OA_SECRET": "oa-secret-canary",
        "WXLOGIN_OA_TOKEN": "Tok3nCanary", "WXLOGIN_OA_AES_KEY": "a" * 43})
    assert settings.oa is not None and settings.oa.token == "Tok3nCanary"
    shown = repr(settings)
    assert "wxoa1" in shown and "oa-secret-canary" not in shown and "Tok3nCanary" not in shown
    assert "a" * 43 not in shown
    assert Settings.from_env(BASE).oa is None
    for broken, said in (
        ({"WXLOGIN_OA_APPID": "wxoa1"}, "WXLOGIN_OA_SECRET must be set"),
        ({"WXLOGIN_OA_APPID": "wxoa1", "WXLOGIN_OA_SECRET": "x", "WXLOGIN_OA_TOKEN": "a!"},
         "WXLOGIN_OA_TOKEN is 3 to 32"),
        ({"WXLOGIN_OA_APPID": "wxoa1", "WXLOGIN_OA_SECRET": "x", "WXLOGIN_OA_TOKEN": "abc",
          "WXLOGIN_OA_AES_KEY": "short"}, "EncodingAESKey: 43"),
        ({"WXLOGIN_OA_AES_KEY": "a" * 43}, "needs WXLOGIN_OA_APPID"),
    ):
        with pytest.raises(SettingsError) as raised:
            Settings.from_env({**BASE, **broken})
        assert said in str(raised.value), raised.value
