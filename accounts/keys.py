"""API keys and management tokens as strings: generate, recognise, digest. Pure
functions, no database.

A key is ``nex-sk-`` followed by 48 random letters and digits (about 286 bits); a
management token has the same shape after ``nex-mt-``. Only a secret's SHA-256 digest is
stored; its first characters (the prefix) are kept to show in lists.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import string

KEY_PREFIX = "nex-sk-"
MANAGEMENT_PREFIX = "nex-mt-"
SECRET_LENGTH = 48
DISPLAY_PREFIX_LENGTH = len(KEY_PREFIX) + 6
_ALPHABET = string.ascii_letters + string.digits


def generate(prefix: str = KEY_PREFIX) -> str:
    return prefix + "".join(secrets.choice(_ALPHABET) for _ in range(SECRET_LENGTH))


_SECRET = re.compile(f"[A-Za-z0-9]{{{SECRET_LENGTH}}}")


def looks_like_key(candidate: str, prefix: str = KEY_PREFIX) -> bool:
    """Cheap shape check, so that garbage never costs a cache or database lookup."""
    return candidate.startswith(prefix) and _SECRET.fullmatch(candidate, len(prefix)) is not None


def digest(key: str) -> str:
    """Hex SHA-256: the key has about 286 random bits, so a fast hash is enough (no
    stretching)."""
    return hashlib.sha256(key.encode()).hexdigest()


def display_prefix(key: str) -> str:
    return key[:DISPLAY_PREFIX_LENGTH]
