"""Which media URLs in a chat request a provider may be asked to fetch.

A provider fetches an image or file URL from its own network: an internal address would
make it (or, for a self-hosted server, the operator's own network) fetch for the caller.
So a URL is either inline data (`data:`) or `https:` to a public host named by a domain
or a global address. Literal addresses are read as a URL parser reads them (decimal,
octal and hexadecimal IPv4 forms, bracketed IPv6, IPv4 inside IPv6); names that only
resolve inside a network (`localhost`, single labels, `.local`, `.internal`, ...) are
refused. A name that resolves to a private address cannot be seen here: that is the
fetching provider's to refuse.

Pure: no DNS, no IO.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

from apigateway.errors import bad_request

# Names that resolve only inside a network, by convention or by standard (RFC 6761, 6762,
# 8375; .internal by ICANN's 2024 reservation; Kubernetes' svc and cluster.local).
INTERNAL_SUFFIXES = (
    ".localhost",
    ".local",
    ".internal",
    ".localdomain",
    ".home.arpa",
    ".lan",
    ".corp",
    ".intranet",
    ".private",
    ".svc",
)
HOST_NAME = re.compile(r"[a-z0-9_-]+(?:\.[a-z0-9_-]+)+")
# A URL parser reads a host whose last label is a number as an IPv4 address.
NUMERIC_LABEL = re.compile(r"0x[0-9a-f]*|[0-9]+")
# Anything a parser might drop or read differently (whitespace, controls, backslashes).
UNSAFE = re.compile(r"[\x00-\x20\x7f\\]")
SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:")
# Content parts whose data may be given as a URL: part type → the field holding it.
INLINE_DATA = {"file": "file_data", "input_audio": "data"}


def problem(url: str) -> str | None:
    """Why the provider must not be given this URL, or None for a `data:` URL or an
    `https:` URL of a public host."""
    scheme = url[:8].lower()
    if scheme.startswith("data:"):
        return None
    if scheme != "https://":
        return "media URLs must be https: or base64 data: URLs"
    if UNSAFE.search(url):
        return "the media URL has spaces, control characters or backslashes"
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018  (raises for a port that is not a number in range)
    except ValueError:
        return "the media URL is not a valid URL"
    if "@" in parts.netloc:
        return "media URLs may not carry a user name or password"
    host = parts.hostname or ""
    if not host or "%" in host:
        return "the media URL has no valid host"
    if parts.netloc.startswith("["):
        return _address_problem(host)
    return _host_problem(host)


def _host_problem(host: str) -> str | None:
    try:
        host = host.encode("idna").decode("ascii")  # (as a fetcher would, e.g. fullwidth)
    except UnicodeError:
        return "the media URL has no valid host"
    host = host.lower().removesuffix(".")
    labels = host.split(".")
    if NUMERIC_LABEL.fullmatch(labels[-1]):
        try:
            packed = socket.inet_aton(host)
        except OSError:
            return "the media URL has no valid host"
        return _address_problem(str(ipaddress.IPv4Address(packed)))
    if not HOST_NAME.fullmatch(host):  # a single label, or characters no host name has
        return "media URLs must name a public host"
    if host == "localhost" or host.endswith(INTERNAL_SUFFIXES):
        return "media URLs must name a public host"
    return None


def _address_problem(text: str) -> str | None:
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return "the media URL has no valid host"
    if not _public(address):
        return "media URLs must name a public host, not a private or reserved address"
    return None


NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


def _public(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if not address.is_global or address.is_multicast:
        return False
    if isinstance(address, ipaddress.IPv6Address):
        # An IPv4 address carried inside an IPv6 one reaches that IPv4 address.
        embedded = address.ipv4_mapped or address.sixtofour
        if embedded is None and address in NAT64:
            embedded = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if embedded is not None:
            return _public(embedded)
    return True


def check(url: str) -> None:
    """400 (param `messages`) unless the URL may be given to a provider."""
    if (reason := problem(url)) is not None:
        raise bad_request(f"{reason}.", param="messages")


def check_inline(url: str) -> None:
    """400 unless the URL is inline data: for providers that may fetch nothing."""
    if url[:5].lower() != "data:":
        raise bad_request(
            "This model takes media only as base64 data: URLs, not as links.", param="messages"
        )


def urls_in(part: dict[str, Any]) -> Iterator[str]:
    """The URLs a content part asks a provider to read: an image's URL; a file's or an
    audio clip's data when it is a URL rather than bare base64 (which has no colon).
    Parts of another shape are the adapters' to refuse."""
    kind = part.get("type")
    if kind == "image_url":
        image = part.get("image_url")
        url = image.get("url") if isinstance(image, dict) else image
        if isinstance(url, str):
            yield url
    elif kind in INLINE_DATA:
        inner = part.get(kind)
        data = inner.get(INLINE_DATA[kind]) if isinstance(inner, dict) else None
        if isinstance(data, str) and SCHEME.match(data):
            yield data


def check_part(part: dict[str, Any]) -> None:
    """Every media URL of a content part."""
    for url in urls_in(part):
        check(url)


def refuse_remote(messages: list[Any]) -> None:
    """For providers that may fetch nothing: every media URL must be inline data."""
    for message in messages:
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, list):
            for part in content:
                if isinstance(part, dict):
                    for url in urls_in(part):
                        check_inline(url)
