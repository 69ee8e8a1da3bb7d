"""The official account's message security (WECHAT.md 11): the request signature, and safe
mode's AES-256-CBC envelope.

- `signature`: sha1 of the sorted, joined [token, timestamp, nonce] (and, in safe mode, the
  `Encrypt` element for `msg_signature`), compared in constant time.
- Safe mode: key = base64(EncodingAESKey + "="), iv = key[:16], PKCS#7 padding to 32-byte
  blocks; the plaintext is 16 random bytes, a 4-byte big-endian length, the XML, then the
  account's appid, which must be ours. A previous EncodingAESKey is tried second, so the console
  can change keys without losing a message.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import struct

from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes


class BadMessage(Exception):
    """Not a message this account's keys made (or not for this appid)."""


def signature(token: str, timestamp: str, nonce: str, *extra: str) -> str:
    joined = "".join(sorted([token, timestamp, nonce, *extra])).encode()
    return hashlib.sha1(joined).hexdigest()  # noqa: S324 - WeChat's protocol is SHA-1


def signed(given: str, token: str, timestamp: str, nonce: str, *extra: str) -> bool:
    return hmac.compare_digest(given.encode(), signature(token, timestamp, nonce, *extra).encode())


def aes_key(encoding_aes_key: str) -> bytes:
    """The 32-byte key of a 43-character EncodingAESKey; ValueError for anything else."""
    if len(encoding_aes_key) != 43:
        raise ValueError("an EncodingAESKey is 43 characters")
    try:
        key = base64.b64decode(encoding_aes_key + "=", validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("an EncodingAESKey is base64 (letters and digits)") from None
    if len(key) != 32:
        raise ValueError("an EncodingAESKey decodes to 32 bytes")
    return key


class MessageCrypto:
    def __init__(self, appid: str, key: str, previous: str | None = None) -> None:
        self.appid = appid
        self._keys = [aes_key(key)] + ([aes_key(previous)] if previous else [])

    def encrypt(self, xml: str, random: bytes | None = None) -> str:
        """The `Encrypt` of a reply, under the current key."""
        body = xml.encode()
        plain = (random or os.urandom(16)) + struct.pack(">I", len(body)) + body
        plain += self.appid.encode()
        padder = padding.PKCS7(256).padder()
        padded = padder.update(plain) + padder.finalize()
        key = self._keys[0]
        encryptor = Cipher(algorithms.AES(key), modes.CBC(key[:16])).encryptor()
        return base64.b64encode(encryptor.update(padded) + encryptor.finalize()).decode()

    def decrypt(self, encrypted: str) -> str:
        """The XML inside an `Encrypt`; BadMessage unless one of our keys made it for our appid."""
        try:
            sealed = base64.b64decode(encrypted, validate=True)
        except (binascii.Error, ValueError):
            raise BadMessage() from None
        if not sealed or len(sealed) % 16 != 0:  # whole AES blocks, or not ours
            raise BadMessage()
        for key in self._keys:
            found = self._open(key, sealed)
            if found is not None:
                return found
        raise BadMessage()

    def _open(self, key: bytes, sealed: bytes) -> str | None:
        decryptor = Cipher(algorithms.AES(key), modes.CBC(key[:16])).decryptor()
        try:
            padded = decryptor.update(sealed) + decryptor.finalize()
            unpadder = padding.PKCS7(256).unpadder()
            plain = unpadder.update(padded) + unpadder.finalize()
        except ValueError:
            return None
        if len(plain) < 20:
            return None
        (length,) = struct.unpack(">I", plain[16:20])
        body, appid = plain[20:20 + length], plain[20 + length:]
        if len(body) != length or not hmac.compare_digest(appid, self.appid.encode()):
            return None
        try:
            return body.decode()
        except UnicodeDecodeError:
            return None
