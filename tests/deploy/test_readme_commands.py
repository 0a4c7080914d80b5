"""The README's commands work as printed: `make run` and `make test` are the suite's own
(tests/deploy/test_process_commands.py runs `make run`), and the Quickstart's key command
and `make credits` run here, beside `make run`'s embedded default, exactly as printed."""

from __future__ import annotations

import re
import subprocess
from decimal import Decimal

import pytest

from tests.deploy.docs import fenced_commands
from tests.deploy.stack import project_with_runtime_venv

pytestmark = pytest.mark.deploy

MAKE_RUN = "make run     # fresh clone: creates .venv, installs, migrates, serves "
KEY_COMMAND = "DEBUG=1 .venv/bin/python manage.py create_api_key you@example.com --credits 10"
CREDITS_COMMAND = "make credits EMAIL=you@example.com USD=10   # more credits for a user's "


def test_the_readme_prints_these_commands():
    printed = fenced_commands("README.md")
    assert len(printed) == 4
    assert printed[0].startswith(MAKE_RUN) and printed[1].startswith("make test ")
    assert printed[2] == KEY_COMMAND
    assert printed[3].startswith(CREDITS_COMMAND)


def test_the_quickstart_key_command_works_as_printed(tmp_path):
    project = project_with_runtime_venv(tmp_path / "checkout")
    # A newcomer's shell beside `make run`: no DATABASE_URL, REDIS_URL nor SECRET_KEY.
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(tmp_path), "DATA_DIR": str(tmp_path)}
    run = {"shell": True, "cwd": project, "env": env, "capture_output": True, "text": True}
    migrated = subprocess.run("DEBUG=1 .venv/bin/python manage.py migrate", **run, timeout=300)
    assert migrated.returncode == 0, migrated.stderr
    done = subprocess.run(fenced_commands("README.md")[2], **run, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1].startswith("nex-sk-")

    # `make credits`, as printed, beside the same embedded default (no SECRET_KEY either).
    before = _balance(re.search(r"balance \$([\d,.]+)", done.stdout))
    granted = subprocess.run(fenced_commands("README.md")[3], **run, timeout=120)
    assert granted.returncode == 0, granted.stderr
    assert "Granted $10.00 to " in granted.stdout
    assert _balance(re.search(r"balance \$([\d,.]+)", granted.stdout)) == before + 10

    # Without its arguments it says how to call it.
    bare = subprocess.run("make credits", **run, timeout=60)
    assert bare.returncode == 2 and "usage: make credits EMAIL=" in bare.stderr


def _balance(found: re.Match | None) -> Decimal:
    assert found is not None
    return Decimal(found[1].replace(",", ""))
