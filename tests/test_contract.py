"""Contract details not covered elsewhere: scene entropy, form bodies, response shapes (T6)."""

from __future__ import annotations

import math

from tests.conftest import MakeBrowser
from tests.fakewechat import FakeWeChat
from tests.helpers import new_scene, poll
from wxlogin.login import scenes


def test_scenes_carry_at_least_128_bits_in_wechats_charset() -> None:
    made = [scenes.new_scene() for _ in range(10_000)]
    assert len(set(made)) == len(made)
    for scene in made:
        assert len(scene) <= 32 and scene.isalnum() and scene.isascii()
        assert scenes.valid_scene(scene)
    assert len(made[0]) * math.log2(len(scenes.ALPHABET)) >= 128
    assert {c for scene in made for c in scene} == set(scenes.ALPHABET)  # the whole alphabet


async def test_create_answers_the_contracts_shape(browser: MakeBrowser) -> None:
    b1 = await browser()
    response = await b1.post("/api/scenes")
    assert response.status == 201
    body = await response.json()
    assert set(body) == {"scene", "status", "expires_in", "code_url"}
    assert body["status"] == "pending" and body["expires_in"] == 300
    assert body["code_url"] == f"/api/scenes/{body['scene']}/code"
    assert response.headers["Cache-Control"] == "no-store"
    status, polled = await poll(b1, body["scene"], wait=0)
    assert set(polled) == {"scene", "status", "expires_in"}


async def test_push_code_takes_a_form_body_too(browser: MakeBrowser, fw: FakeWeChat) -> None:
    b1, phone = await browser(), await browser()
    scene = await new_scene(b1)
    response = await phone.post(
        "/api/pushCode", data={"scene": scene, "code": fw.mint("form-user"), "nickName": "Form"}
    )
    assert response.status == 200, await response.text()
    assert (await response.json())["user"]["nickname"] == "Form"
    _, body = await poll(b1, scene, wait=0)
    assert body["status"] == "confirmed" and body["user"]["nickname"] == "Form"


async def test_the_scan_step_takes_a_form_body_too(browser: MakeBrowser, fw: FakeWeChat) -> None:
    b1, phone = await browser(), await browser()
    scene = await new_scene(b1)
    response = await phone.post(f"/api/scenes/{scene}/scan", data={"code": fw.mint()})
    assert response.status == 200
    assert (await response.json())["status"] == "scanned"
