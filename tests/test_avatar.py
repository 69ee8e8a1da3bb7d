"""The avatar upload (T18) and the scan context's place, from the phone's side."""

from __future__ import annotations

import io
import ipaddress
import zlib

import asyncpg
from aiohttp import FormData
from PIL import Image

from tests.conftest import Browser, MakeBrowser, MakeServer
from tests.fakewechat import FakeWeChat
from tests.helpers import new_scene, push, step


def picture(fmt: str = "JPEG", size: tuple[int, int] = (640, 480), gps: bool = False,
            comment: bytes | None = None) -> bytes:
    image = Image.new("RGB", size, (200, 30, 30))
    out = io.BytesIO()
    if comment is not None:
        image.save(out, fmt, comment=comment)
    elif gps:
        exif = Image.Exif()
        exif[0x010F] = "CanaryCam"  # Make
        exif[0x8825] = {2: (39.0, 54.0, 0.0), 4: (116.0, 23.0, 0.0)}  # GPS IFD
        image.save(out, fmt, exif=exif)
    else:
        image.save(out, fmt)
    return out.getvalue()


def png_bomb(side: int = 20000) -> bytes:
    """A valid PNG header for side×side pixels with a tiny, highly compressed body."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return len(data).to_bytes(4, "big") + body + zlib.crc32(body).to_bytes(4, "big")
    header = side.to_bytes(4, "big") * 2 + bytes([8, 0, 0, 0, 0])
    rows = zlib.compress(b"\x00" * (side + 1) * 64, 9)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", rows) + chunk(
        b"IEND", b"")


async def upload(phone: Browser, scene: str, code: str, data: bytes,
                 filename: str = "a.jpg") -> tuple[int, dict[str, str]]:
    form = FormData()
    form.add_field("scene", scene)
    form.add_field("code", code)
    form.add_field("avatar", data, filename=filename, content_type="application/octet-stream")
    response = await phone.post("/api/avatar", data=form)
    body: dict[str, str] = await response.json()
    return response.status, body


async def scanned(browser: MakeBrowser, fw: FakeWeChat, openid: str) -> tuple[Browser, str]:
    b1, phone = await browser(), await browser()
    scene = await new_scene(b1)
    assert (await step(phone, scene, "scan", fw.mint(openid))).status == 200
    return phone, scene


async def test_the_claimant_uploads_and_the_user_gets_it(
    browser: MakeBrowser, fw: FakeWeChat
) -> None:
    phone, scene = await scanned(browser, fw, "artist")
    status, body = await upload(phone, scene, fw.mint("artist"), picture(gps=True))
    assert status == 200, body
    url = body["avatar_url"]
    assert url.startswith("http://127.0.0.1:8080/api/avatars/") and url.endswith(".jpg")

    response = await phone.get(url.removeprefix("http://127.0.0.1:8080"))
    assert response.status == 200 and response.content_type == "image/jpeg"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    served = await response.read()
    image = Image.open(io.BytesIO(served))
    assert image.format == "JPEG" and image.size == (256, 256)
    assert not image.getexif() and b"CanaryCam" not in served

    response = await push(phone, scene, fw.mint("artist"), nickName="Artist")
    assert response.status == 200
    assert (await response.json())["user"]["avatar_url"] == url


async def test_comments_in_the_original_do_not_survive(
    browser: MakeBrowser, fw: FakeWeChat
) -> None:
    phone, scene = await scanned(browser, fw, "artist")
    for fmt in ("JPEG", "GIF"):
        status, body = await upload(phone, scene, fw.mint("artist"),
                                    picture(fmt, comment=b"COMMENT-CANARY"))
        assert status == 200, body
        kept = await (await phone.get(body["avatar_url"].removeprefix(
            "http://127.0.0.1:8080"))).read()
        assert b"COMMENT-CANARY" not in kept and "comment" not in Image.open(io.BytesIO(kept)).info


async def test_only_the_claimant_of_a_scanned_scene_may_upload(
    browser: MakeBrowser, fw: FakeWeChat
) -> None:
    phone, scene = await scanned(browser, fw, "owner")
    status, body = await upload(phone, scene, fw.mint("stranger"), picture())
    assert (status, body["error"]) == (409, "scene_already_claimed")
    pending = await new_scene(await browser())
    status, body = await upload(phone, pending, fw.mint("owner"), picture())
    assert (status, body["error"]) == (409, "scene_not_scanned")


async def test_hostile_files_are_refused_before_wechat_is_asked(
    browser: MakeBrowser, fw: FakeWeChat, db: asyncpg.Connection[asyncpg.Record]
) -> None:
    phone, scene = await scanned(browser, fw, "owner")
    calls = fw.calls["jscode2session"]
    status, body = await upload(phone, "Z" * 24, fw.mint("owner"), png_bomb())
    assert (status, body["error"]) == (404, "scene_not_found")  # nothing decoded for it
    for data in (
        b"not an image at all",
        b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>',
        b"GIF89a<html><script>alert(1)</script></html>",
        png_bomb(),
        png_bomb(2100),  # just over the cap, far below Pillow's own bomb limit
        picture("PNG", (1000, 100)),  # too narrow to be a face
        picture("BMP", (32, 32)),
        picture("PNG")[:60],
    ):
        status, body = await upload(phone, scene, fw.mint("owner"), data)
        assert (status, body["error"]) == (400, "invalid_avatar"), data[:20]
    assert fw.calls["jscode2session"] == calls
    assert await db.fetchval("SELECT count(*) FROM wxlogin.avatars") == 0


async def test_too_big_is_413_and_a_retry_is_answered_again(
    browser: MakeBrowser, fw: FakeWeChat
) -> None:
    phone, scene = await scanned(browser, fw, "owner")
    status, body = await upload(phone, scene, fw.mint("owner"), b"\xff\xd8\xff" * 30000)
    assert (status, body["error"]) == (413, "body_too_large")
    code, data = fw.mint("owner"), picture("PNG")
    first, again = await upload(phone, scene, code, data), await upload(phone, scene, code, data)
    assert first == again and first[0] == 200
    assert fw.code_calls[code] == 1


async def test_unknown_avatars_are_404(browser: MakeBrowser) -> None:
    client = await browser()
    for path in ("/api/avatars/" + "A" * 22 + ".jpg", "/api/avatars/..%2Fetc.jpg"):
        assert (await client.get(path)).status == 404


async def test_the_phone_sees_the_place_a_trusted_proxy_names(
    make_server: MakeServer, browser: MakeBrowser, fw: FakeWeChat
) -> None:
    trusted = await make_server(trusted_proxies=(ipaddress.ip_network("127.0.0.1/32"),),
                                place_header="X-Geo-City")
    untrusted = await make_server(place_header="X-Geo-City")
    for server, expected in ((trusted, "Hangzhou, CN"), (untrusted, None)):
        b1 = await browser(server, headers={"X-Geo-City": "Hangzhou%2C%20CN"})
        phone = await browser(server)
        scene = await new_scene(b1)
        response = await step(phone, scene, "scan", fw.mint())
        context = (await response.json())["context"]
        assert context.get("place") == expected
