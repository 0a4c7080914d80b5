"""What a provider's error message may not tell the caller: secrets and internal addresses.

A provider's message about the request reaches the caller (it says what was wrong), but a
provider, or a proxy or self-hosted server in front of it, may echo the operator's key, a
bearer token or the address of a machine inside the operator's network. Each such piece
becomes `[redacted]`; the rest of the message stays readable.

The message may echo the caller's own input, so every pattern runs in linear time
(possessive runs, bounded prefixes): a hostile prompt cannot make redacting slow. Pure.
"""

from __future__ import annotations

import ipaddress
import re

REDACTED = "[redacted]"
WITHHELD = "the provider's message was withheld"

_URL = re.compile(r"\b[A-Za-z][A-Za-z0-9+.\-]{0,30}://[^\s'\"<>`]*")
_KEY = re.compile(r"\b(?:sk-|gsk_|xai-|AIza)[A-Za-z0-9_\-]{6,}+|\bBearer\s++\S++", re.IGNORECASE)
_BRACKETED = re.compile(r"\[[0-9A-Fa-f:.]++\](?::[0-9]++)?")
_IPV6 = re.compile(r"(?<![\w:.])[0-9A-Fa-f:.]{2,}+")
_HOST_PORT = re.compile(r"(?<![\w.\-])([A-Za-z0-9_.\-]++):[0-9]{1,5}+(?![0-9])")
_IPV4 = re.compile(r"(?<![\w.])(?:[0-9]{1,3}\.){3}[0-9]{1,3}(?!\.?\w)")
_NAME = re.compile(r"(?<![\w.\-])[A-Za-z0-9_\-]++(?:\.[A-Za-z0-9_\-]++)++|\blocalhost\b")
_TOKEN = re.compile(r"[A-Za-z0-9+/=_\-]{24,}+")
INTERNAL_SUFFIXES = (
    ".internal",
    ".local",
    ".localdomain",
    ".localhost",
    ".svc",
    ".corp",
    ".lan",
    ".intranet",
    ".home.arpa",
)


def _bracketed(match: re.Match[str]) -> str:
    return REDACTED if _is_ipv6(match.group().partition("]")[0][1:]) else match.group()


def _ipv6(match: re.Match[str]) -> str:
    text = match.group()
    address = text.rstrip(".")  # (the end of a sentence)
    if text.count(":") < 2 or not _is_ipv6(address):
        return text  # e.g. a time of day, 12:30:45
    return REDACTED + text[len(address) :]


def _is_ipv6(text: str) -> bool:
    try:
        ipaddress.IPv6Address(text)
    except ValueError:
        return False
    return True


def _host_port(match: re.Match[str]) -> str:
    host = match.group(1)
    # A host has a letter or a dot in it; "12:30" is a time, "3:1" a ratio.
    if "." in host or any(c.isalpha() for c in host):
        return REDACTED
    return match.group()


def _name(match: re.Match[str]) -> str:
    name = match.group()
    internal = name.lower() == "localhost" or name.lower().endswith(INTERNAL_SUFFIXES)
    return REDACTED if internal else name


def _token(match: re.Match[str]) -> str:
    # Keys, hashes and base64 have digits in them; no word of a sentence is 24 letters
    # long without a separator. ("invalid_request_error_code" stays.)
    text = match.group()
    if any(c.isdigit() for c in text) or not any(c in "-_" for c in text):
        return REDACTED
    return text


def redact(message: str, secret: str = "") -> str:
    """The message without secrets and internal addresses. `secret` (the operator's key
    for the provider) is removed wherever it appears, whatever it looks like. May be
    empty: the caller then says something of its own."""
    if secret:
        message = message.replace(secret, REDACTED)
    message = _URL.sub(REDACTED, message)
    message = _KEY.sub(REDACTED, message)
    message = _BRACKETED.sub(_bracketed, message)
    message = _IPV6.sub(_ipv6, message)
    message = _HOST_PORT.sub(_host_port, message)
    message = _IPV4.sub(REDACTED, message)
    message = _NAME.sub(_name, message)
    message = _TOKEN.sub(_token, message)
    if secret and secret in message:
        # Only a key that overlaps the marker itself can survive the replacing. (A key
        # short enough to be part of any text leaves nothing to say.)
        return "" if secret in WITHHELD else WITHHELD
    return message
