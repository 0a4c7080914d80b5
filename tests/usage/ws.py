"""A WebSocket test client for an ASGI app in the same event loop. (channels.testing's
WebsocketCommunicator cannot be imported without daphne, which this project does not use.)"""

from __future__ import annotations

from urllib.parse import unquote, urlparse

from asgiref.testing import ApplicationCommunicator

TIMEOUT = 5.0


class WebsocketClient(ApplicationCommunicator):
    def __init__(self, application, path: str, headers: list[tuple[bytes, bytes]]) -> None:
        parsed = urlparse(path)
        scope = {
            "type": "websocket",
            "path": unquote(parsed.path),
            "query_string": parsed.query.encode(),
            "headers": headers,
            "subprotocols": [],
        }
        super().__init__(application, scope)

    async def connect(self) -> tuple[bool, int | None]:
        """(True, None) when accepted, (False, close code) when refused: before the
        handshake, or (as the live feed refuses, so that browsers see the code) at once
        after it."""
        await self.send_input({"type": "websocket.connect"})
        response = await self.receive_output(TIMEOUT)
        if response["type"] == "websocket.close":
            return False, response.get("code", 1000)
        assert response["type"] == "websocket.accept", response
        if await self.receive_nothing(timeout=0.1):
            return True, None
        response = await self.receive_output(TIMEOUT)
        assert response["type"] == "websocket.close", response
        return False, response.get("code", 1000)

    async def receive_close(self) -> int:
        """The close code of the next output, which must be a close."""
        response = await self.receive_output(TIMEOUT)
        assert response["type"] == "websocket.close", response
        return response.get("code", 1000)

    async def receive_text(self) -> str:
        response = await self.receive_output(TIMEOUT)
        assert response["type"] == "websocket.send", response
        return response["text"]

    async def disconnect(self) -> None:
        await self.send_input({"type": "websocket.disconnect", "code": 1000})
        await self.wait(TIMEOUT)
