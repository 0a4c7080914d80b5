"""docs/operations.md's backups and upgrades, on a PostgreSQL the test starts itself: the
printed pg_dump and pg_restore bring a database back with its ledger, no model change lacks
its migration, and each app's newest migration reverses and applies again (a rollback)."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator

import pytest

from tests.deploy.docs import fenced_commands
from tests.own_services import OwnPostgres
from tests.support import PROJECT_DIR, manage_env, run_manage

pytestmark = pytest.mark.deploy

APPS = ("accounts", "apigateway", "billing", "usage")


@pytest.fixture(scope="module")
def postgres() -> Iterator[OwnPostgres]:
    server = OwnPostgres()
    server.create()
    yield server
    server.destroy()


@pytest.fixture(scope="module")
def environment(postgres: OwnPostgres) -> dict[str, str]:
    """A deployment's processes on that database; the money state in memory (no Redis), so
    that nothing here touches the shared test Redis."""
    env = manage_env(
        DATABASE_URL=postgres.url,
        DEBUG="0",
        SECRET_KEY="test-only",
        ALLOWED_HOSTS="localhost",
        REDIS_URL=None,
        CACHE_REDIS_URL=None,
        CELERY_BROKER_URL=None,
    )
    done = run_manage("migrate", "--noinput", env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    return env


def ledger_total(url: str) -> int:
    done = subprocess.run(
        ["psql", url, "-tAc", "SELECT coalesce(sum(amount_nanos), 0) FROM billing_ledgerentry"],
        capture_output=True,
        text=True,
        check=True,
    )
    return int(done.stdout)


def grant(environment: dict[str, str], email: str, dollars: int) -> None:
    done = run_manage("create_api_key", email, "--credits", str(dollars), env=environment)
    assert done.returncode == 0, done.stderr


def test_the_printed_dump_and_restore_bring_the_ledger_back(environment, postgres, tmp_path):
    dump, restore = fenced_commands("docs/operations.md", "Backups and restore")
    assert dump.startswith("pg_dump ") and restore.startswith("pg_restore ")
    grant(environment, "first@example.com", 5)
    backed_up = ledger_total(postgres.url)
    assert backed_up == 5 * 10**9

    def run(command: str) -> None:
        done = subprocess.run(
            command, shell=True, cwd=tmp_path, env=environment, capture_output=True, text=True
        )
        assert done.returncode == 0, done.stderr

    run(dump)
    assert (tmp_path / "nexeon.dump").stat().st_size > 0
    grant(environment, "later@example.com", 7)  # written after the backup
    assert ledger_total(postgres.url) == 12 * 10**9

    run(restore)
    assert ledger_total(postgres.url) == backed_up
    done = run_manage("migrate", "--check", env=environment)
    assert done.returncode == 0, done.stdout + done.stderr  # the schema came back whole


def test_no_model_change_lacks_its_migration(environment):
    done = run_manage("makemigrations", "--check", "--dry-run", env=environment)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("app", APPS)
def test_each_apps_newest_migration_reverses_and_applies_again(environment, app):
    names = sorted(
        path.stem
        for path in (PROJECT_DIR / app / "migrations").glob("[0-9]*.py")
        if path.stem[:4].isdigit()
    )
    assert len(names) >= 2, names
    back = run_manage("migrate", app, names[-2], "--noinput", env=environment, timeout=300)
    assert back.returncode == 0, back.stdout + back.stderr
    assert f"Unapplying {app}.{names[-1]}" in back.stdout
    forward = run_manage("migrate", "--noinput", env=environment, timeout=300)
    assert forward.returncode == 0, forward.stdout + forward.stderr
    assert f"Applying {app}.{names[-1]}" in forward.stdout
