"""One error type for the gateway, rendered in OpenAI's error body format.

{"error": {"message": ..., "type": ..., "param": ..., "code": ...}}. Messages never carry a
provider key, a stack trace or an internal host name.
"""

from __future__ import annotations

import orjson

INVALID_REQUEST = "invalid_request_error"
INSUFFICIENT_QUOTA = "insufficient_quota"
RATE_LIMITED = "rate_limit_exceeded"
API_ERROR = "api_error"


class GatewayError(Exception):
    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = INVALID_REQUEST,
        param: str | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.param = param
        self.code = code
        self.headers = headers or {}

    def body(self) -> bytes:
        return orjson.dumps(
            {
                "error": {
                    "message": self.message,
                    "type": self.type,
                    "param": self.param,
                    "code": self.code,
                }
            }
        )

    def __repr__(self) -> str:
        return f"GatewayError({self.status}, {self.message!r}, code={self.code!r})"


def bad_request(message: str, *, param: str | None = None, code: str | None = None) -> GatewayError:
    return GatewayError(400, message, param=param, code=code)


def upstream_error(
    status: int, message: str, *, headers: dict[str, str] | None = None
) -> GatewayError:
    """502/503/504: the provider failed, not the caller."""
    return GatewayError(status, message, type=API_ERROR, headers=headers)
