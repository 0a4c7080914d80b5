"""The commands docs/operations.md prints for running the processes work as printed: `make
migrate`, `make run`, `make worker` and `make beat` start against PostgreSQL and Redis from a
`.venv` built from requirements.lock; the worker and beat refuse the in-memory broker."""

from __future__ import annotations

import subprocess

import httpx
import pytest
from django.conf import settings

from tests.deploy.docs import fenced_commands
from tests.deploy.stack import Process, project_with_runtime_venv, runtime_venv
from tests.support import answers_200, free_port, test_database_url

pytestmark = pytest.mark.deploy

REFUSAL = "needs a shared broker: set REDIS_URL (or CELERY_BROKER_URL)"


def process_commands() -> list[str]:
    return fenced_commands("docs/operations.md", "Running the processes")


def shell_env(tmp_path, **overrides: str) -> dict[str, str]:
    """An operator's shell: PATH, the two URLs, no SECRET_KEY, no DEBUG. DATA_DIR and
    STATIC_ROOT keep the development key and static files out of the checkout."""
    return {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": str(tmp_path),
        "DATABASE_URL": test_database_url(),
        "REDIS_URL": settings.REDIS_URL,
        "DATA_DIR": str(tmp_path),
        "STATIC_ROOT": str(tmp_path / "static"),
        **overrides,
    }


def test_the_printed_process_commands_are_these():
    assert process_commands() == ["make migrate", "make run", "make worker", "make beat"]


def test_make_migrate_run_worker_and_beat_work_as_printed(transactional_db, redis_client, tmp_path):
    project = project_with_runtime_venv(tmp_path / "checkout")
    port = free_port()
    env = shell_env(tmp_path, PORT=str(port))
    migrate, run, worker, beat = process_commands()

    done = subprocess.run(
        migrate, shell=True, cwd=project, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stdout + done.stderr

    started = []
    try:
        for name, command in (("run", run), ("worker", worker), ("beat", beat)):
            log = tmp_path / f"{name}.log"
            started.append(Process(name, ["sh", "-c", command], env, log, project).start())
        web, celery_worker, celery_beat = started

        ready = f"http://127.0.0.1:{port}/readyz"
        web.wait_for(lambda: answers_200(ready), "/readyz 200", timeout=90)
        page = httpx.get(f"http://127.0.0.1:{port}/accounts/login/", timeout=10)
        assert page.status_code == 200

        def pong() -> bool:
            ping = subprocess.run(
                [".venv/bin/celery", "-A", "nexeon", "inspect", "ping", "--timeout", "3"],
                cwd=project,
                env={**env, "DEBUG": "1"},
                capture_output=True,
                text=True,
                timeout=60,
            )
            return "pong" in ping.stdout

        celery_worker.wait_for(pong, "answer to `celery inspect ping`", timeout=90)
        celery_beat.wait_for(
            lambda: "Sending due task" in celery_beat.output(), "scheduled task", timeout=60
        )
    finally:
        for process in reversed(started):
            process.stop()


@pytest.mark.parametrize("target", ["worker", "beat"])
def test_make_worker_and_beat_refuse_the_in_memory_broker(target, tmp_path):
    project = project_with_runtime_venv(tmp_path / "checkout")
    env = shell_env(tmp_path)
    del env["REDIS_URL"]
    done = subprocess.run(
        f"make {target}",
        shell=True,
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode != 0
    assert f"nexeon: celery {target} {REFUSAL}" in done.stderr, done.stdout + done.stderr


@pytest.mark.parametrize("role", ["worker", "beat"])
def test_celery_itself_refuses_the_in_memory_broker(role, tmp_path):
    """Not only through make: the app's own startup refuses, however it is run."""
    celery = runtime_venv() / "bin" / "celery"
    env = shell_env(tmp_path, SECRET_KEY="test-only", DEBUG="0")
    del env["REDIS_URL"]
    done = subprocess.run(
        [str(celery), "-A", "nexeon", role, "--loglevel", "INFO"],
        cwd=settings.BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2, done.stdout + done.stderr
    assert f"nexeon: celery {role} {REFUSAL}" in done.stderr
