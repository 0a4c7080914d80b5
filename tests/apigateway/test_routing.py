"""apigateway.routing, pure: which providers are configured, the routes a catalog entry gets
(the primary, then its configured fallbacks, each with its adapter and time-outs), kept per
PROVIDERS object; and NEXEON_PROVIDERS as a fresh `manage.py` process reads it."""

from dataclasses import replace

from apigateway import routing
from apigateway.catalog import CatalogEntry
from apigateway.providers.anthropic import AnthropicProvider
from apigateway.providers.openai import AzureOpenAIProvider, OpenAIProvider
from tests.support import manage_env, run_manage

ENTRY = CatalogEntry(
    id="m", provider="openai", upstream_model="up", owned_by="o", created=1, mode="chat",
    context_window=None, max_output_tokens=1000, prices={},
)  # fmt: skip


def test_a_provider_without_key_is_not_configured(settings):
    settings.PROVIDERS = {"openai": {"api_key": "", "base_url": "https://x/v1"}}
    assert routing.deployments_for(ENTRY) == ()
    settings.PROVIDERS = {"openai": {"api_key": "k", "base_url": "https://x/v1"}}
    (route,) = routing.deployments_for(ENTRY)
    deployment = route.deployment
    assert (deployment.api_key, deployment.upstream_model, deployment.max_output_tokens) == (
        "k",
        "up",
        1000,
    )


def test_routes_are_made_once_per_entry_and_remade_when_the_settings_change(settings):
    settings.PROVIDERS = {"openai": {"api_key": "k", "base_url": "https://x/v1"}}
    first = routing.deployments_for(ENTRY)
    assert routing.deployments_for(ENTRY) is first  # kept: made once per entry
    assert routing.deployments_for(replace(ENTRY, upstream_model="other")) is not first
    settings.UPSTREAM_TIMEOUT = 7.0  # any other setting: made again
    (route,) = routing.deployments_for(ENTRY)
    assert route.read_timeout == 7.0 and (route,) is not first
    settings.PROVIDERS = {"openai": {"api_key": "k2", "base_url": "https://y/v1"}}
    (route,) = routing.deployments_for(ENTRY)
    assert (route.deployment.api_key, route.deployment.base_url) == ("k2", "https://y/v1")


def test_local_servers_need_only_a_base_url(settings):
    settings.PROVIDERS = {"ollama": {"api_key": "", "base_url": "http://127.0.0.1:11434/v1"}}
    assert routing.is_configured("ollama")
    settings.PROVIDERS = {"ollama": {"api_key": "", "base_url": ""}}
    assert not routing.is_configured("ollama")


def test_adapters_by_provider_name():
    assert routing.adapter_name("anthropic") == "anthropic"
    assert routing.adapter_name("gemini") == "gemini"
    assert isinstance(routing.adapter(routing.adapter_name("azure")), AzureOpenAIProvider)
    assert isinstance(routing.adapter(routing.adapter_name("mistral")), OpenAIProvider)


def test_custom_providers_come_from_configuration_alone():
    code = "from django.conf import settings; print(settings.PROVIDERS['lab'])"
    environment = manage_env(
        DEBUG="1",
        NEXEON_PROVIDERS='{"lab": {"base_url": "http://127.0.0.1:9/v1/", "headers": {"X-T": "1"}}}',
    )
    result = run_manage("shell", "--no-imports", "-c", code, env=environment)
    assert result.returncode == 0, result.stderr
    assert "'base_url': 'http://127.0.0.1:9/v1'" in result.stdout
    assert "'adapter': 'openai'" in result.stdout and "'X-T': '1'" in result.stdout
    broken = run_manage("check", env=manage_env(DEBUG="1", NEXEON_PROVIDERS='{"lab": {}}'))
    assert broken.returncode != 0 and "NEXEON_PROVIDERS" in broken.stderr


def test_deployments_are_the_primary_then_the_configured_fallbacks_in_order(settings):
    settings.UPSTREAM_TIMEOUT, settings.UPSTREAM_CONNECT_TIMEOUT = 600.0, 10.0
    settings.PROVIDERS = {
        "openai": {"api_key": "k", "base_url": "https://x/v1"},
        "anthropic": {"api_key": "a", "base_url": "https://a", "timeout": 120.0},
        "azure-eu": {
            "api_key": "z",
            "base_url": "https://eu.example",
            "adapter": "azure",
            "headers": {},
            "connect_timeout": 2.0,
        },
    }
    entry = replace(
        ENTRY,
        fallbacks=(
            ("unconfigured", "up"),
            ("azure-eu", "gpt-4o-eu"),
            ("openai", "up"),  # the primary again: once is enough
            ("anthropic", "claude"),
        ),
    )
    routes = routing.deployments_for(entry)
    assert [route.key for route in routes] == [
        "openai/up",
        "azure-eu/gpt-4o-eu",
        "anthropic/claude",
    ]
    primary, azure, claude = routes
    assert isinstance(azure.adapter, AzureOpenAIProvider) and azure.deployment.api_version
    assert isinstance(claude.adapter, AnthropicProvider)
    assert (primary.connect_timeout, primary.read_timeout) == (10.0, 600.0)
    assert (azure.connect_timeout, azure.read_timeout) == (2.0, 600.0)
    assert (claude.connect_timeout, claude.read_timeout) == (10.0, 120.0)
    assert routing.is_available(
        replace(ENTRY, provider="unconfigured", fallbacks=(("openai", "u"),))
    )
    assert not routing.is_available(replace(ENTRY, provider="unconfigured"))


def test_provider_timeouts_and_built_in_overrides_come_from_nexeon_providers():
    code = (
        "from django.conf import settings; p = settings.PROVIDERS; "
        "print(p['anthropic']['timeout'], p['anthropic']['base_url'], 'adapter' in p['anthropic'], "
        "p['openai-eu']['connect_timeout'], p['openai-eu']['adapter'])"
    )
    environment = manage_env(
        DEBUG="1",
        ANTHROPIC_BASE_URL="https://anthropic.internal",
        NEXEON_PROVIDERS='{"anthropic": {"timeout": 300}, "openai-eu": '
        '{"base_url": "https://eu.example/v1", "api_key": "k", "connect_timeout": 2}}',
    )
    result = run_manage("shell", "--no-imports", "-c", code, env=environment)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [
        "300.0",
        "https://anthropic.internal",
        "False",
        "2.0",
        "openai",
    ]
    for bad in (
        '{"anthropic": {"timeout": 0}}',
        '{"lab": {"base_url": "http://x", "timeout": "9"}}',
    ):
        broken = run_manage("check", env=manage_env(DEBUG="1", NEXEON_PROVIDERS=bad))
        assert broken.returncode != 0 and "timeout must be a number of seconds" in broken.stderr
