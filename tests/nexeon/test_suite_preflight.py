"""`make test` never falls back to SQLite, and says in one line which service is missing."""

import subprocess
import sys

import pytest

from tests.support import PROJECT_DIR, manage_env

A_FAST_TEST = "tests/accounts/test_keys.py"


def run_pytest(**overrides: str | None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "pytest", A_FAST_TEST, "-q", "-p", "no:cacheprovider"],
        cwd=PROJECT_DIR,
        env=manage_env(**overrides),
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"DATABASE_URL": "postgres://postgres@127.0.0.1:1/nexeon"}, "PostgreSQL at 127.0.0.1:1"),
        ({"REDIS_URL": "redis://127.0.0.1:1/0"}, "Redis at redis://127.0.0.1:1/0"),
        ({"DATABASE_URL": None}, "the suite runs on PostgreSQL"),
    ],
)
def test_a_missing_service_stops_the_suite_with_one_clear_line(overrides, message):
    result = run_pytest(**overrides)
    assert result.returncode == 2
    assert message in result.stdout + result.stderr
    assert "passed" not in result.stdout
