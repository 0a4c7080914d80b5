"""The Responses API as a surface of the relay: one instance per call.

The relay sizes, reserves and settles by the translated chat body (`chat_body`); per
deployment, the call is passed through to a provider with the Responses API (the caller's
own request) or sent as chat and its answer translated back. Errors are OpenAI's; one
after the stream's headers is a `response.failed` event (an `error` event before the
response was announced).
"""

from __future__ import annotations

from collections.abc import Callable

from apigateway.errors import GatewayError, bad_request
from apigateway.providers.base import JSON, StreamTranslator, UpstreamRequest, Usage
from apigateway.responses import passthrough
from apigateway.responses.answer import ChatEvents, from_chat
from apigateway.responses.request import NOT_STORED, translate
from apigateway.routing import Route
from apigateway.surfaces import Surface, encode_typed


class ResponsesSurface(Surface):
    name = "responses"
    stream_end = b""  # (the Responses API sends no [DONE])

    def __init__(self, body: JSON) -> None:
        """Checks the caller's request (a 400 naming the field) and translates it."""
        self.request = body
        translation = translate(body)
        self.chat_body = translation.chat
        self.refused = translation.refused
        self.stream: ChatEvents | passthrough.ResponsesStream | None = None

    def build(self, route: Route, body: JSON) -> UpstreamRequest:
        cap = body["max_completion_tokens"]
        if passthrough.serves(route.adapter, route.deployment):
            return passthrough.build(route.adapter, self.request, cap, route.deployment)
        for name, what in self.refused.items():
            raise bad_request(
                f"{what} is only available from a provider with the Responses API, and "
                f"'{self.chat_body.get('model')}' is served by {route.provider} here.",
                param=name,
            )
        return route.adapter.build_chat_request(body, route.deployment)

    def parse(self, route: Route, data: bytes, model: str) -> tuple[JSON, Usage]:
        if passthrough.serves(route.adapter, route.deployment):
            return passthrough.parse(data, model)
        completion, usage = route.adapter.parse_chat_response(
            data, model=model, deployment=route.deployment
        )
        return from_chat(completion, usage, self.request, model), usage

    def translator(self, route: Route, model: str, body: JSON) -> StreamTranslator:
        if passthrough.serves(route.adapter, route.deployment):
            stream = passthrough.ResponsesStream(model=model, secret=route.deployment.api_key)
            self.stream = stream
            return stream
        chat = route.adapter.stream_translator(
            model=model, include_usage=False, deployment=route.deployment
        )
        self.stream = ChatEvents(chat, self.request, model)
        return self.stream  # type: ignore[return-value]  # (it reads as a StreamTranslator)

    def closing(self, translator: StreamTranslator, cost: Callable[[Usage], str]) -> list[JSON]:
        """The stream's last event, with the call's cost in its response's usage."""
        events = translator.close()
        for event in events:
            response = event.get("response")
            usage = response.get("usage") if isinstance(response, dict) else None
            if isinstance(usage, dict) and translator.usage is not None:
                usage["cost"] = float(cost(translator.usage))
        return events

    def encode(self, events: list[JSON]) -> bytes:
        return encode_typed(events)

    def stream_error(self, error: GatewayError) -> bytes:
        code = "rate_limit_exceeded" if error.status == 429 else "server_error"
        stream = self.stream
        if isinstance(stream, ChatEvents) and stream.started:
            return encode_typed(stream.fail(code, error.message))
        if isinstance(stream, passthrough.ResponsesStream) and stream.response is not None:
            response = {
                **stream.response,
                "status": "failed",
                "error": {"code": code, "message": error.message},
            }
            failed = {"type": "response.failed", "response": response}
            return encode_typed([{**failed, "sequence_number": stream.sequence}])
        sequence = stream.sequence if stream is not None else 0
        event: JSON = {
            "type": "error",
            "code": error.code or code,
            "message": error.message,
            "param": error.param,
            "sequence_number": sequence,
        }
        return encode_typed([event])


def not_stored(path: str) -> GatewayError:
    """GET/DELETE /v1/responses/{id} (and its input_items): nothing is stored to find."""
    response_id = path.removeprefix("/v1/responses/").split("/", 1)[0]
    return GatewayError(
        404,
        f"Response with id {response_id!r} not found: {NOT_STORED}",
        code="response_not_found",
    )
