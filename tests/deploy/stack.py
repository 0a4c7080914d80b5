"""What the deployment tests share: a venv built from requirements.lock alone (what the
image installs), docker-compose.yml read and interpolated as `docker compose` does, and
its services' commands run as processes on this machine."""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from tests.support import PROJECT_DIR

# Built venvs live here, one per lock file content, so that reruns do not reinstall.
VENV_CACHE = PROJECT_DIR / ".cache" / "runtime-venv"


def _uv() -> str:
    """The uv of the venv running the tests (the Makefile installs it there), else PATH's."""
    beside = Path(sys.executable).parent / "uv"
    found = str(beside) if beside.exists() else shutil.which("uv")
    assert found, "uv is needed to build the runtime venv (make creates .venv/bin/uv)"
    return found


def runtime_venv() -> Path:
    """A venv holding requirements.lock and nothing else, cached by the lock's hash."""
    lock = PROJECT_DIR / "requirements.lock"
    digest = hashlib.sha256(lock.read_bytes()).hexdigest()[:16]
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    venv = VENV_CACHE / f"py{version}-{digest}"
    if (venv / ".complete").exists():
        return venv
    VENV_CACHE.mkdir(parents=True, exist_ok=True)
    with (VENV_CACHE / ".lock").open("w") as guard:
        fcntl.flock(guard, fcntl.LOCK_EX)  # two test runs never build the same venv at once
        if (venv / ".complete").exists():
            return venv
        shutil.rmtree(venv, ignore_errors=True)
        uv = _uv()
        # The interpreter running the tests: by version number alone uv finds no pyenv build
        # and tries to download one.
        subprocess.run([uv, "venv", "--quiet", "--python", sys.executable, str(venv)], check=True)
        subprocess.run(
            [
                *(uv, "pip", "install", "--quiet", "--python", str(venv / "bin" / "python")),
                *("--require-hashes", "-r", str(lock)),
            ],
            check=True,
        )
        (venv / ".complete").touch()
        for stale in VENV_CACHE.glob(f"py{version}-*"):
            if stale != venv:  # built from an older lock
                shutil.rmtree(stale, ignore_errors=True)
    return venv


# --- docker-compose.yml, as `docker compose` reads it -----------------------------------

_VARIABLE = re.compile(
    r"\$(?:(?P<escaped>\$)|\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)"
    r"(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}|(?P<bare>[A-Za-z_][A-Za-z0-9_]*))"
)


def interpolate(value, variables: Mapping[str, str]):
    """Compose's `${VAR}`, `${VAR:-default}`, `${VAR-default}`, `${VAR:?error}`, `$$`."""
    if isinstance(value, dict):
        return {key: interpolate(item, variables) for key, item in value.items()}
    if isinstance(value, list):
        return [interpolate(item, variables) for item in value]
    if not isinstance(value, str):
        return value

    def substitute(match: re.Match) -> str:
        if match["escaped"]:
            return "$"
        name = match["braced"] or match["bare"]
        op, arg = match["op"], match["arg"]
        present = name in variables
        empty = not variables.get(name)
        if op in (":-", "-") and (not present or (op == ":-" and empty)):
            return arg
        if op in (":?", "?") and (not present or (op == ":?" and empty)):
            raise ValueError(f"{name}: {arg}")
        return variables.get(name, "")

    return _VARIABLE.sub(substitute, value)


def load_compose(variables: Mapping[str, str]) -> dict:
    """docker-compose.yml with its anchors merged and its variables substituted."""
    raw = yaml.safe_load((PROJECT_DIR / "docker-compose.yml").read_text())
    return interpolate(raw, variables)


# --- a service's command as a process ---------------------------------------------------


def base_environment(venv: Path) -> dict[str, str]:
    """What a container of the image starts with: its PATH (the installed packages' scripts
    first), the Dockerfile's ENV; nothing from this test run's environment."""
    return {
        "PATH": f"{venv / 'bin'}:/usr/local/bin:/usr/bin:/bin",
        "HOME": os.environ.get("HOME", "/root"),
        "HOSTNAME": socket.gethostname(),
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONUNBUFFERED": "1",
        "LANG": "C.UTF-8",
    }


@dataclass
class Process:
    """A command run in its own session, its output in a log file (read it on failure)."""

    name: str
    command: list[str]
    env: dict[str, str]
    log: Path
    cwd: Path = PROJECT_DIR
    process: subprocess.Popen | None = field(default=None, repr=False)

    def start(self) -> Process:
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(
                self.command,
                cwd=self.cwd,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return self

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def wait_for(self, condition, what: str, timeout: float = 60) -> None:
        """Poll `condition()` until it is true; fail with the process's output if the
        process exits first or the time runs out."""
        deadline = time.monotonic() + timeout
        while not condition():
            assert self.alive(), (
                f"{self.name} exited ({self.process.returncode}) before {what}:\n{self.output()}"
            )
            assert time.monotonic() < deadline, (
                f"{self.name}: no {what} within {timeout}s:\n{self.output()}"
            )
            time.sleep(0.2)

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)


def project_with_runtime_venv(where: Path) -> Path:
    """This checkout as a fresh clone after `make` built `.venv` from requirements.lock:
    the project's files linked into `where`, `.venv` the runtime venv (never the shared
    development one), so that `make` targets run as printed."""
    venv = runtime_venv()
    uv = venv / "bin" / "uv"
    if not uv.exists():
        uv.symlink_to(_uv())
    (venv / ".runtime").touch()  # newer than requirements.lock: make installs nothing
    where.mkdir(parents=True, exist_ok=True)
    for entry in PROJECT_DIR.iterdir():
        if entry.name not in {".venv", ".cache", ".git", "staticfiles", "celerybeat-schedule"}:
            (where / entry.name).symlink_to(entry)
    (where / ".venv").symlink_to(venv)
    return where
