"""Ids that must be unique, not secret: a request's, a completion's, a message's.

They come from one generator seeded from the operating system when the process starts, so
that making one is no system call (`secrets` makes one, getrandom, each time: a cold one
after a wait on the provider). A forked child seeds its own, or it would repeat its
parent's ids.
"""

from __future__ import annotations

import os
import random
import secrets

_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_source = random.Random(secrets.randbits(128))  # noqa: S311  (not for secrets)


def request_id() -> str:
    """req_ and 96 random bits in hex."""
    return f"req_{_source.getrandbits(96):024x}"


def completion_id() -> str:
    """chatcmpl- and 24 letters and digits (about 143 random bits), as OpenAI's look."""
    return "chatcmpl-" + "".join(_source.choices(_ALPHABET, k=24))


def message_id() -> str:
    """msg_01 and 22 letters and digits, as Anthropic's message ids look."""
    return "msg_01" + "".join(_source.choices(_ALPHABET, k=22))


def _reseed() -> None:
    _source.seed(secrets.randbits(128))


os.register_at_fork(after_in_child=_reseed)
