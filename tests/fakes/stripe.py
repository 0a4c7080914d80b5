"""A fake Stripe for tests: real HTTP on loopback in Stripe's wire format, written without the
SDK (so the SDK is tested against it, not against itself).

Requests are form-encoded with bracket notation (``line_items[0][price_data][currency]``),
answers are JSON objects carrying ``"object"``, errors are Stripe's error body, and every
``/v1`` call needs ``Authorization: Bearer <the fake's sk_test key>``. It serves exactly what
the application calls:

* ``POST /v1/checkout/sessions``, ``GET /v1/checkout/sessions/{id}``,
  ``GET /v1/checkout/sessions?payment_intent=…``, ``GET /v1/payment_intents/{id}``
  (``expand[]=latest_charge``), ``GET /v1/charges/{id}``;
* a hosted "checkout page" at the session's ``url`` whose Pay button pays the session,
  delivers the signed ``checkout.session.completed`` to ``webhook_url`` and redirects to the
  session's ``success_url``, as Stripe does (for browser tests).

Tests steer it with plain methods (``pay``, ``refund``, ``dispute``, ``close_dispute``,
``expire``) and build signed events
with ``event`` and ``sign`` (Stripe's scheme: ``t=<unix>,v1=<hex HMAC-SHA256 of "t.body">``).
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import html
import re
import secrets
import threading
import time
from typing import Any
from urllib.parse import parse_qsl

import httpx
import orjson

from tests.fakes.server import FakeProvider, RecordedRequest, Send

API_KEY = "sk_test_fake_nexeon_51Hx"
WEBHOOK_SECRET = "whsec_fake_nexeon_test_secret"
API_VERSION = "2026-10-28.endive"
SESSION_PARAMS = {
    "mode",
    "line_items",
    "client_reference_id",
    "customer_email",
    "metadata",
    "payment_intent_data",
    "success_url",
    "cancel_url",
    "expand",
}


class StripeError(Exception):
    """Answered as Stripe's error body: {"error": {"type", "message", "code", "param"}}."""

    def __init__(
        self,
        message: str,
        *,
        status: int = 400,
        code: str | None = None,
        param: str | None = None,
        kind: str = "invalid_request_error",
    ) -> None:
        super().__init__(message)
        self.status, self.code, self.param, self.kind = status, code, param, kind

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"message": str(self), "type": self.kind}
        if self.code:
            error["code"] = self.code
            error["doc_url"] = f"https://stripe.com/docs/error-codes/{self.code.replace('_', '-')}"
        if self.param:
            error["param"] = self.param
        error["request_log_url"] = "https://dashboard.stripe.com/test/logs/req_fake"
        return {"error": error}


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(12)}"


# --- Stripe's form encoding ---------------------------------------------------------------

_KEY = re.compile(r"^([^\[\]]+)((?:\[[^\[\]]*\])*)$")


def decode_form(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    """``a[b][0][c]=v`` pairs into nested dicts and lists (``[]`` or digits index lists)."""
    root: dict[str, Any] = {}
    for key, value in pairs:
        match = _KEY.match(key)
        if not match:
            raise StripeError(f"Invalid parameter name: {key}", code="parameter_unknown")
        path = [match.group(1), *re.findall(r"\[([^\[\]]*)\]", match.group(2))]
        node = root
        for index, part in enumerate(path):
            last = index == len(path) - 1
            if part == "":
                part = str(len(node))
            if last:
                node[part] = value
            else:
                node = node.setdefault(part, {})
    return _lists(root)


def _lists(node: Any) -> Any:
    if not isinstance(node, dict):
        return node
    converted = {key: _lists(value) for key, value in node.items()}
    if converted and all(key.isdigit() for key in converted):
        return [converted[key] for key in sorted(converted, key=int)]
    return converted


def _integer(value: Any, param: str) -> int:
    if not isinstance(value, str) or not re.fullmatch(r"-?\d+", value):
        raise StripeError(
            f"Invalid integer: {value}", code="parameter_invalid_integer", param=param
        )
    return int(value)


def _required(params: dict[str, Any], name: str, prefix: str = "") -> Any:
    if name not in params or params[name] in ("", None):
        raise StripeError(
            f"Missing required param: {prefix}{name}.",
            code="parameter_missing",
            param=prefix + name,
        )
    return params[name]


# --- webhooks -----------------------------------------------------------------------------


def sign(payload: str, secret: str = WEBHOOK_SECRET, timestamp: int | None = None) -> str:
    """The Stripe-Signature header Stripe sends for this exact body."""
    moment = int(time.time()) if timestamp is None else timestamp
    digest = hmac.new(secret.encode(), f"{moment}.{payload}".encode(), hashlib.sha256)
    return f"t={moment},v1={digest.hexdigest()}"


def event(kind: str, obj: dict[str, Any], *, event_id: str | None = None) -> dict[str, Any]:
    """An event as Stripe delivers it (a snapshot of the object at the time)."""
    return {
        "id": event_id or new_id("evt"),
        "object": "event",
        "api_version": API_VERSION,
        "created": int(time.time()),
        "data": {"object": copy.deepcopy(obj)},
        "livemode": False,
        "pending_webhooks": 1,
        "request": {"id": None, "idempotency_key": None},
        "type": kind,
    }


def signed(evt: dict[str, Any], **sign_options: Any) -> tuple[bytes, str]:
    """(body, Stripe-Signature) ready to POST to a webhook endpoint."""
    body = orjson.dumps(evt).decode()
    return body.encode(), sign(body, **sign_options)


# --- the fake -----------------------------------------------------------------------------


class FakeStripe(FakeProvider):
    def __init__(self, api_key: str = API_KEY, webhook_secret: str = WEBHOOK_SECRET) -> None:
        super().__init__()
        self.api_key = api_key
        self.webhook_secret = webhook_secret
        self.webhook_url = ""  # where the hosted page's Pay button delivers its event
        self.sessions: dict[str, dict[str, Any]] = {}
        self.intents: dict[str, dict[str, Any]] = {}
        self.charges: dict[str, dict[str, Any]] = {}
        self.refunds: dict[str, dict[str, Any]] = {}
        self.disputes: dict[str, dict[str, Any]] = {}
        self.delivered: list[tuple[dict[str, Any], int]] = []  # (event, app's status)
        self._idempotent: dict[str, tuple[int, dict[str, Any]]] = {}
        self._lock = threading.Lock()  # the server thread and the test share the objects

    # --- HTTP ---
    async def respond(self, send: Send, status: int, body: bytes, headers=None) -> None:
        """JSON unless the caller names another content type (the hosted page is HTML)."""
        merged = {"content-type": "application/json", **(headers or {})}
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(k.encode(), v.encode()) for k, v in merged.items()],
            }
        )
        await send({"type": "http.response.body", "body": body})

    async def handle(self, request: RecordedRequest, send: Send) -> None:
        if request.path.startswith("/v1/"):
            await self.api(request, send)
        elif match := re.fullmatch(r"/checkout/(cs_\w+)", request.path):
            await self.hosted_page(match.group(1), send)
        elif request.method == "POST" and (
            match := re.fullmatch(r"/checkout/(cs_\w+)/pay", request.path)
        ):
            await self.hosted_pay(match.group(1), send)
        else:
            await self.respond(send, 404, b"not found", {"content-type": "text/plain"})

    async def api(self, request: RecordedRequest, send: Send) -> None:
        try:
            self._authenticate(request.headers.get("authorization", ""))
            key = request.headers.get("idempotency-key")
            remembered = key and self._idempotent.get(f"{request.path}:{key}")
            if remembered:
                status, payload = remembered
            else:
                status, payload = 200, self.route(request)
                if key and request.method == "POST":
                    self._idempotent[f"{request.path}:{key}"] = (status, payload)
        except StripeError as error:
            status, payload = error.status, error.body()
        await self.respond(
            send,
            status,
            orjson.dumps(payload),
            {"request-id": new_id("req"), "stripe-version": API_VERSION},
        )

    def _authenticate(self, header: str) -> None:
        if not header:
            raise StripeError(
                "You did not provide an API key. You need to provide your API key in the "
                "Authorization header, using Bearer auth "
                "(e.g. 'Authorization: Bearer YOUR_SECRET_KEY').",
                status=401,
            )
        token = header.removeprefix("Bearer ")
        if token != self.api_key or not token.startswith("sk_test_"):
            raise StripeError(
                f"Invalid API Key provided: {token[:8]}{'*' * 8}{token[-4:]}",
                status=401,
            )

    def route(self, request: RecordedRequest) -> dict[str, Any]:
        query = decode_form(parse_qsl(request.query, keep_blank_values=True))
        path = request.path
        with self._lock:
            if path == "/v1/checkout/sessions" and request.method == "POST":
                form = decode_form(parse_qsl(request.body.decode(), keep_blank_values=True))
                return self.session_create(form)
            if path == "/v1/checkout/sessions" and request.method == "GET":
                return self.session_list(query)
            match = re.fullmatch(r"/v1/checkout/sessions/([^/]+)", path)
            if match and request.method == "GET":
                return self._public(
                    self._get(self.sessions, match.group(1), "checkout.session", "session")
                )
            match = re.fullmatch(r"/v1/payment_intents/([^/]+)", path)
            if match and request.method == "GET":
                return self.intent_retrieve(match.group(1), query)
            match = re.fullmatch(r"/v1/charges/([^/]+)", path)
            if match and request.method == "GET":
                return copy.deepcopy(self._get(self.charges, match.group(1), "charge", "charge"))
        raise StripeError(
            f"Unrecognized request URL ({request.method}: {path}). "
            "Please see https://stripe.com/docs or we can help at https://support.stripe.com/.",
            status=404,
        )

    @staticmethod
    def _get(table: dict[str, Any], object_id: str, kind: str, param: str) -> dict[str, Any]:
        if object_id not in table:
            raise StripeError(
                f"No such {kind}: '{object_id}'", status=404, code="resource_missing", param=param
            )
        return table[object_id]

    # --- the API ---
    def session_create(self, params: dict[str, Any]) -> dict[str, Any]:
        for name in params:
            if name not in SESSION_PARAMS:
                raise StripeError(
                    f"Received unknown parameter: {name}", code="parameter_unknown", param=name
                )
        mode = _required(params, "mode")
        if mode not in ("payment", "setup", "subscription"):
            raise StripeError(
                "Invalid mode: must be one of payment, setup, or subscription", param="mode"
            )
        success_url = _required(params, "success_url")
        items = _required(params, "line_items")
        if not isinstance(items, list):
            raise StripeError("Invalid array", code="parameter_invalid_array", param="line_items")
        total, currency = 0, None
        for index, item in enumerate(items):
            prefix = f"line_items[{index}]"
            price_data = _required(item, "price_data", f"{prefix}[")
            prefix += "[price_data]"
            item_currency = _required(price_data, "currency", f"{prefix}[")
            if "product_data" not in price_data and "product" not in price_data:
                raise StripeError(
                    f"Missing required param: {prefix}[product_data].",
                    code="parameter_missing",
                    param=f"{prefix}[product_data]",
                )
            if "product_data" in price_data:
                _required(price_data["product_data"], "name", f"{prefix}[product_data][")
            unit = _integer(
                _required(price_data, "unit_amount", f"{prefix}["), f"{prefix}[unit_amount]"
            )
            quantity = _integer(item.get("quantity", "1"), f"line_items[{index}][quantity]")
            if unit < 0 or quantity < 1:
                raise StripeError("Invalid amount", param=f"{prefix}[unit_amount]")
            if currency and item_currency != currency:
                raise StripeError(
                    "All line items must share a currency.", param=f"{prefix}[currency]"
                )
            currency = item_currency.lower()
            total += unit * quantity
        if currency == "usd" and total < 50:
            raise StripeError(
                "The Checkout Session's total amount due must add up to at least $0.50 usd",
                param="line_items",
            )
        session_id = new_id("cs_test")
        now = int(time.time())
        session = {
            "id": session_id,
            "object": "checkout.session",
            "amount_subtotal": total,
            "amount_total": total,
            "cancel_url": params.get("cancel_url"),
            "client_reference_id": params.get("client_reference_id"),
            "created": now,
            "currency": currency,
            "customer": None,
            "customer_details": None,
            "customer_email": params.get("customer_email"),
            "expires_at": now + 24 * 3600,
            "livemode": False,
            "metadata": params.get("metadata") or {},
            "mode": mode,
            "payment_intent": None,  # created when the customer pays
            "payment_method_types": ["card"],
            "payment_status": "unpaid",
            "status": "open",
            "success_url": success_url,
            "url": f"{self.base_url}/checkout/{session_id}",
            "_line_items": items,
            "_intent_metadata": (params.get("payment_intent_data") or {}).get("metadata") or {},
        }
        self.sessions[session_id] = session
        return self._public(session)

    @staticmethod
    def _public(obj: dict[str, Any]) -> dict[str, Any]:
        return {key: copy.deepcopy(value) for key, value in obj.items() if not key.startswith("_")}

    def session_list(self, query: dict[str, Any]) -> dict[str, Any]:
        for name in query:
            if name not in ("payment_intent", "limit", "customer", "status"):
                raise StripeError(
                    f"Received unknown parameter: {name}", code="parameter_unknown", param=name
                )
        limit = _integer(query.get("limit", "10"), "limit")
        found = [
            self._public(session)
            for session in reversed(self.sessions.values())
            if all(session.get(name) == value for name, value in query.items() if name != "limit")
        ]
        return {
            "object": "list",
            "data": found[:limit],
            "has_more": len(found) > limit,
            "url": "/v1/checkout/sessions",
        }

    def intent_retrieve(self, intent_id: str, query: dict[str, Any]) -> dict[str, Any]:
        intent = copy.deepcopy(self._get(self.intents, intent_id, "payment_intent", "intent"))
        expand = query.get("expand") or []
        if "latest_charge" in expand and intent["latest_charge"]:
            intent["latest_charge"] = copy.deepcopy(self.charges[intent["latest_charge"]])
        return intent

    # --- test helpers (what a customer or the Stripe dashboard would do) ---
    def pay(self, session_id: str, *, async_payment: bool = False) -> dict[str, Any]:
        """The customer pays: a PaymentIntent (and, unless the method is asynchronous, a
        succeeded Charge with its receipt); the session becomes complete. Returns the session
        as a checkout.session.completed event would carry it."""
        with self._lock:
            session = self.sessions[session_id]
            assert session["status"] == "open", f"session is {session['status']}"
            intent_id = new_id("pi")
            self.intents[intent_id] = {
                "id": intent_id,
                "object": "payment_intent",
                "amount": session["amount_total"],
                "amount_received": 0,
                "currency": session["currency"],
                "latest_charge": None,
                "livemode": False,
                "metadata": session["_intent_metadata"],
                "status": "processing",
            }
            session.update(
                status="complete",
                payment_intent=intent_id,
                customer_details={"email": session["customer_email"]},
            )
            if not async_payment:
                self._charge(session)
            return self._public(session)

    def settle_async(self, session_id: str) -> dict[str, Any]:
        """A delayed payment method (a bank debit) succeeds days later."""
        with self._lock:
            session = self.sessions[session_id]
            assert session["payment_status"] == "unpaid" and session["payment_intent"]
            self._charge(session)
            return self._public(session)

    def _charge(self, session: dict[str, Any]) -> None:
        intent = self.intents[session["payment_intent"]]
        charge_id = new_id("ch")
        self.charges[charge_id] = {
            "id": charge_id,
            "object": "charge",
            "amount": intent["amount"],
            "amount_captured": intent["amount"],
            "amount_refunded": 0,
            "captured": True,
            "currency": intent["currency"],
            "disputed": False,
            "livemode": False,
            "metadata": intent["metadata"],
            "paid": True,
            "payment_intent": intent["id"],
            "receipt_url": f"https://pay.stripe.com/receipts/payment/{secrets.token_urlsafe(24)}",
            "refunded": False,
            "status": "succeeded",
        }
        intent.update(status="succeeded", amount_received=intent["amount"], latest_charge=charge_id)
        session["payment_status"] = "paid"

    def refund(self, session_id: str, amount: int | None = None) -> dict[str, Any]:
        """Refund part (``amount`` cents) or the rest of a paid session's charge. Returns the
        charge as charge.refunded carries it: ``amount_refunded`` is cumulative."""
        with self._lock:
            intent = self.intents[self.sessions[session_id]["payment_intent"]]
            charge = self.charges[intent["latest_charge"]]
            left = charge["amount"] - charge["amount_refunded"]
            amount = left if amount is None else amount
            if not 0 < amount <= left:
                raise StripeError(f"Refund amount ({amount}) is greater than unrefunded amount")
            charge["amount_refunded"] += amount
            charge["refunded"] = charge["amount_refunded"] == charge["amount"]
            refund_id = new_id("re")
            self.refunds[refund_id] = {
                "id": refund_id,
                "object": "refund",
                "amount": amount,
                "charge": charge["id"],
                "created": int(time.time()),
                "currency": charge["currency"],
                "metadata": {},
                "payment_intent": charge["payment_intent"],
                "reason": None,
                "status": "succeeded",
            }
            return copy.deepcopy(charge)

    def last_refund(self) -> dict[str, Any]:
        """The Refund object the last ``refund`` created, as refund.created carries it."""
        with self._lock:
            return copy.deepcopy(list(self.refunds.values())[-1])

    def dispute(
        self, session_id: str, amount: int | None = None, reason: str = "fraudulent"
    ) -> dict[str, Any]:
        """The card holder disputes a paid session's charge (all of it unless ``amount``).
        Returns the Dispute as charge.dispute.created carries it."""
        with self._lock:
            intent = self.intents[self.sessions[session_id]["payment_intent"]]
            charge = self.charges[intent["latest_charge"]]
            dispute_id = new_id("du")
            self.disputes[dispute_id] = {
                "id": dispute_id,
                "object": "dispute",
                "amount": charge["amount"] if amount is None else amount,
                "balance_transactions": [],
                "charge": charge["id"],
                "created": int(time.time()),
                "currency": charge["currency"],
                "is_charge_refundable": False,
                "livemode": False,
                "metadata": {},
                "payment_intent": charge["payment_intent"],
                "reason": reason,
                "status": "needs_response",
            }
            charge["disputed"] = True
            return copy.deepcopy(self.disputes[dispute_id])

    def close_dispute(self, dispute_id: str, status: str) -> dict[str, Any]:
        """The issuer decides: ``won``, ``lost`` (or ``warning_closed`` for an inquiry).
        Returns the Dispute as charge.dispute.closed carries it."""
        assert status in ("won", "lost", "warning_closed")
        with self._lock:
            dispute = self.disputes[dispute_id]
            dispute["status"] = status
            return copy.deepcopy(dispute)

    def expire(self, session_id: str) -> dict[str, Any]:
        with self._lock:
            session = self.sessions[session_id]
            assert session["status"] == "open"
            session["status"] = "expired"
            return self._public(session)

    def session(self, session_id: str) -> dict[str, Any]:
        with self._lock:
            return self._public(self.sessions[session_id])

    # --- the hosted checkout page (browser tests) ---
    async def hosted_page(self, session_id: str, send: Send) -> None:
        session = self.sessions.get(session_id)
        if session is None or session["status"] != "open":
            await self.respond(
                send,
                404,
                b"This checkout session is no longer available.",
                {"content-type": "text/plain"},
            )
            return
        amount = f"${session['amount_total'] // 100}.{session['amount_total'] % 100:02d}"
        name = html.escape(session["_line_items"][0]["price_data"]["product_data"]["name"])
        page = f"""<!doctype html><html><head><title>Fake Stripe Checkout</title></head><body>
<h1>Pay {amount}</h1><p data-testid="product">{name}</p>
<p>{html.escape(session["customer_email"] or "")}</p>
<form method="post" action="/checkout/{session_id}/pay">
<button type="submit">Pay {amount}</button></form>
<p><a href="{html.escape(session["cancel_url"] or "")}">Cancel</a></p></body></html>"""
        await self.respond(send, 200, page.encode(), {"content-type": "text/html; charset=utf-8"})

    def send_event(self, kind: str, obj: dict[str, Any]) -> int:
        """Deliver a signed event to ``webhook_url`` now, as Stripe does (browser tests);
        returns the app's status."""
        evt = event(kind, obj)
        body, signature = signed(evt, secret=self.webhook_secret)
        answer = httpx.post(
            self.webhook_url,
            content=body,
            headers={"content-type": "application/json", "stripe-signature": signature},
            timeout=30,
        )
        self.delivered.append((evt, answer.status_code))
        return answer.status_code

    async def hosted_pay(self, session_id: str, send: Send) -> None:
        paid = self.pay(session_id)
        evt = event("checkout.session.completed", paid)
        body, signature = signed(evt, secret=self.webhook_secret)
        async with httpx.AsyncClient(timeout=30) as client:
            answer = await client.post(
                self.webhook_url,
                content=body,
                headers={"content-type": "application/json", "stripe-signature": signature},
            )
        self.delivered.append((evt, answer.status_code))
        target = paid["success_url"].replace("{CHECKOUT_SESSION_ID}", session_id)
        await self.respond(send, 303, b"", {"location": target, "content-type": "text/plain"})
