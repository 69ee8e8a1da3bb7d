"""Properties, checked on generated inputs (hypothesis): input parsing and decryption.

Parsing: whatever a client sends, the answer is the value or a BadInput (400), never another
exception. Decryption: what the mini program encrypts decrypts to the same; anything else raises
crypto.DecryptError or (CBC has no MAC) decrypts to some other JSON object, never anything else.
"""

from __future__ import annotations

import base64
import re
import string
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from wxlogin.errors import ApiError, BadInput
from wxlogin.http import inputs
from wxlogin.wechat import crypto

checked = settings(max_examples=300, deadline=None,
                   suppress_health_check=[HealthCheck.too_slow])

SCENE = re.compile(r"[0-9A-Za-z]{1,32}")
# Near misses: what looks like a letter or digit to Unicode, but is not ASCII.
LOOKALIKES = "٣０Ａａßſﬁİıé\u212a\u00b2¹½①\u0660"
scene_like = st.text(alphabet=string.ascii_letters + string.digits + LOOKALIKES + "-_./ %\x00\n",
                     max_size=40)
anything = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=8,
)


def parsed(parse: Callable[[Any], Any], value: Any) -> Any:
    """The parsed value, or the BadInput; any other exception fails the test."""
    try:
        return parse(value)
    except ApiError as exc:
        assert isinstance(exc, BadInput) and exc.status == 400 and exc.code == "bad_request"
        return exc


# --- input parsing -----------------------------------------------------------------------------


@checked
@given(st.one_of(scene_like, st.text(), st.from_regex(SCENE, fullmatch=True), anything))
def test_a_scene_is_1_to_32_ascii_letters_and_digits_or_a_bad_input(value: Any) -> None:
    result = parsed(inputs.scene, value)
    if isinstance(result, BadInput):
        assert not (isinstance(value, str) and SCENE.fullmatch(value))
    else:
        assert result == value and isinstance(value, str) and SCENE.fullmatch(value)


@checked
@given(st.from_regex(SCENE, fullmatch=True))
def test_every_well_formed_scene_is_accepted(value: str) -> None:
    assert inputs.scene(value) == value


@checked
@given(st.one_of(st.text(max_size=140), st.from_regex(inputs.CODE, fullmatch=True), anything))
def test_a_code_is_1_to_128_printable_ascii_or_a_bad_input(value: Any) -> None:
    result = parsed(inputs.code, value)
    if not isinstance(result, BadInput):
        assert result == value and 1 <= len(value) <= 128
        assert all(0x21 <= ord(c) <= 0x7E for c in value)


@checked
@given(st.one_of(st.none(), st.text(max_size=12), st.integers().map(str)))
def test_wait_is_0_to_50_seconds_or_a_bad_input(value: str | None) -> None:
    result = parsed(inputs.wait, value)
    if not isinstance(result, BadInput):
        assert isinstance(result, int) and 0 <= result <= inputs.MAX_WAIT


@checked
@given(st.one_of(st.none(), st.text(max_size=12), st.sampled_from(["pending", "scanned"])))
def test_since_is_a_status_or_a_bad_input(value: str | None) -> None:
    result = parsed(inputs.since, value)
    if not isinstance(result, BadInput):
        assert result in ("pending", "scanned", "confirmed", "denied", "expired")


# --- decryption --------------------------------------------------------------------------------

APPID = "wx00000000000000aa"
NOW = datetime(2026, 1, 1, tzinfo=UTC)
keys = st.binary(min_size=16, max_size=16)
# What json.dumps then UTF-8 can carry: any text but lone surrogates.
texts = st.text(st.characters(exclude_categories=["Cs"]), max_size=80)
profiles = st.fixed_dictionaries(
    {"nickName": texts, "avatarUrl": texts, "openId": texts},
    optional={"unionId": texts, "gender": st.integers(0, 2), "language": texts},
)


def sealed(key: bytes, iv: bytes, data: dict[str, Any]) -> tuple[str, str]:
    """What the mini program sends: base64 iv and encryptedData."""
    return base64.b64encode(iv).decode(), crypto.encrypt(key, iv, data)


def opened(key: bytes, iv: str, encrypted: str) -> dict[str, Any] | crypto.DecryptError:
    """The decrypted object, or the DecryptError; any other exception fails the test."""
    try:
        return crypto.decrypt(key, iv, encrypted)
    except crypto.DecryptError as exc:
        return exc


@checked
@given(keys, keys, profiles)
def test_what_is_encrypted_decrypts_to_the_same(
    key: bytes, iv: bytes, data: dict[str, Any]
) -> None:
    assert crypto.decrypt(key, *sealed(key, iv, data)) == data


@checked
@given(keys, keys, profiles)
def test_a_verified_profile_is_what_was_sent(key: bytes, iv: bytes, data: dict[str, Any]) -> None:
    data = {**data, "watermark": {"appid": APPID, "timestamp": int(NOW.timestamp())}}
    profile = crypto.decrypt_profile(
        key, *sealed(key, iv, data), appid=APPID, openid=data["openId"],
        unionid=data.get("unionId"), now=NOW, max_age=60,
    )

    def kept(value: str) -> str | None:
        return value if value and "\x00" not in value else None

    assert profile == crypto.Profile(kept(data["nickName"]), kept(data["avatarUrl"]))


@checked
@given(keys, keys, profiles, st.data())
def test_a_tampered_ciphertext_never_raises_anything_else(
    key: bytes, iv: bytes, data: dict[str, Any], draw: st.DataObject
) -> None:
    iv64, encrypted = sealed(key, iv, data)
    raw = bytearray(base64.b64decode(encrypted))
    at = draw.draw(st.integers(0, len(raw) - 1), label="byte")
    raw[at] ^= draw.draw(st.integers(1, 255), label="flip")
    result = opened(key, iv64, base64.b64encode(raw).decode())
    assert isinstance(result, crypto.DecryptError | dict)


@checked
@given(keys, keys, profiles, st.integers(0, 15), st.integers(1, 255))
def test_a_tampered_iv_never_raises_anything_else(
    key: bytes, iv: bytes, data: dict[str, Any], at: int, flip: int
) -> None:
    # No MAC: the IV rewrites the first block at will, so this may well decrypt (which is why
    # decrypted data only adds profile fields); it must never fail any other way.
    _, encrypted = sealed(key, iv, data)
    tampered = bytearray(iv)
    tampered[at] ^= flip
    result = opened(key, base64.b64encode(tampered).decode(), encrypted)
    assert isinstance(result, crypto.DecryptError | dict)


@checked
@given(keys, keys, keys, profiles)
def test_another_key_never_raises_anything_else(
    key: bytes, other: bytes, iv: bytes, data: dict[str, Any]
) -> None:
    assume(key != other)
    result = opened(other, *sealed(key, iv, data))
    assert isinstance(result, crypto.DecryptError | dict)
    assert result != data


@checked
@given(keys, keys, profiles, st.data())
def test_a_truncated_ciphertext_is_refused(
    key: bytes, iv: bytes, data: dict[str, Any], draw: st.DataObject
) -> None:
    iv64, encrypted = sealed(key, iv, data)
    raw = base64.b64decode(encrypted)
    cut = draw.draw(st.integers(0, len(raw) - 1), label="kept bytes")
    # json.dumps escapes every control character, so no block boundary holds valid padding.
    assert isinstance(opened(key, iv64, base64.b64encode(raw[:cut]).decode()), crypto.DecryptError)
    # Cut inside the base64 text itself: not strict base64, or not whole blocks.
    text_cut = draw.draw(st.integers(0, len(encrypted) - 1), label="kept characters")
    assert isinstance(opened(key, iv64, encrypted[:text_cut]), crypto.DecryptError)


@checked
@given(keys, keys, profiles, st.binary(min_size=0, max_size=40))
def test_keys_and_ivs_of_another_length_are_refused(
    key: bytes, iv: bytes, data: dict[str, Any], odd: bytes
) -> None:
    assume(len(odd) != 16)
    iv64, encrypted = sealed(key, iv, data)
    assert isinstance(opened(odd, iv64, encrypted), crypto.DecryptError)
    assert isinstance(opened(key, base64.b64encode(odd).decode(), encrypted), crypto.DecryptError)


@checked
@given(st.binary(max_size=40), st.text(max_size=40), st.text(max_size=200))
def test_random_input_raises_only_decrypt_error(key: bytes, iv: str, encrypted: str) -> None:
    assert isinstance(opened(key, iv, encrypted), crypto.DecryptError | dict)


@checked
@given(keys, keys, st.binary(min_size=1, max_size=160))
def test_random_ciphertext_raises_only_decrypt_error(key: bytes, iv: bytes, raw: bytes) -> None:
    result = opened(key, base64.b64encode(iv).decode(), base64.b64encode(raw).decode())
    assert isinstance(result, crypto.DecryptError | dict)
    if len(raw) % 16:
        assert isinstance(result, crypto.DecryptError)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | texts,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(texts, inner, max_size=3),
    max_leaves=8,
)


@checked
@given(keys, keys, st.dictionaries(
    st.sampled_from(["nickName", "avatarUrl", "openId", "unionId", "watermark"]) | texts,
    json_values | st.fixed_dictionaries({}, optional={"appid": st.just(APPID) | texts,
                                                       "timestamp": json_values}),
    max_size=6,
))
def test_any_decrypted_object_is_a_profile_or_a_decrypt_error(
    key: bytes, iv: bytes, data: dict[str, Any]
) -> None:
    try:
        profile = crypto.decrypt_profile(
            key, *sealed(key, iv, data), appid=APPID, openid="o1", unionid=None, now=NOW,
            max_age=60,
        )
    except crypto.DecryptError:
        return
    assert isinstance(profile, crypto.Profile)
