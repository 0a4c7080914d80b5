"""Several deployments of a model, balanced by weight with affinity (weighted rendezvous
hashing), and the caller's OpenRouter-style `models` fallback list and `provider`
preferences: the selection itself (pure), then through the real gateway with the openai
SDK against fake providers."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import replace

import openai
import pytest

from accounts.models import User
from accounts.services import api_key_create, organization_create
from apigateway import balance, routing
from apigateway.catalog import CatalogEntry, snapshot
from apigateway.models import CatalogModel, deployments_problem
from billing import pricing
from billing.services import credits_grant
from tests.apigateway.conftest import UPSTREAM_KEY, Tenant
from tests.apigateway.test_usage_records import record_of
from tests.support import manage_env, run_manage

ENTRY = CatalogEntry(
    id="m", provider="a", upstream_model="up", owned_by="o", created=1, mode="chat",
    context_window=None, max_output_tokens=1000, prices={},
)  # fmt: skip
PROVIDERS = {name: {"api_key": "k", "base_url": f"https://{name}/v1"} for name in "abcz"}
BOOM = {"error": {"message": "boom", "type": "server_error"}}


def routes_of(settings, **changes) -> tuple[routing.Route, ...]:
    settings.PROVIDERS = PROVIDERS
    return routing.deployments_for(replace(ENTRY, **changes))


def conversation(number: int, *later: str) -> dict:
    messages = [
        {"role": "system", "content": "You are a helpful assistant."},
        {"role": "user", "content": f"conversation {number}"},
    ]
    return {"model": "m", "messages": messages + [{"role": "user", "content": t} for t in later]}


# --- the selection (pure) ---


def test_deployments_are_weighted_and_fallbacks_come_after_them(settings):
    routes = routes_of(
        settings,
        deployments=(("b", "up", 2.0), ("a", "up", 3.0), ("nowhere", "up", 5.0)),
        fallbacks=(("z", "up"), ("b", "up")),
    )
    assert [(r.key, r.weight) for r in routes] == [
        ("a/up", 3.0),  # the primary, with the weight the deployments give it
        ("b/up", 2.0),
        ("z/up", None),  # an ordered fallback: after every balanced one
    ]
    assert all(route.entry.id == "m" for route in routes)


def test_calls_spread_by_weight_over_many_conversations(settings):
    routes = routes_of(settings, deployments=(("b", "up", 2.0), ("c", "up", 1.0)))
    firsts = Counter(balance.ordered(routes, conversation(n))[0].key for n in range(20_000))
    # weights 1:2:1 → 5000 / 10000 / 5000; a binomial's spread here is about 70
    assert firsts["a/up"] == pytest.approx(5000, abs=300)
    assert firsts["b/up"] == pytest.approx(10_000, abs=300)
    assert firsts["c/up"] == pytest.approx(5000, abs=300)


def test_a_conversation_and_a_user_stay_on_one_deployment(settings):
    routes = routes_of(settings, deployments=(("b", "up", 1.0), ("c", "up", 1.0)))
    for number in range(50):
        first = balance.ordered(routes, conversation(number))
        later = balance.ordered(routes, conversation(number, "and then?", "more"))
        assert first == later  # the whole order: the same fallbacks too

    def first_of(**extra) -> set[str]:
        return {balance.ordered(routes, {**conversation(n), **extra})[0].key for n in range(50)}

    assert len(first_of()) == 3  # different conversations spread
    assert len(first_of(user="u-7")) == 1
    assert len(first_of(prompt_cache_key="k")) == 1


def test_a_removed_deployment_moves_only_its_own_share(settings):
    three = routes_of(settings, deployments=(("b", "up", 1.0), ("c", "up", 1.0)))
    two = routes_of(settings, deployments=(("b", "up", 1.0),))
    for number in range(500):
        before = [r.key for r in balance.ordered(three, conversation(number))]
        after = [r.key for r in balance.ordered(two, conversation(number))]
        assert after == [key for key in before if key != "c/up"]


def test_one_deployment_is_not_hashed(settings):
    routes = routes_of(settings)
    assert len(routes) == 1
    assert balance.ordered(routes, {"messages": "not even messages"}) is routes


def test_deployments_in_the_catalog_are_checked():
    assert deployments_problem([{"provider": "a", "upstream_model": "x", "weight": 2}]) is None
    assert deployments_problem([{"provider": "a"}]) is None
    for bad in (
        {"provider": "a"},
        [{"provider": ""}],
        [{"provider": "a", "weight": -1}],
        [{"provider": "a", "weight": "2"}],
        [{"provider": "a", "weight": True}],
        [{"provider": "a", "region": "eu"}],
    ):
        assert deployments_problem(bad), bad


# --- through the gateway ---


def serve_balanced(model: str, deployments: list[dict], fallbacks: Sequence[dict] = ()) -> None:
    changes = {"deployments": deployments, "fallbacks": list(fallbacks)}
    assert CatalogModel.objects.filter(public_id=model).update(**changes) == 1
    snapshot.loaded_at = float("-inf")


@pytest.fixture
def three_keys(providers, fake_openai) -> list[str]:
    """Three OpenAI deployments (keys or regions) on the fake, told apart by a header; gpt-4o
    is balanced over them 1:2:1 (its primary is `openai`, also on the fake)."""
    names = ["openai", "openai-b", "openai-c"]
    for name in names:
        providers[name] = {
            "api_key": UPSTREAM_KEY,
            "base_url": fake_openai.base_url + "/v1",
            "adapter": "openai",
            "headers": {"X-Deployment": name},
        }
    serve_balanced("gpt-4o", [{"provider": "openai-b", "weight": 2}, {"provider": "openai-c"}])
    return names


def served_by(fake) -> list[str]:
    return [request.headers["x-deployment"] for request in fake.requests]


def ask(tenant, number: int, *later: str, **extra):
    body = conversation(number, *later)
    return tenant.client().chat.completions.create(
        model="gpt-4o", messages=body["messages"], **extra
    )


def test_the_gateway_balances_conversations_and_keeps_each_on_its_deployment(
    tenant, fake_openai, three_keys
):
    for number in range(40):
        ask(tenant, number)
    spread = Counter(served_by(fake_openai))
    assert set(spread) == set(three_keys) and spread["openai-b"] > spread["openai-c"]
    first = served_by(fake_openai)
    fake_openai.reset()
    for number in range(40):  # the same conversations, one turn later
        ask(tenant, number, "go on")
    assert served_by(fake_openai) == first
    assert all(
        "provider" not in r.json() and "models" not in r.json() for r in fake_openai.requests
    )


def test_the_gateway_keeps_each_user_on_one_deployment_whatever_they_ask(
    tenant, fake_openai, three_keys
):
    """Different prompts from one `user` go to one deployment; the users spread."""
    first_choice: dict[str, str] = {}
    for user in (f"user-{n}" for n in range(12)):
        for number in range(4):  # four unrelated conversations each
            ask(tenant, 100 * number + len(first_choice), user=user)
        served = served_by(fake_openai)
        assert len(set(served)) == 1, (user, served)
        first_choice[user] = served[0]
        fake_openai.reset()
    assert len(set(first_choice.values())) > 1


def test_a_resting_deployment_is_passed_over_and_used_again_when_it_recovers(
    tenant, fake_openai, three_keys, settings
):
    settings.GATEWAY_BREAKER_FAILURES, settings.GATEWAY_BREAKER_REST_SECONDS = 2, 0.5
    ask(tenant, 7)
    (chosen,) = served_by(fake_openai)
    for _ in range(2):  # the chosen deployment fails twice: its circuit opens
        fake_openai.reset()
        fake_openai.fail_next(500, BOOM)
        ask(tenant, 7)
        failed, second = served_by(fake_openai)
        assert failed == chosen and second != chosen  # the next in this call's order
    fake_openai.reset()
    ask(tenant, 7)
    assert served_by(fake_openai) == [second]  # resting: not even tried
    time.sleep(0.6)
    fake_openai.reset()
    ask(tenant, 7)
    ask(tenant, 7)
    assert served_by(fake_openai) == [chosen, chosen]  # its trial call closed the circuit


def test_provider_preferences_order_only_and_ignore(tenant, fake_openai, three_keys):
    ask(tenant, 3)
    (chosen,) = served_by(fake_openai)
    others = [name for name in three_keys if name != chosen]
    cases = [
        ({"order": [others[1], others[0]]}, others[1]),
        ({"only": [others[0]]}, others[0]),
        ({"allow": [others[1]]}, others[1]),
        ({"ignore": [chosen, others[0]]}, others[1]),
        ({"require_parameters": True, "data_collection": "allow", "sort": "price"}, chosen),
    ]
    for provider, expected in cases:
        fake_openai.reset()
        ask(tenant, 3, extra_body={"provider": provider})
        assert served_by(fake_openai) == [expected], provider
        assert "provider" not in fake_openai.requests[0].json()
    # Without fallbacks, only the first of `order` is tried.
    fake_openai.reset()
    fake_openai.fail_next(500, BOOM, times=3)
    with pytest.raises(openai.APIStatusError) as failed:
        ask(tenant, 3, extra_body={"provider": {"order": [others[0]], "allow_fallbacks": False}})
    assert failed.value.status_code == 502
    assert served_by(fake_openai) == [others[0]] * 3  # (retried, never another deployment)
    with pytest.raises(openai.NotFoundError) as refused:
        ask(tenant, 3, extra_body={"provider": {"only": ["nobody"]}})
    assert refused.value.body["param"] == "provider"


@pytest.mark.parametrize(
    ("provider", "field"),
    [
        ({"quantizations": ["fp8"]}, "provider.quantizations"),
        ({"sort": "throughput"}, "provider.sort"),
        ({"data_collection": "deny"}, "provider.data_collection"),
        ({"zdr": True}, "provider.zdr"),
        ({"max_price": {"image": 1}}, "provider.max_price.image"),
        ({"only": "openai"}, "provider.only"),
        ({"allow_fallbacks": "no"}, "provider.allow_fallbacks"),
        ({"preferred_region": "eu"}, "provider.preferred_region"),
        ("openai", "provider"),
    ],
)
def test_provider_preferences_the_gateway_cannot_honour_are_a_400(
    tenant, fake_openai, provider, field
):
    with pytest.raises(openai.BadRequestError) as refused:
        ask(tenant, 1, extra_body={"provider": provider})
    assert refused.value.body["param"] == field and field in refused.value.body["message"]
    assert fake_openai.requests == []


@pytest.mark.parametrize(
    ("models", "status", "param"),
    [
        ("claude-3-5-haiku", 400, "models"),
        ([1], 400, "models"),
        (["gpt-4o-mini"] * 11, 400, "models"),
        (["no-such-model"], 404, "models"),
        (["text-embedding-3-small"], 404, "models"),
    ],
)
def test_a_bad_models_list_is_refused(tenant, fake_openai, models, status, param):
    with pytest.raises(openai.APIStatusError) as refused:
        ask(tenant, 1, extra_body={"models": models})
    assert refused.value.status_code == status and refused.value.body["param"] == param
    assert fake_openai.requests == []


def haiku_cost(usage) -> int:
    prices = CatalogModel.objects.get(public_id="claude-3-5-haiku").prices
    return pricing.token_cost_nanos(
        prices, prompt_tokens=usage.prompt_tokens, completion_tokens=usage.completion_tokens
    )


@pytest.mark.parametrize("failure", [500, 429])
@pytest.mark.parametrize("stream", [False, True])
def test_models_fall_back_to_the_next_model_which_prices_and_names_the_answer(
    tenant, fake_openai, fake_anthropic, failure, stream
):
    fake_openai.fail_next(failure, BOOM)  # gpt-4o's one deployment
    raw = tenant.client().chat.completions.with_raw_response.create(
        model="gpt-4o",
        messages=[{"role": "user", "content": "hi there"}],
        stream=stream,
        extra_body={"models": ["claude-3-5-haiku", "gpt-4o-mini"]},
        **({"stream_options": {"include_usage": True}} if stream else {}),
    )
    if stream:
        chunks = list(raw.parse())
        models = {chunk.model for chunk in chunks}
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        usage = chunks[-1].usage
    else:
        completion = raw.parse()
        models, text, usage = {completion.model}, completion.choices[0].message.content, None
        usage = completion.usage
    assert models == {"claude-3-5-haiku"} and text == "Echo: hi there"
    assert len(fake_anthropic.requests) == 1 and "models" not in fake_anthropic.requests[0].json()
    assert round(usage.cost * 1e9) == haiku_cost(usage)  # haiku's prices, not gpt-4o's
    record = record_of(raw.http_response)
    assert (record.model, record.provider, record.cost_nanos) == (
        "claude-3-5-haiku",
        "anthropic",
        haiku_cost(usage),
    )


def test_the_reservation_covers_the_most_expensive_model_that_may_serve(tenant, fake_openai):
    owner = User.objects.create_user(email="poor@example.com", password="x-correct-horse")
    organization = organization_create(name="Poor", owner=owner)
    credits_grant(organization=organization, amount_nanos=10**9, reference="grant:poor")
    created = api_key_create(organization=organization, name="poor", created_by=owner)
    poor = Tenant(organization=organization, key=created.plaintext, url=tenant.url)
    # gpt-4o-mini reserves about a cent; claude-opus-4-1 (32,000 tokens at $75/M) $2.40.
    ask(poor, 1)  # (gpt-4o, answered: the catalog row is read as it is)
    with pytest.raises(openai.APIStatusError) as refused:
        poor.client().chat.completions.create(
            model="gpt-4o-mini",
            messages=[{"role": "user", "content": "hi"}],
            extra_body={"models": ["claude-opus-4-1"]},
        )
    assert refused.value.status_code == 402
    answered = poor.client().chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}]
    )
    assert answered.model == "gpt-4o-mini"


def test_max_price_leaves_out_the_models_above_it(tenant, fake_openai, fake_anthropic):
    fake_openai.fail_next(500, BOOM, times=3)
    with pytest.raises(openai.APIStatusError) as failed:
        tenant.client().chat.completions.create(
            model="gpt-4o",
            messages=[{"role": "user", "content": "hi"}],
            # opus costs $75/M completion tokens: above the caller's limit, never tried
            extra_body={
                "models": ["claude-opus-4-1"],
                "provider": {"max_price": {"completion": 12, "prompt": "5"}},
            },
        )
    assert failed.value.status_code == 502 and fake_anthropic.requests == []
    with pytest.raises(openai.NotFoundError) as refused:
        ask(tenant, 1, extra_body={"provider": {"max_price": {"prompt": "0.5"}}})
    assert refused.value.body["param"] == "provider"


def test_the_affinity_key_reads_a_bounded_prefix():
    body = conversation(1, "x" * 100_000)
    longer = conversation(1, "x" * 100_000)
    body["messages"][0]["content"] = "y" * 1_000_000
    longer["messages"][0]["content"] = "y" * 2_000_000  # differs past the bound only
    assert balance.affinity_key(body) == balance.affinity_key(longer)
    other = conversation(2, "x" * 100_000)
    assert balance.affinity_key(other) != balance.affinity_key(conversation(1))


def test_a_provider_with_several_keys_balances_its_share_over_them(settings):
    settings.PROVIDERS = {
        **PROVIDERS,
        "a": {"api_keys": ["k1", "k2", "k3"], "base_url": "https://a/v1"},
    }
    routes = routing.deployments_for(
        replace(ENTRY, deployments=(("b", "up", 3.0),), fallbacks=(("a", "fb"),))
    )
    assert [(r.key, r.deployment.api_key, r.weight) for r in routes] == [
        ("a/up", "k1", 1 / 3),
        ("a#2/up", "k2", 1 / 3),
        ("a#3/up", "k3", 1 / 3),
        ("b/up", "k", 3.0),
        ("a/fb", "k1", None),
        ("a#2/fb", "k2", None),
        ("a#3/fb", "k3", None),
    ]
    assert {r.provider for r in routes} == {"a", "b"}  # (`provider.only` names the provider)
    alone = routing.deployments_for(ENTRY)
    firsts = Counter(balance.ordered(alone, conversation(n))[0].key for n in range(3000))
    assert sorted(firsts) == ["a#2/up", "a#3/up", "a/up"]
    assert min(firsts.values()) > 850


def test_api_keys_come_from_nexeon_providers():
    code = "from django.conf import settings; print(settings.PROVIDERS['openai']['api_keys'])"
    environment = manage_env(DEBUG="1", NEXEON_PROVIDERS='{"openai": {"api_keys": ["k1", "k2"]}}')
    result = run_manage("shell", "--no-imports", "-c", code, env=environment)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "['k1', 'k2']"
    bad = manage_env(DEBUG="1", NEXEON_PROVIDERS='{"openai": {"api_keys": "k1"}}')
    broken = run_manage("check", env=bad)
    assert broken.returncode != 0 and "api_keys must be a non-empty list" in broken.stderr
