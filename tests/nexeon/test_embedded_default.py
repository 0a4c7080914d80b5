"""`make run`'s configuration: no DATABASE_URL, no REDIS_URL, nothing else running."""

import subprocess
import sys

import httpx
import openai
import pytest

from tests.fakes.openai import FakeOpenAI
from tests.fakes.server import serving
from tests.support import PROJECT_DIR, free_port, manage_env, run_manage, wait_for_http


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
