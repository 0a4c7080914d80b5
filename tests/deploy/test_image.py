"""The image: .dockerignore keeps secrets and local data out of the build context, the
Dockerfile collects static files with production settings (so the manifest the pages need
is written) and runs as a non-root user."""

from __future__ import annotations

import re
import shlex
import subprocess

import pytest
from django.test import Client

from tests.deploy.stack import base_environment, runtime_venv
from tests.support import PROJECT_DIR

pytestmark = pytest.mark.deploy


def dockerignore_patterns() -> list[str]:
    lines = (PROJECT_DIR / ".dockerignore").read_text().splitlines()
    patterns = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    assert not [p for p in patterns if p.startswith("!")], "no exceptions: keep the rules simple"
    return [p.strip("/") for p in patterns]


def _pattern_regex(pattern: str) -> re.Pattern:
    """Docker's rules (moby/patternmatcher): `**` any number of directories, `*` and `?`
    within one path segment."""
    out = ""
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out += "(?:.*/)?"
            i += 3
        elif pattern.startswith("**", i):
            out += ".*"
            i += 2
        elif pattern[i] == "*":
            out += "[^/]*"
            i += 1
        elif pattern[i] == "?":
            out += "[^/]"
            i += 1
        else:
            out += re.escape(pattern[i])
            i += 1
    return re.compile(out + r"\Z")


def excluded(path: str, patterns: list[str]) -> bool:
    """A path is left out when a pattern matches it or one of its parent directories."""
    parts = path.split("/")
    candidates = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    return any(_pattern_regex(p).match(c) for p in patterns for c in candidates)


LEFT_OUT = [
    ".env",
    ".env.production",
    "prod.env",
    ".git/HEAD",
    ".venv/bin/python",
    ".cache/runtime-venv/py3.11-abc/bin/python",
    "db.sqlite3",
    "db.sqlite3-wal",
    ".secret_key",
    "staticfiles/staticfiles.json",
    "celerybeat-schedule",
    "tests/node/node_modules/openai/package.json",
    "test-artifacts/e2e/dashboard.png",
    "nexeon/__pycache__/settings.cpython-311.pyc",
    "worktrees/other/manage.py",
    ".pytest_cache/v/cache/nodeids",
    "tmp/scratch.txt",
]
KEPT = [
    "manage.py",
    "requirements.lock",
    "nexeon/settings.py",
    "static/css/app.css",
    "templates/base.html",
    "apigateway/server.py",
    "credit/lua",
    "tests/node/package-lock.json",
]


@pytest.mark.parametrize("path", LEFT_OUT)
def test_dockerignore_leaves_out_secrets_and_local_data(path):
    assert excluded(path, dockerignore_patterns())


@pytest.mark.parametrize("path", KEPT)
def test_dockerignore_keeps_what_the_image_runs(path):
    assert not excluded(path, dockerignore_patterns())


def dockerfile_instructions() -> list[tuple[str, str]]:
    text = (PROJECT_DIR / "Dockerfile").read_text().replace("\\\n", " ")
    found = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            found.append((keyword.upper(), rest.strip()))
    return found


def test_the_image_runs_as_a_numeric_non_root_user():
    instructions = dockerfile_instructions()
    users = [i for i, (keyword, _) in enumerate(instructions) if keyword == "USER"]
    assert users, "the Dockerfile sets no USER: the processes would run as root"
    user = instructions[users[-1]][1].split(":")[0]
    assert user.isdigit() and int(user) != 0  # numeric: runAsNonRoot can verify it
    runs_after = [k for k, _ in instructions[users[-1] :] if k in ("RUN", "COPY", "ADD")]
    assert not runs_after, "files created after USER would belong to the runtime user"


def collectstatic_command() -> str:
    runs = [rest for keyword, rest in dockerfile_instructions() if keyword == "RUN"]
    found = [run for run in runs if "collectstatic" in run]
    assert len(found) == 1, runs
    return found[0]


def test_the_dockerfile_collects_static_files_with_production_settings(owner, settings, tmp_path):
    """The Dockerfile's own collectstatic line, run as a process (the image's build step
    without an engine), writes the manifest; pages then render with the manifest storage
    production uses."""
    words = shlex.split(collectstatic_command())
    assert "DEBUG=0" in words
    environment = base_environment(runtime_venv())
    environment["STATIC_ROOT"] = str(tmp_path / "static")
    done = subprocess.run(
        ["sh", "-c", collectstatic_command()],
        cwd=PROJECT_DIR,
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert (tmp_path / "static" / "staticfiles.json").exists()

    settings.DEBUG = False
    settings.STATIC_ROOT = tmp_path / "static"
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "servestatic.storage.CompressedManifestStaticFilesStorage"},
    }
    client = Client()
    client.force_login(owner)
    page = client.get("/")
    assert page.status_code == 200
    assert re.search(r'/static/css/app\.[0-9a-f]{12}\.css"', page.content.decode())
