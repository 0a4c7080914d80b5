"""Requests an SDK sends to the wrong URL because its base URL lacks `/v1`, or has it when
the SDK adds its own.

OpenAI's SDKs append `/chat/completions`, `/embeddings`, ... to the base URL, so a base URL
of `https://host` posts to `https://host/chat/completions`: without this, the dashboard
would answer with an HTML 404 that an SDK shows with no message. These paths go to the
gateway instead (`server.is_gateway_path`), which answers a JSON 404 in OpenAI's error
shape saying which base URL to use. None of them is a dashboard URL. Pure.
"""

from __future__ import annotations

from typing import Any

from apigateway.errors import GatewayError

# The first segment of every API path the OpenAI and Anthropic SDKs build.
API_RESOURCES = frozenset(
    {
        "chat",
        "completions",
        "embeddings",
        "responses",
        "messages",
        "models",
        "images",
        "moderations",
        "audio",
        "files",
        "batches",
    }
)


# The public models page (apigateway/views.py): an SDK builds /models and /models/{id},
# never /models/ (an empty id).
PAGES = frozenset({"/models/"})


def lacks_v1(path: str) -> bool:
    """Is this an API path written without its `/v1` prefix?"""
    if not path.startswith("/") or path in PAGES:
        return False
    return path.split("/", 2)[1] in API_RESOURCES


def doubled_v1(path: str) -> bool:
    """Is this an API path with `/v1` twice (a base URL ending in /v1 plus the SDK's own)?"""
    return path.startswith("/v1/v1/") and lacks_v1(path[6:])


def _header(scope: dict[str, Any], name: bytes) -> str | None:
    value: bytes
    for key, value in scope.get("headers") or ():
        if key == name:
            return value.decode("latin-1").split(",")[0].strip()
    return None


def root_url(scope: dict[str, Any]) -> str:
    """This host's URL as the caller reached it (the scheme behind a proxy from its
    X-Forwarded-Proto)."""
    scheme = _header(scope, b"x-forwarded-proto") or scope.get("scheme") or "https"
    host = _header(scope, b"host") or "your-gateway-host"
    return f"{scheme}://{host}"


def base_url(scope: dict[str, Any]) -> str:
    """The base URL an OpenAI-style client should use: the root with /v1."""
    return f"{root_url(scope)}/v1"


def missing_v1(scope: dict[str, Any]) -> GatewayError:
    return GatewayError(
        404,
        f"Invalid URL ({scope['method']} {scope['path']}): the API is served under /v1. "
        f"Set your client's base URL to {base_url(scope)} (with /v1 at the end).",
        code="unknown_url",
    )


def twice_v1(scope: dict[str, Any]) -> GatewayError:
    """The Anthropic SDKs add /v1 to ANTHROPIC_BASE_URL; OpenAI's add nothing to theirs."""
    if scope["path"].startswith("/v1/v1/messages"):
        advice = (
            f"The Anthropic SDKs add /v1 themselves: set ANTHROPIC_BASE_URL to "
            f"{root_url(scope)} (without /v1)."
        )
    else:
        advice = f"Set your client's base URL to {base_url(scope)} (with /v1 once)."
    return GatewayError(
        404,
        f"Invalid URL ({scope['method']} {scope['path']}): the path has /v1 twice. {advice}",
        code="unknown_url",
    )
