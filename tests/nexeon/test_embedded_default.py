"""`make run`'s configuration: no DATABASE_URL, no REDIS_URL, nothing else running."""

import re
import subprocess
import sys
from pathlib import Path

import httpx
import openai
import pytest
from django.conf import settings

from tests.fakes.openai import FakeOpenAI
from tests.fakes.server import serving
from tests.support import (
    PROJECT_DIR,
    free_port,
    manage_env,
    run_manage,
    serving_nexeon,
    wait_for_http,
)


@pytest.fixture
def embedded_env(tmp_path):
    return manage_env(
        DATABASE_URL=None, REDIS_URL=None, SECRET_KEY=None, DEBUG="1", DATA_DIR=str(tmp_path)
    )


def test_embedded_default_migrates_provisions_and_serves(tmp_path, embedded_env):
    fake = FakeOpenAI(api_key="sk-upstream")
    with serving(fake) as upstream:
        embedded_env.update(OPENAI_BASE_URL=f"{upstream}/v1", OPENAI_API_KEY="sk-upstream")
        _migrate_provision_serve(tmp_path, embedded_env)


def _migrate_provision_serve(tmp_path, embedded_env):
    migrate = run_manage("migrate", "--noinput", env=embedded_env, timeout=120)
    assert migrate.returncode == 0, migrate.stderr
    assert (tmp_path / "db.sqlite3").exists()

    created = run_manage("create_api_key", "dev@example.com", "--credits", "1", env=embedded_env)
    assert created.returncode == 0, created.stderr
    key = created.stdout.strip().splitlines()[-1]
    assert key.startswith("nex-sk-")

    port = free_port()
    server = subprocess.Popen(
        [
            *(sys.executable, "-m", "uvicorn", "nexeon.asgi:application", "--port", str(port)),
            *(
                "--host",
                "127.0.0.1",
                "--loop",
                "uvloop",
                "--http",
                "apigateway.server:GatewayHttpProtocol",
                "--lifespan",
                "on",
            ),
        ],
        cwd=PROJECT_DIR,
        env=embedded_env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        wait_for_http(f"http://127.0.0.1:{port}/healthz", process=server)
        assert httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200
        ready = httpx.get(f"http://127.0.0.1:{port}/readyz")
        assert ready.status_code == 200
        assert ready.json()["checks"] == {"database": "ok", "redis": "not configured"}
        home = httpx.get(f"http://127.0.0.1:{port}/")
        assert home.status_code == 200
        assert f"http://127.0.0.1:{port}/v1" in home.text

        client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key=key)
        answer = client.chat.completions.create(
            model="gpt-4o", messages=[{"role": "user", "content": "hi"}]
        )
        assert answer.choices[0].message.content == "Echo: hi"
        streamed = client.chat.completions.create(
            model="gpt-4o", messages=[{"role": "user", "content": "a b"}], stream=True
        )
        assert "".join(c.choices[0].delta.content or "" for c in streamed) == "Echo: a b"
        balance = run_manage(
            "shell",
            "--no-imports",
            "-c",
            "from billing.models import LedgerEntry; "
            "print(LedgerEntry.objects.filter(kind='usage').count())",
            env=embedded_env,
        )
        assert balance.stdout.strip() == "2"  # booked in process, no broker needed
    finally:
        server.terminate()
        server.wait(timeout=10)


def test_embedded_default_runs_tasks_eagerly(embedded_env):
    code = (
        "from django.conf import settings; from nexeon.celery import app; "
        "print(settings.CELERY_TASK_ALWAYS_EAGER, app.conf.broker_url, "
        "settings.CACHES['default']['BACKEND'].rsplit('.', 1)[-1])"
    )
    result = run_manage("shell", "--no-imports", "-c", code, env=embedded_env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["True", "memory://", "LocMemCache"]


# Every provider variable: a newcomer's shell has none of them.
PROVIDER_VARIABLES = [
    *(variable for names in settings.PROVIDER_ENV.values() for variable in names[:2]),
    "NEXEON_PROVIDERS",
    "OPENAI_API_VERSION",
]


def without_providers(env: dict[str, str]) -> dict[str, str]:
    for variable in (*PROVIDER_VARIABLES, "GATEWAY_DEMO_MODEL", "SIGNUP_CREDIT_USD"):
        env.pop(variable, None)
    return env


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"DEBUG": "1"}, ["True", "1"]),
        ({"DEBUG": "0", "SECRET_KEY": "x" * 50}, ["False", "0"]),
        ({"DEBUG": "0", "SECRET_KEY": "x" * 50, "GATEWAY_DEMO_MODEL": "1"}, ["True", "0"]),
    ],
)
def test_the_demo_model_and_starting_credit_are_development_defaults(
    embedded_env, overrides, expected
):
    env = {**without_providers(embedded_env), **overrides}
    code = (
        "from django.conf import settings; "
        "print(settings.GATEWAY_DEMO_MODEL, settings.SIGNUP_CREDIT_USD)"
    )
    result = run_manage("shell", "--no-imports", "-c", code, env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == expected


def _served_log(env: dict[str, str], log: Path) -> str:
    with log.open("w") as stderr, serving_nexeon(env, stderr=stderr) as (url, _):
        assert httpx.get(f"{url}/healthz").status_code == 200
    return log.read_text()


def test_the_log_says_once_that_no_provider_is_configured(tmp_path, embedded_env):
    env = without_providers(embedded_env)
    assert run_manage("migrate", "--noinput", env=env, timeout=120).returncode == 0
    text = _served_log(env, tmp_path / "server.log")
    warnings = [line for line in text.splitlines() if "no provider is configured" in line]
    assert len(warnings) == 1, text
    assert " WARNING apigateway: no provider is configured: set OPENAI_API_KEY" in warnings[0]
    assert "(see docs/configuration.md); only the demo model answers" in warnings[0]

    env.update(DEBUG="0", SECRET_KEY="x" * 50, ALLOWED_HOSTS="127.0.0.1")
    text = _served_log(env, tmp_path / "production.log")
    assert (
        "no provider is configured" in text
        and "every model call answers 404 model_not_available" in text
    )


def test_the_log_lists_the_configured_providers_and_their_models(tmp_path, embedded_env):
    env = without_providers(embedded_env)
    env.update(OPENAI_API_KEY="sk-x", ANTHROPIC_API_KEY="sk-ant-x")
    assert run_manage("migrate", "--noinput", env=env, timeout=120).returncode == 0
    text = _served_log(env, tmp_path / "server.log")
    [line] = [line for line in text.splitlines() if "providers configured:" in line]
    found = re.search(r"openai \((\d+) models\), anthropic \((\d+) models\); demo model", line)
    assert found and int(found[1]) > 10 and int(found[2]) > 3, line
    assert line.endswith("demo model nexeon-demo on (free local echo; GATEWAY_DEMO_MODEL)")


def test_the_usage_page_agrees_with_the_overview_without_beat(tmp_path, embedded_env):
    """`make run`'s setup (SQLite, eager tasks, no beat): calls, then both pages."""
    fake = FakeOpenAI(api_key="sk-upstream")
    with serving(fake) as upstream:
        env = without_providers(embedded_env)
        env.update(OPENAI_BASE_URL=f"{upstream}/v1", OPENAI_API_KEY="sk-upstream")
        env["ACCOUNT_EMAIL_VERIFICATION"] = "none"  # (the address is made in the shell)
        assert run_manage("migrate", "--noinput", env=env, timeout=120).returncode == 0
        made = run_manage(
            "shell",
            "--no-imports",
            "-c",
            "from accounts.models import User; "
            "User.objects.create_user(email='ada@example.com', password='a-long-passphrase-42')",
            env=env,
        )
        assert made.returncode == 0, made.stderr
        created = run_manage("create_api_key", "ada@example.com", "--credits", "5", env=env)
        key = created.stdout.strip().splitlines()[-1]
        with serving_nexeon(env) as (url, _):
            client = openai.OpenAI(base_url=f"{url}/v1", api_key=key, max_retries=0)
            for words in (1000, 2000, 3000):  # (each some cents: the pages show cents)
                client.chat.completions.create(
                    model="gpt-4o", messages=[{"role": "user", "content": "word " * words}]
                )
            browser = _signed_in(url, "ada@example.com", "a-long-passphrase-42")
            spent = _shown(browser.get(f"{url}/").text, "spent")
            assert spent != "$0.00"
            for granularity in ("hour", "day", "month"):
                page = browser.get(f"{url}/usage/?granularity={granularity}").text
                assert _shown(page, "total-spend") == spent, granularity
                assert _shown(page, "total-requests") == "3", granularity


def _signed_in(url: str, email: str, password: str) -> httpx.Client:
    browser = httpx.Client(follow_redirects=True, timeout=20)
    form = browser.get(f"{url}/accounts/login/").text
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form)[1]
    done = browser.post(
        f"{url}/accounts/login/",
        data={"login": email, "password": password, "csrfmiddlewaretoken": token},
        headers={"referer": f"{url}/accounts/login/"},
    )
    assert 'data-testid="spent"' in done.text, done.text[:500]
    return browser


def _shown(html: str, testid: str) -> str:
    found = re.search(rf'data-testid="{testid}">([^<]+)<', html)
    assert found, f"no {testid}"
    return found[1].strip()
