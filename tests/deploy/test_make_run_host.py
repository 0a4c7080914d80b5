"""`make run` serves DEBUG pages (settings, REDIS_URL) by default: on a HOST other than
loopback it refuses unless the operator turns DEBUG off or says ALLOW_DEBUG_ON_NETWORK=1."""

from __future__ import annotations

import os
import signal
import subprocess

import httpx
import pytest

from tests.deploy.stack import Process, project_with_runtime_venv
from tests.support import answers_200, free_port

pytestmark = pytest.mark.deploy

REFUSAL = "make run: HOST=0.0.0.0 would serve DEBUG pages"


def shell_env(tmp_path, **overrides: str) -> dict[str, str]:
    """A newcomer's shell: PATH and nothing else of ours; the data kept out of the checkout."""
    return {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": str(tmp_path),
        "DATA_DIR": str(tmp_path),
        "STATIC_ROOT": str(tmp_path / "static"),
        **overrides,
    }


def make_run(project, env: dict[str, str], *arguments: str) -> subprocess.CompletedProcess:
    """`make run ...`, which must exit on its own: one still serving after 60 s is stopped
    (with its process group) and reported as the failure it is."""
    process = subprocess.Popen(
        ["make", "run", *arguments],
        cwd=project,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        stdout, stderr = process.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGTERM)
        stdout, stderr = process.communicate(timeout=30)
        pytest.fail(f"`make run {' '.join(arguments)}` started serving:\n{stdout}{stderr}")
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


@pytest.mark.parametrize("debug", [None, "1", "yes"])
def test_make_run_on_a_network_host_refuses_debug(tmp_path, debug):
    project = project_with_runtime_venv(tmp_path / "checkout")
    env = shell_env(tmp_path, PORT=str(free_port()))
    if debug is not None:
        env["DEBUG"] = debug
    done = make_run(project, env, "HOST=0.0.0.0")
    assert done.returncode != 0
    assert REFUSAL in done.stderr, done.stdout + done.stderr
    # The message says what to do instead.
    assert "DEBUG=0" in done.stderr and "ALLOW_DEBUG_ON_NETWORK=1" in done.stderr
    assert not (tmp_path / "db.sqlite3").exists()  # refused before migrating anything


@pytest.mark.parametrize("host", ["127.0.0.1", "0.0.0.0"])  # noqa: S104 (the point)
def test_make_run_serves_on_loopback_and_on_the_network_when_asked(tmp_path, host):
    """The default (loopback) serves with no further word; a network HOST serves with the
    explicit one."""
    project = project_with_runtime_venv(tmp_path / "checkout")
    port = free_port()
    env = shell_env(tmp_path, PORT=str(port))
    command = ["make", "run", f"HOST={host}"]
    if host != "127.0.0.1":
        env["ALLOW_DEBUG_ON_NETWORK"] = "1"
    web = Process("make run", command, env, tmp_path / "run.log", project).start()
    try:
        healthz = f"http://127.0.0.1:{port}/healthz"
        web.wait_for(lambda: answers_200(healthz), "/healthz 200", timeout=120)
        page = httpx.get(f"http://127.0.0.1:{port}/accounts/login/", timeout=10)
        assert page.status_code == 200
    finally:
        web.stop()
