"""Decrypting a mini program's `encryptedData` (WXBizDataCrypt: AES-128-CBC, PKCS#7 on 16 bytes).

There is no MAC: whoever sends the IV rewrites the first plaintext block at will. So decrypted data
only ever adds profile fields; identity comes from jscode2session and is compared, never keyed on.
Every failure raises the one DecryptError, which the API answers with one uniform 400, so the
answers cannot serve as a padding oracle.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

FUTURE_SKEW = 300  # seconds a watermark may lie ahead of our clock
MAX_CIPHERTEXT = 48 * 1024


class DecryptError(Exception):
    """The one failure: its reason is for logs and tests, never for the client."""


@dataclass(frozen=True)
class Profile:
    nickname: str | None
    avatar_url: str | None


def _b64(value: str) -> bytes:
    try:
        return base64.b64decode(value.encode("ascii"), validate=True)
    except (binascii.Error, ValueError, UnicodeEncodeError):
        raise DecryptError("not strict base64") from None


def decrypt(session_key: bytes, iv: str, encrypted_data: str) -> dict[str, Any]:
    """Steps 1-3: strict base64 and lengths, strict unpadding, UTF-8 JSON object."""
    key, vector, ciphertext = session_key, _b64(iv), _b64(encrypted_data)
    if len(key) != 16 or len(vector) != 16:
        raise DecryptError("key or iv is not 16 bytes")
    if not ciphertext or len(ciphertext) % 16 or len(ciphertext) > MAX_CIPHERTEXT:
        raise DecryptError("ciphertext length is not a positive multiple of 16")
    decryptor = Cipher(algorithms.AES(key), modes.CBC(vector)).decryptor()
    padded = decryptor.update(ciphertext) + decryptor.finalize()
    unpadder = padding.PKCS7(128).unpadder()
    try:
        plain = unpadder.update(padded) + unpadder.finalize()
        data = json.loads(plain.decode("utf-8"))
    except (ValueError, RecursionError):  # bad padding, UTF-8, JSON; JSON nested too deep
        raise DecryptError("bad padding, UTF-8 or JSON") from None
    if not isinstance(data, dict):
        raise DecryptError("not a JSON object")
    return data


def verify(
    data: dict[str, Any],
    *,
    appid: str,
    openid: str,
    unionid: str | None,
    now: datetime,
    max_age: int,
) -> Profile:
    """Steps 4-7: the watermark, then identity compared with WeChat's, then the profile."""
    watermark = data.get("watermark")
    if not isinstance(watermark, dict) or watermark.get("appid") != appid:
        raise DecryptError("watermark appid")
    stamp = watermark.get("timestamp")
    if max_age:
        if not isinstance(stamp, int) or isinstance(stamp, bool) or not 0 < stamp < 2**40:
            raise DecryptError("watermark timestamp")
        age = now.timestamp() - stamp
        if age > max_age or age < -FUTURE_SKEW:
            raise DecryptError("watermark too old or in the future")
    if "openId" in data and data["openId"] != openid:
        raise DecryptError("openId differs from WeChat's")
    if "unionId" in data and (unionid is None or data["unionId"] != unionid):
        raise DecryptError("unionId differs from WeChat's")
    return Profile(_text(data.get("nickName")), _text(data.get("avatarUrl")))


def _text(value: object) -> str | None:
    if not isinstance(value, str) or not value or "\x00" in value:
        return None
    try:
        value.encode("utf-8")  # JSON escapes can spell lone surrogates
    except UnicodeEncodeError:
        return None
    return value


def decrypt_profile(
    session_key: bytes,
    iv: str,
    encrypted_data: str,
    *,
    appid: str,
    openid: str,
    unionid: str | None,
    now: datetime,
    max_age: int,
) -> Profile:
    data = decrypt(session_key, iv, encrypted_data)
    return verify(data, appid=appid, openid=openid, unionid=unionid, now=now, max_age=max_age)


def encrypt(session_key: bytes, iv: bytes, data: dict[str, Any]) -> str:
    """The mini program's side, for the tests' WeChat stand-in and the sandbox."""
    padder = padding.PKCS7(128).padder()
    plain = padder.update(json.dumps(data, ensure_ascii=False).encode()) + padder.finalize()
    encryptor = Cipher(algorithms.AES(session_key), modes.CBC(iv)).encryptor()
    return base64.b64encode(encryptor.update(plain) + encryptor.finalize()).decode()
