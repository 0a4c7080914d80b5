"""Helpers for tests that start real processes (servers, workers, manage.py)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
from django.conf import settings

PROJECT_DIR = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_http(url: str, timeout: float = 20.0, process: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode} before answering")
        try:
            httpx.get(url, timeout=1.0)
            return
        except httpx.TransportError:
            time.sleep(0.1)
    raise TimeoutError(f"{url} did not answer within {timeout}s")


def answers_200(url: str) -> bool:
    """Whether `url` answers 200 now (a server still starting does not answer at all)."""
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.TransportError:
        return False


def manage_env(**overrides: str | None) -> dict[str, str]:
    """The current environment with overrides; a value of None removes the variable."""
    environment = dict(os.environ)
    for name, value in overrides.items():
        if value is None:
            environment.pop(name, None)
        else:
            environment[name] = value
    return environment


def run_manage(*args: str, env: dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=PROJECT_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_database_url() -> str:
    """The URL of pytest-django's test database, for processes the tests start."""
    database = settings.DATABASES["default"]
    host = database["HOST"] or "127.0.0.1"
    port = database["PORT"] or 5432
    auth = database["USER"] + (f":{database['PASSWORD']}" if database["PASSWORD"] else "")
    return f"postgres://{auth}@{host}:{port}/{database['NAME']}"


test_database_url.__test__ = False  # type: ignore[attr-defined]


def start_nexeon(
    env: dict[str, str], *, workers: int = 1, grace: float = 30, stderr=subprocess.DEVNULL
) -> tuple[str, subprocess.Popen]:
    """Serve nexeon.asgi with uvicorn as `make run` does, in its own process group, on a
    free port; returns (base URL, process) once /healthz answers. Stop it with
    stop_process()."""
    port = free_port()
    process = subprocess.Popen(
        [
            *(sys.executable, "-m", "uvicorn", "nexeon.asgi:application"),
            *("--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)),
            *("--loop", "uvloop", "--http", "apigateway.server:GatewayHttpProtocol"),
            *("--lifespan", "on"),
            *("--no-access-log", "--log-level", "warning"),
            *("--timeout-graceful-shutdown", f"{grace:g}"),
        ],
        cwd=PROJECT_DIR,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=stderr,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(f"{url}/healthz", process=process)
    except BaseException:
        stop_process(process)
        raise
    return url, process


def stop_process(process: subprocess.Popen, sig: int = signal.SIGTERM) -> None:
    """Stop a process started in its own session, and its children (uvicorn workers)."""
    if process.poll() is None:
        os.killpg(process.pid, sig)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


@contextmanager
def serving_nexeon(env: dict[str, str], **options) -> Iterator[tuple[str, subprocess.Popen]]:
    url, process = start_nexeon(env, **options)
    try:
        yield url, process
    finally:
        stop_process(process)


def forget_cached_key(digest: str) -> None:
    """A key changed behind the services' back (a test's row.save()): tell the gateways as
    the services do, and drop this process's copy (the in-thread gateway's) at once."""
    from accounts import key_cache
    from apigateway import auth

    key_cache.changed(digest)
    auth._local.pop(digest, None)


def open_holds(client) -> list[bytes]:
    """The names of the holds open in the money Redis, every shard's."""
    from credit import keys

    return [name for shard in keys.shards() for name in client.zrange(keys.holds(shard), 0, -1)]


def queued_usage(client) -> list[tuple[bytes, dict[bytes, bytes]]]:
    """The entries of every shard's usage stream."""
    from credit import keys

    return [entry for shard in keys.shards() for entry in client.xrange(keys.usage_stream(shard))]
