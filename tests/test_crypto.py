"""Unit tests of wxlogin/wechat/crypto.py: WeChat's public demo vector, then synthesised vectors.

Every failure, whatever its cause, must surface as the one crypto.DecryptError (WECHAT.md §4,
SECURITY.md T10, T11, T13).
"""

from __future__ import annotations

import base64
import json
import os
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from wxlogin.wechat import crypto

# --- WeChat's WXBizDataCrypt demo (as copied in wechatpy tests/test_crypto.py and easywechat
# tests/MiniApp/DecryptorTest.php; the two copies agree once whitespace is stripped) ------------

DEMO_APPID = "wx4f4bc4dec97d474b"
DEMO_SESSION_KEY = "tiihtNczf5v6AKRyjwEUhQ=="
DEMO_IV = "r7BXXKkLb8qrSNn05n0qiA=="
DEMO_ENCRYPTED = (
    "CiyLU1Aw2KjvrjMdj8YKliAjtP4gsMZMQmRzooG2xrDcvSnxIMXFufNstNGTyaGS9uT5geRa0W4oTOb1WT7fJlAC"
    "+oNPdbB+3hVbJSRgv+4lGOETKUQz6OYStslQ142dNCuabNPGBzlooOmB231qMM85d2"
    "/fV6ChevvXvQP8Hkue1poOFtnEtpyxVLW1zAo6/1Xx1COxFvrc2d7UL/lmHInNlxuacJXwu0fjpXfz"
    "/YqYzBIBzD6WUfTIF9GRHpOn/Hz7saL8xz+W//FRAUid1OksQaQx4CMs8LOddcQhULW4ucetDf96JcR3g0gfRK4PC7E"
    "/r7Z6xNrXd2UIeorGj5Ef7b1pJAYB6Y5anaHqZ9J6nKEBvB4DnNLIVWSgARns"
    "/8wR2SiRS7MNACwTyrGvt9ts8p12PKFdlqYTopNHR1Vf7XjfhQlVsAJdNiKdYmYVoKlaRv85IfVunYzO0IKXsyl7JCUjCpoG"
    "20f0a04COwfneQAGGwd5oa+T8yO5hzuyDb/XcxxmK01EpqOyuxINew=="
)
DEMO_OPENID = "oGZUI0egBJY1zhBYw2KhdUfwVJJE"
DEMO_UNIONID = "ocMvos6NjeKLIBqg5Mr9QjxrP1FA"
DEMO_TIMESTAMP = 1477314187
DEMO_AVATAR = (
    "http://wx.qlogo.cn/mmopen/vi_32/aSKcBBPpibyKNicHNTMM0qJVh8Kjgiak2AHWr8MHM4WgMEm7GFhsf8OYrySdbvAM"
    "vTsw3mo8ibKicsnfN5pRjl1p8HQ/0"
)

KEY = base64.b64decode(DEMO_SESSION_KEY)
APPID = "wx00000000000000aa"
FOREIGN_APPID = "wx00000000000000bb"
MAX_AGE = 600
NOW = datetime(2026, 1, 1, tzinfo=UTC)
STAMP = int(NOW.timestamp())


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def _raw_decrypt(key: bytes, iv: bytes, ciphertext: bytes) -> bytes:
    decryptor = Cipher(algorithms.AES(key), modes.CBC(iv)).decryptor()
    return decryptor.update(ciphertext) + decryptor.finalize()


def _raw_encrypt(key: bytes, iv: bytes, plain: bytes, *, pad_bits: int | None = 128) -> str:
    """AES-128-CBC of `plain`, PKCS#7-padded on `pad_bits` (None: the caller padded it)."""
    if pad_bits is not None:
        padder = padding.PKCS7(pad_bits).padder()
        plain = padder.update(plain) + padder.finalize()
    assert len(plain) % 16 == 0
    encryptor = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
    return _b64(encryptor.update(plain) + encryptor.finalize())


def _xor(*blocks: bytes) -> bytes:
    out = bytearray(len(blocks[0]))
    for block in blocks:
        assert len(block) == len(out)
        for i, byte in enumerate(block):
            out[i] ^= byte
    return bytes(out)


def _payload(**changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "openId": "oAAAA0egBJY1zhBYw2KhdUfwVJJE",
        "nickName": "Ada",
        "avatarUrl": "https://thirdwx.qlogo.cn/mmopen/a/132",
        "unionId": "union-1",
        "watermark": {"appid": APPID, "timestamp": STAMP},
    }
    data.update(changes)
    return {key: value for key, value in data.items() if value is not None}


def _sealed(data: dict[str, Any]) -> tuple[bytes, str, str]:
    """A fresh random key and IV, and `data` encrypted the mini program's way."""
    key, iv = os.urandom(16), os.urandom(16)
    return key, _b64(iv), crypto.encrypt(key, iv, data)


def _verify(
    data: dict[str, Any],
    *,
    appid: str = APPID,
    openid: str = "oAAAA0egBJY1zhBYw2KhdUfwVJJE",
    unionid: str | None = "union-1",
    now: datetime = NOW,
    max_age: int = MAX_AGE,
) -> crypto.Profile:
    return crypto.verify(
        data, appid=appid, openid=openid, unionid=unionid, now=now, max_age=max_age
    )


# --- the demo vector ---------------------------------------------------------------------------


def test_demo_vector_decrypts_to_the_documented_fields() -> None:
    data = crypto.decrypt(KEY, DEMO_IV, DEMO_ENCRYPTED)
    assert data["openId"] == DEMO_OPENID
    assert data["unionId"] == DEMO_UNIONID
    assert data["nickName"] == "Band"
    assert data["avatarUrl"] == DEMO_AVATAR
    assert (data["gender"], data["language"], data["city"]) == (1, "zh_CN", "Guangzhou")
    assert (data["province"], data["country"]) == ("Guangdong", "CN")
    assert data["watermark"] == {"appid": DEMO_APPID, "timestamp": DEMO_TIMESTAMP}
    assert set(data) == {
        "openId", "nickName", "gender", "language", "city", "province", "country",
        "avatarUrl", "unionId", "watermark",
    }


def test_demo_vector_uses_16_byte_pkcs7_not_32() -> None:
    ciphertext = base64.b64decode(DEMO_ENCRYPTED)
    assert len(ciphertext) == 400
    padded = _raw_decrypt(KEY, base64.b64decode(DEMO_IV), ciphertext)
    assert padded.endswith(b"\x07" * 7) and padded[-8] != 7

    unpadder = padding.PKCS7(128).unpadder()
    plain = unpadder.update(padded) + unpadder.finalize()
    assert len(plain) == 393
    assert json.loads(plain) == crypto.decrypt(KEY, DEMO_IV, DEMO_ENCRYPTED)

    wide = padding.PKCS7(256).unpadder()  # WXBizMsgCrypt's block, the wrong one here
    with pytest.raises(ValueError):
        wide.update(padded) + wide.finalize()


def test_demo_vector_verifies_with_the_age_check_off() -> None:
    data = crypto.decrypt(KEY, DEMO_IV, DEMO_ENCRYPTED)
    profile = crypto.verify(
        data, appid=DEMO_APPID, openid=DEMO_OPENID, unionid=DEMO_UNIONID,
        now=datetime.now(UTC), max_age=0,
    )
    assert profile == crypto.Profile("Band", DEMO_AVATAR)
    assert crypto.decrypt_profile(
        KEY, DEMO_IV, DEMO_ENCRYPTED, appid=DEMO_APPID, openid=DEMO_OPENID,
        unionid=DEMO_UNIONID, now=datetime.now(UTC), max_age=0,
    ) == profile


@pytest.mark.parametrize("seconds_later", [0, 60, MAX_AGE])
def test_demo_vector_verifies_on_a_2016_clock(seconds_later: int) -> None:
    now = datetime.fromtimestamp(DEMO_TIMESTAMP + seconds_later, UTC)
    assert now.year == 2016
    profile = crypto.decrypt_profile(
        KEY, DEMO_IV, DEMO_ENCRYPTED, appid=DEMO_APPID, openid=DEMO_OPENID,
        unionid=DEMO_UNIONID, now=now, max_age=MAX_AGE,
    )
    assert profile.nickname == "Band"


@pytest.mark.parametrize(
    "now",
    [datetime.now(UTC), datetime.fromtimestamp(DEMO_TIMESTAMP + MAX_AGE + 1, UTC)],
    ids=["today", "just-too-late"],
)
def test_demo_vector_is_stale_on_a_later_clock(now: datetime) -> None:
    with pytest.raises(crypto.DecryptError):
        crypto.decrypt_profile(
            KEY, DEMO_IV, DEMO_ENCRYPTED, appid=DEMO_APPID, openid=DEMO_OPENID,
            unionid=DEMO_UNIONID, now=now, max_age=MAX_AGE,
        )


@pytest.mark.parametrize(
    ("appid", "openid", "unionid"),
    [
        (APPID, DEMO_OPENID, DEMO_UNIONID),
        (DEMO_APPID, "oSomeoneElse000000000000000", DEMO_UNIONID),
        (DEMO_APPID, DEMO_OPENID, None),
        (DEMO_APPID, DEMO_OPENID, "oOtherUnion00000000000000000"),
    ],
    ids=["foreign-appid", "other-openid", "no-unionid-from-wechat", "other-unionid"],
)
def test_demo_vector_refuses_a_different_identity(
    appid: str, openid: str, unionid: str | None
) -> None:
    data = crypto.decrypt(KEY, DEMO_IV, DEMO_ENCRYPTED)
    with pytest.raises(crypto.DecryptError):
        crypto.verify(
            data, appid=appid, openid=openid, unionid=unionid, now=datetime.now(UTC), max_age=0
        )


# --- synthesised vectors: what passes ----------------------------------------------------------


def test_round_trip_with_a_non_ascii_nickname() -> None:
    nickname = "小明🙂 ünï"
    key, iv, encrypted = _sealed(_payload(nickName=nickname))
    raw = _raw_decrypt(key, base64.b64decode(iv), base64.b64decode(encrypted))
    assert nickname.encode("utf-8") in raw  # UTF-8 on the wire, not \u escapes
    data = crypto.decrypt(key, iv, encrypted)
    assert data["nickName"] == nickname
    profile = _verify(data)
    assert profile == crypto.Profile(nickname, "https://thirdwx.qlogo.cn/mmopen/a/132")


@pytest.mark.parametrize("wechat_unionid", [None, "union-1"])
def test_no_unionid_in_the_data_is_fine(wechat_unionid: str | None) -> None:
    key, iv, encrypted = _sealed(_payload(unionId=None))
    data = crypto.decrypt(key, iv, encrypted)
    assert "unionId" not in data
    assert _verify(data, unionid=wechat_unionid).nickname == "Ada"


def test_no_openid_in_the_data_is_fine() -> None:
    key, iv, encrypted = _sealed(_payload(openId=None, unionId=None))
    assert _verify(crypto.decrypt(key, iv, encrypted), unionid=None).nickname == "Ada"


@pytest.mark.parametrize(
    "offset", [-MAX_AGE, -1, 0, crypto.FUTURE_SKEW], ids=["oldest", "past", "now", "skew"]
)
def test_stamps_within_the_window_pass(offset: int) -> None:
    key, iv, encrypted = _sealed(
        _payload(watermark={"appid": APPID, "timestamp": STAMP + offset})
    )
    assert _verify(crypto.decrypt(key, iv, encrypted)).nickname == "Ada"


@pytest.mark.parametrize("stamp", [0, STAMP - 10 * 365 * 86400, "not a number"])
def test_any_stamp_passes_with_the_age_check_off(stamp: object) -> None:
    data = _payload(watermark={"appid": APPID, "timestamp": stamp})
    assert _verify(data, max_age=0).nickname == "Ada"


def test_profile_fields_of_the_wrong_type_are_dropped() -> None:
    data = _payload(nickName=["x"], avatarUrl=7)
    assert _verify(data) == crypto.Profile(None, None)


# --- synthesised vectors: what fails -----------------------------------------------------------


@pytest.mark.parametrize(
    "offset",
    [-MAX_AGE - 1, -86400, crypto.FUTURE_SKEW + 1, 86400],
    ids=["stale-by-1s", "stale-by-a-day", "future-beyond-skew", "future-by-a-day"],
)
def test_stamps_outside_the_window_fail(offset: int) -> None:
    key, iv, encrypted = _sealed(
        _payload(watermark={"appid": APPID, "timestamp": STAMP + offset})
    )
    data = crypto.decrypt(key, iv, encrypted)
    with pytest.raises(crypto.DecryptError):
        _verify(data)


@pytest.mark.parametrize(
    "stamp", [None, "1767225600", float(STAMP), True], ids=["missing", "string", "float", "bool"]
)
def test_a_stamp_that_is_not_an_integer_fails_with_the_age_check_on(stamp: object) -> None:
    watermark: dict[str, Any] = {"appid": APPID}
    if stamp is not None:
        watermark["timestamp"] = stamp
    with pytest.raises(crypto.DecryptError):
        _verify(_payload(watermark=watermark))


@pytest.mark.parametrize("max_age", [MAX_AGE, 0], ids=["age-check-on", "age-check-off"])
@pytest.mark.parametrize(
    "watermark",
    [
        {"appid": FOREIGN_APPID, "timestamp": STAMP},
        {"appid": APPID.upper(), "timestamp": STAMP},
        {"timestamp": STAMP},
        {"appid": None, "timestamp": STAMP},
        {"appid": [APPID], "timestamp": STAMP},
    ],
    ids=["foreign", "case-changed", "missing", "null", "list"],
)
def test_a_foreign_watermark_appid_fails(watermark: dict[str, Any], max_age: int) -> None:
    key, iv, encrypted = _sealed(_payload(watermark=watermark))
    data = crypto.decrypt(key, iv, encrypted)
    with pytest.raises(crypto.DecryptError):
        _verify(data, max_age=max_age)


@pytest.mark.parametrize("max_age", [MAX_AGE, 0])
@pytest.mark.parametrize("watermark", [None, "wx", [APPID, STAMP], 0])
def test_a_missing_or_malformed_watermark_fails(watermark: object, max_age: int) -> None:
    key, iv, encrypted = _sealed(_payload(watermark=watermark))
    data = crypto.decrypt(key, iv, encrypted)
    with pytest.raises(crypto.DecryptError):
        _verify(data, max_age=max_age)


def test_a_flipped_iv_rewrites_the_openid_and_verify_refuses_it() -> None:
    mine, victim = "oMINE0egBJY1zhBYw2KhdUfwVJJE", "oVICE0egBJY1zhBYw2KhdUfwVJJE"
    data = _payload(openId=mine)
    key, iv, encrypted = _sealed(data)

    plain = json.dumps(data, ensure_ascii=False).encode()
    forged = json.dumps({**data, "openId": victim}, ensure_ascii=False).encode()
    assert plain[:16] != forged[:16] and plain[16:] == forged[16:]  # only block 1 differs
    flipped_iv = _b64(_xor(base64.b64decode(iv), plain[:16], forged[:16]))

    # There is no MAC: decryption alone happily returns the other person's openId...
    tampered = crypto.decrypt(key, flipped_iv, encrypted)
    assert tampered["openId"] == victim
    assert {k: v for k, v in tampered.items() if k != "openId"} == {
        k: v for k, v in data.items() if k != "openId"
    }
    # ...so identity is compared with WeChat's (jscode2session gave `mine`), and refused.
    assert _verify(crypto.decrypt(key, iv, encrypted), openid=mine).nickname == "Ada"
    with pytest.raises(crypto.DecryptError):
        _verify(tampered, openid=mine)
    with pytest.raises(crypto.DecryptError):
        crypto.decrypt_profile(
            key, flipped_iv, encrypted, appid=APPID, openid=mine, unionid="union-1",
            now=NOW, max_age=MAX_AGE,
        )


def test_a_flipped_ciphertext_block_garbles_its_own_block_and_fails() -> None:
    data = _payload(nickName="A" * 40)
    key, iv, encrypted = _sealed(data)
    ciphertext = bytearray(base64.b64decode(encrypted))
    ciphertext[16] ^= 0x01  # garbles block 2, flips one bit of block 3
    with pytest.raises(crypto.DecryptError):
        crypto.decrypt(key, iv, _b64(bytes(ciphertext)))


@pytest.mark.parametrize(
    ("given", "wechat"),
    [("union-1", None), ("union-1", "union-2"), (None, "union-2"), (7, "7")],
    ids=["wechat-gave-none", "different", "null-in-data", "not-a-string"],
)
def test_a_unionid_wechat_did_not_give_fails(given: object, wechat: str | None) -> None:
    data = _payload(unionId=None)
    data["unionId"] = given
    with pytest.raises(crypto.DecryptError):
        _verify(data, unionid=wechat)


@pytest.mark.parametrize("openid", ["oSomeoneElse", "", None, 0])
def test_an_openid_other_than_wechats_fails(openid: object) -> None:
    data = _payload()
    data["openId"] = openid
    with pytest.raises(crypto.DecryptError):
        _verify(data)


def test_the_wrong_key_fails() -> None:
    _key, iv, encrypted = _sealed(_payload())
    for _ in range(20):  # many random wrong keys: garbage must never get through
        with pytest.raises(crypto.DecryptError):
            crypto.decrypt(os.urandom(16), iv, encrypted)


@pytest.mark.parametrize("size", [0, 8, 15, 24, 32])
def test_a_session_key_of_the_wrong_size_fails(size: int) -> None:
    _key, iv, encrypted = _sealed(_payload())
    with pytest.raises(crypto.DecryptError):
        crypto.decrypt(os.urandom(size), iv, encrypted)


@pytest.mark.parametrize("size", [0, 8, 15, 17, 32])
def test_an_iv_of_the_wrong_size_fails(size: int) -> None:
    key, _iv, encrypted = _sealed(_payload())
    with pytest.raises(crypto.DecryptError):
        crypto.decrypt(key, _b64(os.urandom(size)), encrypted)


@pytest.mark.parametrize("drop", [16, 32], ids=["one-block", "two-blocks"])
def test_truncated_ciphertext_fails(drop: int) -> None:
    key, iv, encrypted = _sealed(_payload())
    ciphertext = base64.b64decode(encrypted)
    with pytest.raises(crypto.DecryptError):
        crypto.decrypt(key, iv, _b64(ciphertext[:-drop]))


@pytest.mark.parametrize("change", [-1, 1, -15, 8], ids=["minus-1", "plus-1", "minus-15", "plus-8"])
def test_a_length_not_a_multiple_of_16_fails(change: int) -> None:
    key, iv, encrypted = _sealed(_payload())
    ciphertext = base64.b64decode(encrypted)
    odd = ciphertext[:change] if change < 0 else ciphertext + os.urandom(change)
    assert len(odd) % 16
    with pytest.raises(crypto.DecryptError):
        crypto.decrypt(key, iv, _b64(odd))


def test_empty_and_oversized_ciphertext_fail() -> None:
    key, iv = os.urandom(16), os.urandom(16)
    with pytest.raises(crypto.DecryptError):
        crypto.decrypt(key, _b64(iv), "")
    big = _payload(nickName="x" * crypto.MAX_CIPHERTEXT)
    with pytest.raises(crypto.DecryptError):
        crypto.decrypt(key, _b64(iv), crypto.encrypt(key, iv, big))


@pytest.mark.parametrize(
    "mangle",
    [
        lambda s: s[:-1],  # padding characters missing
        lambda s: s.rstrip("="),
        lambda s: "*" + s[1:],
        lambda s: s[:10] + "\n" + s[10:],
        lambda s: s[:10] + " " + s[10:],
        lambda s: s.replace("+", "-").replace("/", "_") + "-_",  # urlsafe alphabet
        lambda s: s + "====",
        lambda s: s + "QUFB",  # 3 extra bytes after the padding
        lambda s: "é" + s,
        lambda s: "",
    ],
    ids=[
        "one-char-short", "no-padding", "star", "newline", "space", "urlsafe", "extra-padding",
        "data-after-padding", "non-ascii", "empty",
    ],
)
@pytest.mark.parametrize("where", ["iv", "encryptedData"])
def test_bad_base64_fails(mangle: Any, where: str) -> None:
    key, iv = os.urandom(16), os.urandom(16)
    good_iv, good_data = _b64(iv), crypto.encrypt(key, iv, _payload())
    if where == "iv":
        bad_iv = mangle(good_iv)
        assert bad_iv != good_iv
        with pytest.raises(crypto.DecryptError):
            crypto.decrypt(key, bad_iv, good_data)
    else:
        bad_data = mangle(good_data)
        assert bad_data != good_data
        with pytest.raises(crypto.DecryptError):
            crypto.decrypt(key, good_iv, bad_data)


def _json_block(size: int) -> bytes:
    """A JSON object of exactly `size` bytes."""
    head = b'{"nickName": "'
    tail = b'"}'
    body = head + b"x" * (size - len(head) - len(tail)) + tail
    assert len(body) == size and json.loads(body)
    return body


@pytest.mark.parametrize(
    "padded",
    [
        _json_block(47) + b"\x00",
        _json_block(47) + b"\x11",
        _json_block(45) + b"\x02\x03\x03",
        _json_block(44) + b"\x04\x04\x05\x04",
        _json_block(32) + b"\x10" * 15 + b"\x11",
        _json_block(48),  # no padding at all, ends in `}`
        _json_block(47) + b"\x11" * 17,  # 32-byte PKCS#7 (pad 17): WXBizMsgCrypt's, not ours
        _json_block(41) + b"\x17" * 23,
    ],
    ids=["zero", "seventeen", "inconsistent", "inconsistent-inner", "sixteen-then-17",
         "none", "pkcs7-32-17", "pkcs7-32-23"],
)
def test_bad_padding_fails(padded: bytes) -> None:
    key, iv = os.urandom(16), os.urandom(16)
    encrypted = _raw_encrypt(key, iv, padded, pad_bits=None)
    with pytest.raises(crypto.DecryptError):
        crypto.decrypt(key, _b64(iv), encrypted)


@pytest.mark.parametrize(
    "plain",
    [
        b'{"nickName": "\xff\xfe"}',
        b'{"nickName": "\xe5\xb0"}',  # a truncated 3-byte sequence
        b'{"nickName": "\xed\xa0\x80"}',  # an encoded surrogate
        b'{"nickName": "\xc0\xaf"}',  # overlong
        '{"nickName": "小明"}'.encode("utf-16"),
    ],
    ids=["ff-fe", "truncated", "surrogate", "overlong", "utf-16"],
)
def test_bad_utf8_fails(plain: bytes) -> None:
    key, iv = os.urandom(16), os.urandom(16)
    with pytest.raises(crypto.DecryptError):
        crypto.decrypt(key, _b64(iv), _raw_encrypt(key, iv, plain))


@pytest.mark.parametrize(
    "plain",
    [b"", b"{", b'{"openId": ', b"{'a': 1}", b'{"a": 1} trailing', b"\x00" * 20, b"NaN ]"],
    ids=["empty", "open-brace", "cut", "single-quotes", "trailing", "nuls", "garbage"],
)
def test_bad_json_fails(plain: bytes) -> None:
    key, iv = os.urandom(16), os.urandom(16)
    with pytest.raises(crypto.DecryptError):
        crypto.decrypt(key, _b64(iv), _raw_encrypt(key, iv, plain))


@pytest.mark.parametrize(
    "plain", [b"[1, 2]", b'"text"', b"42", b"null", b"true", b"[]"]
)
def test_json_that_is_not_an_object_fails(plain: bytes) -> None:
    key, iv = os.urandom(16), os.urandom(16)
    with pytest.raises(crypto.DecryptError):
        crypto.decrypt(key, _b64(iv), _raw_encrypt(key, iv, plain))


def test_a_missing_watermark_fails_after_a_good_decryption() -> None:
    key, iv, encrypted = _sealed(_payload(watermark=None))
    data = crypto.decrypt(key, iv, encrypted)
    assert data["nickName"] == "Ada" and "watermark" not in data
    for max_age in (MAX_AGE, 0):
        with pytest.raises(crypto.DecryptError):
            _verify(data, max_age=max_age)


# --- hostile-but-well-encrypted plaintexts: still the one DecryptError ---------------------------


@pytest.mark.parametrize(
    "plain",
    [b"[" * 20_000 + b"]" * 20_000, b'{"a": ' * 5_000 + b"1" + b"}" * 5_000],
    ids=["arrays", "objects"],
)
def test_deeply_nested_json_fails_with_decrypt_error(plain: bytes) -> None:
    """json.loads raises RecursionError (not a ValueError) on deep nesting."""
    key, iv = os.urandom(16), os.urandom(16)
    encrypted = _raw_encrypt(key, iv, plain)
    assert len(base64.b64decode(encrypted)) <= crypto.MAX_CIPHERTEXT
    with pytest.raises(crypto.DecryptError):
        crypto.decrypt(key, _b64(iv), encrypted)


@pytest.mark.parametrize("stamp", [10**400, -(10**400)], ids=["huge", "huge-negative"])
def test_a_huge_integer_stamp_fails_with_decrypt_error(stamp: int) -> None:
    """`now.timestamp() - stamp` raises OverflowError for ints beyond a float's range."""
    key, iv, encrypted = _sealed(_payload(watermark={"appid": APPID, "timestamp": stamp}))
    data = crypto.decrypt(key, iv, encrypted)
    with pytest.raises(crypto.DecryptError):
        _verify(data)


def test_every_failure_kind_is_the_same_exception_type() -> None:
    """No subclass or distinct type per cause (the API answers them all alike)."""
    key, iv, encrypted = _sealed(_payload())
    failures: list[BaseException] = []
    for call in (
        lambda: crypto.decrypt(key, "!", encrypted),
        lambda: crypto.decrypt(key, iv, encrypted[:-4] + "AAA="),
        lambda: crypto.decrypt(os.urandom(16), iv, encrypted),
        lambda: _verify(_payload(watermark={"appid": FOREIGN_APPID, "timestamp": STAMP})),
        lambda: _verify(_payload(), now=NOW + timedelta(days=1)),
        lambda: _verify(_payload(), openid="oOther"),
    ):
        with pytest.raises(crypto.DecryptError) as caught:
            call()
        failures.append(caught.value)
    assert {type(error) for error in failures} == {crypto.DecryptError}
