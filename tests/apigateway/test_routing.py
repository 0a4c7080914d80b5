from apigateway import routing
from apigateway.catalog import CatalogEntry
from apigateway.providers.openai import AzureOpenAIProvider, OpenAIProvider
from tests.support import manage_env, run_manage

ENTRY = CatalogEntry(
    id="m", provider="openai", upstream_model="up", owned_by="o", created=1, mode="chat",
    context_window=None, max_output_tokens=1000, prices={},
)  # fmt: skip


def test_a_provider_without_key_is_not_configured(settings):
    settings.PROVIDERS = {"openai": {"api_key": "", "base_url": "https://x/v1"}}
    assert routing.deployment_for(ENTRY) is None
    settings.PROVIDERS = {"openai": {"api_key": "k", "base_url": "https://x/v1"}}
    deployment = routing.deployment_for(ENTRY)
    assert (deployment.api_key, deployment.upstream_model, deployment.max_output_tokens) == (
        "k",
        "up",
        1000,
    )


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
