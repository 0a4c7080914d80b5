"""The gateway under test: nexeon.asgi served by uvicorn on loopback, talking to fake
providers on loopback, called with the official openai SDK."""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Iterator, Mapping, MutableMapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import openai
import pytest
import uvicorn
from django.conf import settings

from accounts.models import Organization, User
from accounts.services import api_key_create, organization_create
from apigateway import auth
from apigateway.breaker import breakers
from apigateway.catalog import catalog_load_defaults, snapshot
from billing.services import credits_grant
from tests.fakes.anthropic import FakeAnthropic
from tests.fakes.gemini import FakeGemini
from tests.fakes.openai import FakeOpenAI
from tests.fakes.server import FakeProvider, serving
from tests.ledger_check import assert_balance_reconciles
from tests.support import free_port, manage_env, serving_nexeon, test_database_url

UPSTREAM_KEY = "sk-upstream-test"
GEMINI_KEY = "gemini-upstream-test"
ANTHROPIC_KEY = "sk-ant-upstream-test"


@pytest.fixture(scope="session")
def fake_servers() -> Iterator[dict[str, FakeProvider]]:
    """One loopback fake per provider family for the whole session, reset per test."""
    fakes = {
        "openai": FakeOpenAI(api_key=UPSTREAM_KEY),
        "gemini": FakeGemini(api_key=GEMINI_KEY),
        "anthropic": FakeAnthropic(api_key=ANTHROPIC_KEY),
    }
    with ExitStack() as stack:
        for fake in fakes.values():
            stack.enter_context(serving(fake))
        yield fakes


def _fresh(fakes: dict[str, FakeProvider], name: str):
    fakes[name].reset()
    return fakes[name]


@pytest.fixture
def fake_openai(fake_servers) -> FakeOpenAI:
    return _fresh(fake_servers, "openai")


@pytest.fixture
def fake_gemini(fake_servers) -> FakeGemini:
    return _fresh(fake_servers, "gemini")


@pytest.fixture
def fake_anthropic(fake_servers) -> FakeAnthropic:
    return _fresh(fake_servers, "anthropic")


@pytest.fixture(scope="session")
def gateway_url() -> Iterator[str]:
    from apigateway.server import GatewayHttpProtocol
    from nexeon.asgi import application

    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            application,
            host="127.0.0.1",
            port=port,
            log_level="warning",
            lifespan="off",
            loop="uvloop",
            http=GatewayHttpProtocol,  # as `make run` serves it
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the gateway did not start"
        time.sleep(0.01)
    yield f"http://127.0.0.1:{port}"
    from apigateway import http

    http.reset()
    server.should_exit = True
    thread.join(timeout=10)


@dataclass
class Tenant:
    organization: Organization
    key: str
    url: str

    def client(self, key: str | None = None, **options) -> openai.OpenAI:
        options.setdefault("max_retries", 0)
        return openai.OpenAI(base_url=f"{self.url}/v1", api_key=key or self.key, **options)

    def post(
        self,
        path: str,
        json: Any = None,
        *,
        key: str | None = None,
        url: str | None = None,
        **options,
    ) -> httpx.Response:
        """POST /v1{path} as a client would, without the SDK: the tenant's key (or `key`)
        as the Bearer token, to the gateway under test or the one at `url` (a gateway in
        its own process). `options` are httpx's; `headers` add to the authorization."""
        return httpx.post(json=json, **self._request(path, key, url, options))

    def get(
        self, path: str, *, key: str | None = None, url: str | None = None, **options
    ) -> httpx.Response:
        """GET /v1{path}, authorized and addressed as `post` is."""
        return httpx.get(**self._request(path, key, url, options))

    def _request(self, path: str, key: str | None, url: str | None, options: dict) -> dict:
        headers = {"authorization": f"Bearer {key or self.key}", **options.pop("headers", {})}
        return {"url": f"{url or self.url}/v1{path}", "headers": headers, "timeout": 30, **options}


class LiveProviders(MutableMapping):
    """settings.PROVIDERS for a test to change: every change replaces the setting with a new
    dict, as a configuration change would (apigateway.routing keeps a call's routes per
    PROVIDERS object), also through a provider's own entry: `providers["openai"]["timeout"]
    = 0.5`."""

    def __getitem__(self, name: str) -> _LiveConfig:
        settings.PROVIDERS[name]  # (KeyError for an unknown provider)
        return _LiveConfig(self, name)

    def __setitem__(self, name: str, config: Mapping) -> None:
        settings.PROVIDERS = {**settings.PROVIDERS, name: dict(config)}

    def __delitem__(self, name: str) -> None:
        settings.PROVIDERS = {
            key: value for key, value in settings.PROVIDERS.items() if key != name
        }

    def __iter__(self) -> Iterator[str]:
        return iter(settings.PROVIDERS)

    def __len__(self) -> int:
        return len(settings.PROVIDERS)


class _LiveConfig(MutableMapping):
    def __init__(self, providers: LiveProviders, name: str) -> None:
        self.providers, self.name = providers, name

    def _config(self) -> dict:
        return settings.PROVIDERS[self.name]

    def __getitem__(self, key: str):
        return self._config()[key]

    def __setitem__(self, key: str, value) -> None:
        self.providers[self.name] = {**self._config(), key: value}

    def __delitem__(self, key: str) -> None:
        self.providers[self.name] = {k: v for k, v in self._config().items() if k != key}

    def __iter__(self) -> Iterator[str]:
        return iter(self._config())

    def __len__(self) -> int:
        return len(self._config())


@pytest.fixture
def providers(fake_openai, fake_gemini, fake_anthropic):
    """Point the providers at the fakes (restored afterwards)."""
    saved = settings.PROVIDERS
    live = LiveProviders()
    for name in ("openai", "mistral", "groq"):
        live[name] = {"api_key": UPSTREAM_KEY, "base_url": fake_openai.base_url + "/v1"}
    live["gemini"] = {"api_key": GEMINI_KEY, "base_url": fake_gemini.base_url}
    live["anthropic"] = {"api_key": ANTHROPIC_KEY, "base_url": fake_anthropic.base_url}
    yield live
    settings.PROVIDERS = saved


@pytest.fixture(autouse=True)
def closed_breakers() -> Iterator[None]:
    """Every test starts with every deployment's circuit breaker closed (they are per
    process, and the gateway under test serves the whole session)."""
    breakers.reset()
    yield
    breakers.reset()


def new_tenant(url: str, *, name: str, email: str, dollars: int) -> Tenant:
    """A fresh catalog and key cache, and an organization with credit and one API key."""
    catalog_load_defaults()
    snapshot.loaded_at = float("-inf")
    auth._local.clear()
    owner = User.objects.create_user(email=email, password="x-correct-horse")
    organization = organization_create(name=name, owner=owner)
    credits_grant(organization=organization, amount_nanos=dollars * 10**9, reference="grant:test")
    created = api_key_create(organization=organization, name="test", created_by=owner)
    return Tenant(organization=organization, key=created.plaintext, url=url)


def assert_error(response: httpx.Response, status: int, type_: str, code=None) -> dict:
    """An error answer in OpenAI's format (its four fields, a message); returns the error."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["type"] == type_
    assert error["code"] == code
    assert error["message"]
    return error


def assert_all_settled() -> None:
    """Whatever the test did, each fast balance ends equal to its ledger's sum."""
    for org_id in Organization.objects.values_list("pk", flat=True):
        assert_settled(org_id)


@pytest.fixture
def tenant(transactional_db, money_redis, providers, gateway_url) -> Iterator[Tenant]:
    yield new_tenant(gateway_url, name="Acme", email="owner@example.com", dollars=10)
    assert_all_settled()


def assert_settled(organization_id: int) -> None:
    """Calls still finishing in the server thread (a client that left) settle promptly."""
    deadline = time.monotonic() + 5
    while True:
        try:
            assert_balance_reconciles(organization_id)
            return
        except AssertionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


@contextmanager
def gateway(
    fake_openai, *, workers: int = 2, **env: str | None
) -> Iterator[tuple[str, subprocess.Popen]]:
    """nexeon served by uvicorn in its own process(es) on the test database, OpenAI pointed
    at the fake; `env` adds or (None) removes variables, e.g. REDIS_URL=None."""
    environment = manage_env(
        DATABASE_URL=test_database_url(),
        OPENAI_BASE_URL=f"{fake_openai.base_url}/v1",
        OPENAI_API_KEY=UPSTREAM_KEY,
        **env,
    )
    with serving_nexeon(environment, workers=workers) as served:
        yield served
