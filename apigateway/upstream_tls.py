"""Which TLS a provider's connections use.

By default the client's own context: the system's trust store, as OpenSSL finds it
(SSL_CERT_FILE / SSL_CERT_DIR honoured), with the host name checked. A provider's entry in
NEXEON_PROVIDERS may instead name `ca_file` (a PEM bundle of the CAs trusted for that
provider alone, e.g. a private endpoint's), `client_cert` and `client_key` (PEM files; the
key may be in the certificate's file) for servers that require a client certificate, and
`verify: false` (no certificate check at all: for a test endpoint only). Each combination
makes one context, once, shared by every call to that provider.
"""

from __future__ import annotations

import functools
import ssl
from collections.abc import Mapping
from typing import Any

TLS_KEYS = ("ca_file", "client_cert", "client_key", "verify")


@functools.cache
def context(
    *,
    ca_file: str | None = None,
    client_cert: str | None = None,
    client_key: str | None = None,
    verify: bool = True,
) -> ssl.SSLContext | None:
    """The context for these options; None for the defaults (the client's own context).
    OSError or ssl.SSLError when a file cannot be read or is not what it should be."""
    if ca_file is None and client_cert is None and verify:
        return None
    made = ssl.create_default_context(cafile=ca_file if verify else None)
    if not verify:
        made.check_hostname = False
        made.verify_mode = ssl.CERT_NONE
    if client_cert is not None:
        made.load_cert_chain(client_cert, client_key)
    return made


def context_for(config: Mapping[str, Any]) -> ssl.SSLContext | None:
    """A provider's context, from its settings.PROVIDERS entry."""
    if "ca_file" not in config and "client_cert" not in config and "verify" not in config:
        return None  # (every built-in provider: decided without building a key)
    return context(
        ca_file=config.get("ca_file"),
        client_cert=config.get("client_cert"),
        client_key=config.get("client_key"),
        verify=config.get("verify", True),
    )


def configured(name: str, given: Mapping[str, Any]) -> dict[str, Any]:
    """The TLS options a NEXEON_PROVIDERS entry sets, checked (the files are read once, so
    that a wrong path stops the start rather than every call); ValueError says what is
    wrong."""
    where = f"NEXEON_PROVIDERS[{name!r}]"
    out: dict[str, Any] = {}
    for key in ("ca_file", "client_cert", "client_key"):
        if key in given:
            if not isinstance(given[key], str) or not given[key]:
                raise ValueError(f"{where}.{key} must be the path of a PEM file")
            out[key] = given[key]
    if "verify" in given:
        if not isinstance(given["verify"], bool):
            raise ValueError(f"{where}.verify must be true or false")
        out["verify"] = given["verify"]
    if "client_key" in out and "client_cert" not in out:
        raise ValueError(f"{where}.client_key needs client_cert")
    try:
        context_for(out)
    except (OSError, ssl.SSLError) as exc:
        raise ValueError(f"{where}: the TLS files cannot be used: {exc}") from None
    return out
