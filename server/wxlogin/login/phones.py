"""Phone numbers (WXLOGIN_PHONE): sealed at rest, masked for the owner, shown to the site only
when the mode is not off.

The key derives from the primary mini program's AppSecret, which every process has and a dump of
the database does not (as the access tokens are sealed). A new AppSecret makes old numbers
unreadable: they count as unknown until the person shares their number again.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ..storage.queries import User


def masked(number: str) -> str:
    """`+86 138****8000`: enough for the owner to tell numbers apart, not to call one."""
    if number.startswith("+86") and len(number) == 14:
        return f"+86 {number[3:6]}****{number[-4:]}"
    return f"{number[:3]}****{number[-4:]}" if len(number) > 8 else "****"


@dataclass(frozen=True)
class PhoneBook:
    mode: str  # off, optional, required
    key: bytes  # 32 bytes

    @classmethod
    def for_secret(cls, mode: str, secret: str) -> PhoneBook:
        return cls(mode, hashlib.sha256(b"wxlogin phone number\0" + secret.encode()).digest())

    def seal(self, number: str, user_key: str) -> bytes:
        nonce = os.urandom(12)
        return nonce + AESGCM(self.key).encrypt(nonce, number.encode(), user_key.encode())

    def unseal(self, sealed: bytes | None, user_key: str) -> str | None:
        if not sealed or len(sealed) < 13:
            return None
        try:
            return AESGCM(self.key).decrypt(sealed[:12], sealed[12:], user_key.encode()).decode()
        except (InvalidTag, ValueError):
            return None

    def shown(self, user: User) -> str | None:
        """The user's number as the site may see it: None when the mode is off."""
        if self.mode == "off":
            return None
        return self.unseal(user.phone_sealed, f"user:{user.id}")

    def public(self, user: User) -> dict[str, Any]:
        """The user as the site sees them (`/api/me`, the poll, pushCode's answer)."""
        found = user.public()
        number = self.shown(user)
        if number is not None:
            found["phone"] = number
        return found
