"""pushCode's `iv`/`encryptedData` over HTTP (SECURITY.md T10, T11, T13).

Every bad payload, whatever is wrong with it, gets the one byte-identical 400 and changes nothing:
the scene stays pending and no user row appears. A used code is never decrypted a second time.
"""

from __future__ import annotations

import base64
import json
import os
import statistics
import time
from collections.abc import Callable
from typing import Any, TypeAlias

import asyncpg
import pytest
from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from tests.conftest import Browser, MakeBrowser, MakeServer
from tests.fakewechat import APPID, FakeWeChat
from tests.helpers import new_scene, poll, push
from wxlogin.clock import FakeClock
from wxlogin.errors import InvalidEncryptedData
from wxlogin.wechat import crypto

FOREIGN_APPID = "wx00000000000000ff"
MAX_AGE = 600  # Settings.watermark_max_age's default
EXPECTED = {"error": "invalid_encrypted_data", "message": InvalidEncryptedData.default_message}
REPEATS = 9  # per failure kind, for the timing medians

Db: TypeAlias = "asyncpg.Connection[asyncpg.Record]"
Fields = dict[str, str]
# A failure kind: given FW and the watermark time, mint a fresh code and make its push fields.
Kind = Callable[[FakeWeChat, int], tuple[str, Fields]]


# --- building payloads -------------------------------------------------------------------------


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def _profile(fw: FakeWeChat, code: str, stamp: int, **changes: Any) -> dict[str, Any]:
    """What WeChat would encrypt for this code's user; `None` in `changes` drops a field."""
    user = fw.codes[code]
    data: dict[str, Any] = {
        "openId": user.openid,
        "nickName": "小明🙂",
        "avatarUrl": "https://thirdwx.qlogo.cn/mmopen/vi_32/abc/132",
        "watermark": {"appid": APPID, "timestamp": stamp},
    }
    if user.unionid:
        data["unionId"] = user.unionid
    data.update(changes)
    return {key: value for key, value in data.items() if value is not None}


def _raw(key: bytes, plain: bytes, *, pad: bool = True) -> Fields:
    """AES-128-CBC of arbitrary bytes under `key` (PKCS#7 on 16 bytes unless `pad` is off)."""
    if pad:
        padder = padding.PKCS7(128).padder()
        plain = padder.update(plain) + padder.finalize()
    iv = os.urandom(16)
    encryptor = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
    return {"iv": _b64(iv), "encryptedData": _b64(encryptor.update(plain) + encryptor.finalize())}


def _mint(fw: FakeWeChat, *, unionid: bool = True) -> str:
    return fw.mint(unionid="u" + os.urandom(8).hex() if unionid else None)


def _valid(fw: FakeWeChat, stamp: int, **changes: Any) -> tuple[str, Fields]:
    code = _mint(fw)
    return code, fw.encrypt(code, _profile(fw, code, stamp, **changes))


def tampered(fw: FakeWeChat, stamp: int) -> tuple[str, Fields]:
    code, fields = _valid(fw, stamp)
    ciphertext = bytearray(base64.b64decode(fields["encryptedData"]))
    ciphertext[len(ciphertext) // 2] ^= 0x01
    return code, {**fields, "encryptedData": _b64(bytes(ciphertext))}


def truncated(fw: FakeWeChat, stamp: int) -> tuple[str, Fields]:
    code, fields = _valid(fw, stamp)
    ciphertext = base64.b64decode(fields["encryptedData"])
    return code, {**fields, "encryptedData": _b64(ciphertext[:-16])}


def not_a_multiple_of_16(fw: FakeWeChat, stamp: int) -> tuple[str, Fields]:
    code, fields = _valid(fw, stamp)
    ciphertext = base64.b64decode(fields["encryptedData"])
    return code, {**fields, "encryptedData": _b64(ciphertext[:-1])}


def wrong_key(fw: FakeWeChat, stamp: int) -> tuple[str, Fields]:
    code = _mint(fw)
    iv = os.urandom(16)
    data = _profile(fw, code, stamp)
    return code, {"iv": _b64(iv), "encryptedData": crypto.encrypt(os.urandom(16), iv, data)}


def wrong_appid(fw: FakeWeChat, stamp: int) -> tuple[str, Fields]:
    return _valid(fw, stamp, watermark={"appid": FOREIGN_APPID, "timestamp": stamp})


def wrong_openid(fw: FakeWeChat, stamp: int) -> tuple[str, Fields]:
    return _valid(fw, stamp, openId="o" + os.urandom(12).hex())


def flipped_iv(fw: FakeWeChat, stamp: int) -> tuple[str, Fields]:
    """Real data for this code, its IV XOR-ed so the first block names another openId."""
    code = _mint(fw)
    data = _profile(fw, code, stamp)
    mine = data["openId"]
    victim = "oVIC" + mine[4:]
    assert victim != mine
    fields = fw.encrypt(code, data)
    plain = json.dumps(data, ensure_ascii=False).encode()
    forged = json.dumps({**data, "openId": victim}, ensure_ascii=False).encode()
    assert plain[16:] == forged[16:]
    iv = base64.b64decode(fields["iv"])
    flipped = bytes(a ^ b ^ c for a, b, c in zip(iv, plain[:16], forged[:16], strict=True))
    # The forgery is a good one: without the identity check it would decrypt and name `victim`.
    key = fw.codes[code].session_key
    assert crypto.decrypt(key, _b64(flipped), fields["encryptedData"])["openId"] == victim
    return code, {**fields, "iv": _b64(flipped)}


def unionid_not_given(fw: FakeWeChat, stamp: int) -> tuple[str, Fields]:
    code = _mint(fw, unionid=False)
    return code, fw.encrypt(code, _profile(fw, code, stamp, unionId="u" + os.urandom(8).hex()))


def stale(fw: FakeWeChat, stamp: int) -> tuple[str, Fields]:
    return _valid(fw, stamp, watermark={"appid": APPID, "timestamp": stamp - MAX_AGE - 1})


def future(fw: FakeWeChat, stamp: int) -> tuple[str, Fields]:
    late = stamp + crypto.FUTURE_SKEW + 1
    return _valid(fw, stamp, watermark={"appid": APPID, "timestamp": late})


def no_watermark(fw: FakeWeChat, stamp: int) -> tuple[str, Fields]:
    return _valid(fw, stamp, watermark=None)


def bad_base64(fw: FakeWeChat, stamp: int) -> tuple[str, Fields]:
    code, fields = _valid(fw, stamp)
    return code, {**fields, "encryptedData": "*" + fields["encryptedData"][1:]}


def bad_padding(fw: FakeWeChat, stamp: int) -> tuple[str, Fields]:
    code = _mint(fw)
    plain = json.dumps(_profile(fw, code, stamp)).encode()
    plain += b" " * (-(len(plain) + 1) % 16) + b"\x00"  # valid JSON up to a final pad byte of 0
    return code, _raw(fw.codes[code].session_key, plain, pad=False)


def bad_utf8(fw: FakeWeChat, stamp: int) -> tuple[str, Fields]:
    code = _mint(fw)
    plain = json.dumps(_profile(fw, code, stamp, nickName="NICK")).encode()
    return code, _raw(fw.codes[code].session_key, plain.replace(b"NICK", b"\xff\xfe\xc0\xaf"))


def bad_json(fw: FakeWeChat, stamp: int) -> tuple[str, Fields]:
    code = _mint(fw)
    plain = json.dumps(_profile(fw, code, stamp)).encode()
    return code, _raw(fw.codes[code].session_key, plain[:-1])


def not_an_object(fw: FakeWeChat, stamp: int) -> tuple[str, Fields]:
    code = _mint(fw)
    plain = json.dumps([_profile(fw, code, stamp)]).encode()
    return code, _raw(fw.codes[code].session_key, plain)


def short_iv(fw: FakeWeChat, stamp: int) -> tuple[str, Fields]:
    code, fields = _valid(fw, stamp)
    return code, {**fields, "iv": _b64(base64.b64decode(fields["iv"])[:8])}


KINDS: dict[str, Kind] = {
    "tampered": tampered,
    "truncated": truncated,
    "length-not-16n": not_a_multiple_of_16,
    "wrong-key": wrong_key,
    "wrong-appid": wrong_appid,
    "wrong-openid": wrong_openid,
    "flipped-iv": flipped_iv,
    "unionid-not-given": unionid_not_given,
    "stale": stale,
    "future": future,
    "no-watermark": no_watermark,
    "bad-base64": bad_base64,
    "bad-padding": bad_padding,
    "bad-utf8": bad_utf8,
    "bad-json": bad_json,
    "not-an-object": not_an_object,
    "short-iv": short_iv,
}


# --- checking that nothing changed ------------------------------------------------------------


def _stamp(clock: FakeClock) -> int:
    return int(clock.now().timestamp())


async def _assert_untouched(b1: Browser, scene: str, db: Db) -> None:
    status, body = await poll(b1, scene, wait=0)
    assert (status, body["status"]) == (200, "pending"), body
    assert "user" not in body
    row = await db.fetchrow(
        "SELECT status, claimant, user_id FROM wxlogin.scenes WHERE scene = $1", scene
    )
    assert row is not None
    assert (row["status"], row["claimant"], row["user_id"]) == ("pending", None, None)
    assert await db.fetchval("SELECT count(*) FROM wxlogin.users") == 0
    assert await db.fetchval("SELECT count(*) FROM wxlogin.identities") == 0


async def _push_raw(phone: Browser, scene: str, code: str, fields: Fields) -> tuple[int, bytes]:
    response = await push(phone, scene, code, **fields)
    return response.status, await response.read()


# --- what passes -------------------------------------------------------------------------------


async def test_valid_encrypted_data_sets_the_nickname(
    browser: MakeBrowser, fw: FakeWeChat, clock: FakeClock, db: Db
) -> None:
    b1, phone = await browser(), await browser()
    scene = await new_scene(b1)
    code = _mint(fw)
    fields = fw.encrypt(code, _profile(fw, code, _stamp(clock)))
    # Identity fields in the body are ignored: only jscode2session names the person (T10).
    response = await push(
        phone, scene, code, **fields, nickName="Plain", openid="oEvil", unionId="uEvil"
    )
    assert response.status == 200, await response.text()
    body = await response.json()
    assert body["ok"] is True and body["user"]["nickname"] == "小明🙂"
    assert body["user"]["avatar_url"] == "https://thirdwx.qlogo.cn/mmopen/vi_32/abc/132"

    status, answer = await poll(b1, scene, wait=0)
    assert (status, answer["status"]) == (200, "confirmed")
    assert answer["user"] == body["user"]
    users = await db.fetch("SELECT unionid, nickname FROM wxlogin.users")
    assert [tuple(row) for row in users] == [(fw.codes[code].unionid, "小明🙂")]
    identities = await db.fetch("SELECT appid, openid FROM wxlogin.identities")
    assert [tuple(row) for row in identities] == [(APPID, fw.codes[code].openid)]
    assert fw.code_calls[code] == 1


async def test_stale_watermark_passes_with_the_age_check_off(
    make_server: MakeServer, browser: MakeBrowser, fw: FakeWeChat, clock: FakeClock, db: Db
) -> None:
    server = await make_server(watermark_max_age=0)
    b1, phone = await browser(server), await browser(server)

    # A foreign appid is still refused with the age check off (T13)...
    scene = await new_scene(b1)
    code, fields = wrong_appid(fw, _stamp(clock) - 10 * 86400)
    status, raw = await _push_raw(phone, scene, code, fields)
    assert (status, json.loads(raw)) == (400, EXPECTED)
    await _assert_untouched(b1, scene, db)

    # ...while a stamp ten days old passes.
    code, fields = _valid(fw, _stamp(clock), watermark={
        "appid": APPID, "timestamp": _stamp(clock) - 10 * 86400,
    })
    response = await push(phone, scene, code, **fields)
    assert response.status == 200, await response.text()
    assert (await response.json())["user"]["nickname"] == "小明🙂"
    status, answer = await poll(b1, scene, wait=0)
    assert (status, answer["status"]) == (200, "confirmed")
    assert await db.fetchval("SELECT count(*) FROM wxlogin.users") == 1


async def test_a_stamp_at_the_edge_of_the_window_passes(
    browser: MakeBrowser, fw: FakeWeChat, clock: FakeClock
) -> None:
    b1, phone = await browser(), await browser()
    for offset in (-MAX_AGE, crypto.FUTURE_SKEW):
        scene = await new_scene(b1)
        stamp = _stamp(clock) + offset
        code, fields = _valid(fw, stamp, watermark={"appid": APPID, "timestamp": stamp})
        response = await push(phone, scene, code, **fields)
        assert response.status == 200, (offset, await response.text())


# --- what fails, and how it looks --------------------------------------------------------------


@pytest.mark.parametrize("kind", list(KINDS))
async def test_bad_encrypted_data_gets_one_400_and_changes_nothing(
    kind: str, browser: MakeBrowser, fw: FakeWeChat, clock: FakeClock, db: Db
) -> None:
    b1, phone = await browser(), await browser()
    scene = await new_scene(b1)
    code, fields = KINDS[kind](fw, _stamp(clock))
    response = await push(phone, scene, code, **fields)
    assert response.status == 400, await response.text()
    assert await response.json() == EXPECTED
    assert response.headers["Cache-Control"] == "no-store"
    assert fw.code_calls[code] == 1  # the code was spent with WeChat, once
    await _assert_untouched(b1, scene, db)

    # The scene is still usable by the same person with a fresh code and good data.
    good, good_fields = _valid(fw, _stamp(clock))
    response = await push(phone, scene, good, **good_fields)
    assert response.status == 200, await response.text()


async def test_all_failures_are_byte_identical_and_timed(
    browser: MakeBrowser,
    fw: FakeWeChat,
    clock: FakeClock,
    db: Db,
    capsys: pytest.CaptureFixture[str],
) -> None:
    b1, phone = await browser(), await browser()
    scene = await new_scene(b1)
    answers: set[tuple[int, str, str, bytes]] = set()
    timings: dict[str, list[float]] = {name: [] for name in KINDS}
    for _ in range(REPEATS):  # round-robin, so warm-up and drift hit every kind alike
        for name, kind in KINDS.items():
            code, fields = kind(fw, _stamp(clock))
            started = time.perf_counter()
            response = await push(phone, scene, code, **fields)
            raw = await response.read()
            timings[name].append(time.perf_counter() - started)
            answers.add(
                (response.status, response.content_type, response.headers["Cache-Control"], raw)
            )
    assert len(answers) == 1, answers
    ((status, content_type, cache, raw),) = answers
    assert (status, content_type, cache) == (400, "application/json", "no-store")
    assert json.loads(raw) == EXPECTED
    assert sum(fw.code_calls.values()) == REPEATS * len(KINDS)
    await _assert_untouched(b1, scene, db)

    medians = {name: statistics.median(values) * 1000 for name, values in timings.items()}
    with capsys.disabled():
        print(f"\nT11 pushCode failure medians over {REPEATS} runs each (ms):")
        for name, median in sorted(medians.items(), key=lambda item: item[1]):
            print(f"  {name:<20} {median:7.2f}")
        print(f"  spread (max - min)   {max(medians.values()) - min(medians.values()):7.2f}")


# --- one code, one decryption ------------------------------------------------------------------


async def test_a_used_code_is_never_decrypted_again(
    browser: MakeBrowser,
    fw: FakeWeChat,
    clock: FakeClock,
    db: Db,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    decryptions: list[str] = []
    real = crypto.decrypt

    def counting(session_key: bytes, iv: str, encrypted_data: str) -> dict[str, Any]:
        decryptions.append(encrypted_data)
        return real(session_key, iv, encrypted_data)

    monkeypatch.setattr(crypto, "decrypt", counting)

    b1, phone = await browser(), await browser()
    scene = await new_scene(b1)
    code = _mint(fw)
    stamp = _stamp(clock)
    bad = fw.encrypt(code, _profile(fw, code, stamp, watermark={
        "appid": FOREIGN_APPID, "timestamp": stamp,
    }))
    first_status, first = await _push_raw(phone, scene, code, bad)
    assert (first_status, json.loads(first)) == (400, EXPECTED)
    assert decryptions == [bad["encryptedData"]]

    # Other encrypted data on the spent code (here even good data for its key): 409, undecrypted.
    good = fw.encrypt(code, _profile(fw, code, stamp))
    for fields in (good, {**bad, "encryptedData": good["encryptedData"]}, {**bad, "iv": good["iv"]},
                   {**bad, "nickName": "Other"}):
        response = await push(phone, scene, code, **fields)
        assert response.status == 409, await response.text()
        assert (await response.json())["error"] == "code_reused"
    assert decryptions == [bad["encryptedData"]]
    assert fw.code_calls[code] == 1

    # The identical retry gets the identical answer, without WeChat and without decrypting.
    for _ in range(3):
        status, again = await _push_raw(phone, scene, code, bad)
        assert (status, again) == (first_status, first)
    assert decryptions == [bad["encryptedData"]]
    assert fw.code_calls[code] == 1
    await _assert_untouched(b1, scene, db)


# --- hostile plaintexts under the right key: still the same 400 ---------------------------------


def deeply_nested(fw: FakeWeChat, stamp: int) -> tuple[str, Fields]:
    code = _mint(fw)
    return code, _raw(fw.codes[code].session_key, b"[" * 20_000 + b"]" * 20_000)


def huge_stamp(fw: FakeWeChat, stamp: int) -> tuple[str, Fields]:
    return _valid(fw, stamp, watermark={"appid": APPID, "timestamp": 10**400})


@pytest.mark.parametrize("kind", [deeply_nested, huge_stamp], ids=["deeply-nested", "huge-stamp"])
async def test_hostile_but_well_encrypted_plaintext_gets_the_same_400(
    kind: Kind, browser: MakeBrowser, fw: FakeWeChat, clock: FakeClock, db: Db
) -> None:
    b1, phone = await browser(), await browser()
    scene = await new_scene(b1)
    code, fields = kind(fw, _stamp(clock))
    status, raw = await _push_raw(phone, scene, code, fields)
    assert (status, json.loads(raw)) == (400, EXPECTED)
    # The answer reached the ledger: an identical retry gets it at once, not a 16 s wait.
    started = time.perf_counter()
    assert await _push_raw(phone, scene, code, fields) == (status, raw)
    assert time.perf_counter() - started < 5
    assert fw.code_calls[code] == 1
    await _assert_untouched(b1, scene, db)
