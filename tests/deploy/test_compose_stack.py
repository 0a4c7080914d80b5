"""docker-compose.yml's services, run as processes from a venv of requirements.lock alone
(what the image installs): migrate, web, worker and beat start against PostgreSQL and
Redis, web is ready, the worker answers its health check, and a real call's usage is
drained into a UsageRecord by the worker on beat's schedule.

No Docker engine runs here, so each service's `command` and health check run as written,
with two adaptations: the container's 0.0.0.0:8000 becomes a free loopback port, and its
/tmp a directory of the test; the compose environment's hosts become this machine's."""

from __future__ import annotations

import re
import subprocess

import httpx
import pytest
from django.conf import settings

from tests.apigateway.conftest import UPSTREAM_KEY, new_tenant
from tests.deploy.stack import Process, base_environment, load_compose, runtime_venv
from tests.fakes.openai import FakeOpenAI
from tests.fakes.server import serving
from tests.support import free_port, test_database_url
from usage.models import UsageRecord

pytestmark = pytest.mark.deploy

# What an operator's .env beside docker-compose.yml holds (one web and one worker process
# each, on a 2-core test machine).
DOTENV = {
    "SECRET_KEY": "compose-smoke-test-secret-key-not-for-production",
    "POSTGRES_PASSWORD": "unused-the-test-database-has-its-own",
    "WEB_WORKERS": "1",
    "WORKER_CONCURRENCY": "1",
    "GATEWAY_GRACE_SECONDS": "5",
}


def container_tmp(arg: str, tmp) -> str:
    return re.sub(r"/tmp(?=/|\s|$)", str(tmp), arg)


def on_this_machine(command: list[str], port: int, tmp) -> list[str]:
    replaced = {"--host=0.0.0.0": "--host=127.0.0.1", "--port=8000": f"--port={port}"}
    return [container_tmp(replaced.get(arg, arg), tmp) for arg in command]


def service_env(service: dict, venv, **overrides: str) -> dict[str, str]:
    return {**base_environment(venv), **service["environment"], **overrides}


def healthy(process: Process, services: dict, port: int, tmp_path) -> bool:
    """The service's compose health check, run in its environment (CMD or CMD-SHELL)."""
    kind, *test = services[process.name]["healthcheck"]["test"]
    test = [container_tmp(arg.replace(":8000/", f":{port}/"), tmp_path) for arg in test]
    command = ["sh", "-c", test[0]] if kind == "CMD-SHELL" else test
    check = subprocess.run(command, env=process.env, cwd=settings.BASE_DIR, timeout=60)
    return check.returncode == 0


@pytest.fixture
def fake_openai():
    fake = FakeOpenAI(api_key=UPSTREAM_KEY)
    with serving(fake):
        yield fake


def test_the_compose_services_run_from_the_runtime_lock(
    transactional_db, redis_client, fake_openai, tmp_path
):
    venv = runtime_venv()
    services = load_compose(DOTENV)["services"]
    port = free_port()
    local = {
        "DATABASE_URL": test_database_url(),
        "REDIS_URL": settings.REDIS_URL,
        "OPENAI_API_KEY": UPSTREAM_KEY,
        "OPENAI_BASE_URL": f"{fake_openai.base_url}/v1",
    }

    def command(name: str) -> list[str]:
        return on_this_machine(services[name]["command"], port, tmp_path)

    migrate = subprocess.run(
        command("migrate"),
        env=service_env(services["migrate"], venv, **local),
        cwd=settings.BASE_DIR,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert migrate.returncode == 0, migrate.stdout + migrate.stderr

    url = f"http://127.0.0.1:{port}"
    tenant = new_tenant(url, name="Compose", email="compose@example.com", dollars=5)
    started: list[Process] = []

    def start(name: str) -> Process:
        env = service_env(services[name], venv, **local)
        process = Process(name, command(name), env, tmp_path / f"{name}.log").start()
        started.append(process)
        return process

    try:
        web = start("web")
        worker = start("worker")
        beat = start("beat")

        def ready() -> bool:
            try:
                return httpx.get(f"{url}/readyz", timeout=2).status_code == 200
            except httpx.TransportError:
                return False

        web.wait_for(ready, "/readyz 200", timeout=60)
        assert httpx.get(f"{url}/healthz", timeout=5).json() == {"status": "ok"}

        worker.wait_for(
            lambda: healthy(worker, services, port, tmp_path),
            "answer to its health check (`celery inspect ping`)",
            timeout=90,
        )
        beat.wait_for(
            lambda: "Sending due task drain-usage-events" in beat.output(),
            "scheduled usage drain",
            timeout=60,
        )
        assert healthy(web, services, port, tmp_path)
        assert healthy(beat, services, port, tmp_path)

        answer = tenant.client().chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "hello compose"}]
        )
        assert answer.choices[0].message.content
        records = UsageRecord.objects.filter(organization=tenant.organization)
        worker.wait_for(records.exists, "UsageRecord of the call", timeout=60)
        assert records.get().status == 200
        for process in (web, worker, beat):
            assert process.alive(), process.output()
    finally:
        for process in reversed(started):
            process.stop()


def test_the_runtime_lock_holds_no_test_tools():
    venv = runtime_venv()
    missing = subprocess.run(
        [str(venv / "bin" / "python"), "-c", "import pytest"], capture_output=True, timeout=60
    )
    assert missing.returncode != 0, "requirements.lock should hold the runtime only"
