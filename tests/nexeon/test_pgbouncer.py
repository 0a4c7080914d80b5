"""Behind PgBouncer in transaction mode (many web and worker processes sharing a few
PostgreSQL connections), DATABASE_TRANSACTION_POOLING=1 turns off Django's server-side
cursors, which need one server connection per client (psycopg's prepared statements are
already off: Django's default)."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
from django.conf import settings

from accounts.models import User
from tests.own_services import _wait_for_port
from tests.support import free_port, manage_env, run_manage

# A queryset read in chunks through a server-side cursor; between two chunks another client
# holds the server connection the cursor lives on (PgBouncer hands out the one released
# last), so the next chunk is fetched on another server connection.
CHUNKS_ACROSS_SERVER_CONNECTIONS = """
import os
import psycopg
from accounts.models import User
users = User.objects.order_by("pk").values_list("email", flat=True).iterator(chunk_size=1)
read = [next(users)]
other = psycopg.connect(os.environ["DATABASE_URL"])
other.execute("BEGIN")
other.execute("SELECT 1")
try:
    read.extend(users)
    print("read", len(read))
except Exception as error:
    print(type(error).__name__, str(error).splitlines()[0])
"""


@pytest.fixture
def pgbouncer():
    """A PgBouncer in transaction mode in front of the test PostgreSQL (run as postgres:
    it refuses root)."""
    binary = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"
    assert Path(binary).exists(), "PgBouncer is needed (make test installs Debian's)"
    database = settings.DATABASES["default"]
    port = free_port()
    folder = Path(tempfile.mkdtemp(prefix="nexeon-pgbouncer-"))
    (folder / "pgbouncer.ini").write_text(
        "[databases]\n"
        f"* = host={database['HOST'] or '127.0.0.1'} port={database['PORT'] or 5432} "
        f"user={database['USER']}\n"
        "[pgbouncer]\n"
        f"listen_addr = 127.0.0.1\nlisten_port = {port}\nunix_socket_dir =\n"
        "auth_type = any\npool_mode = transaction\ndefault_pool_size = 4\n"
        f"logfile = {folder}/pgbouncer.log\n"
    )
    shutil.chown(folder, "postgres", "postgres")
    process = subprocess.Popen(
        ["runuser", "-u", "postgres", "--", binary, str(folder / "pgbouncer.ini")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_for_port(port)
        yield f"postgres://{database['USER']}@127.0.0.1:{port}/{database['NAME']}"
    finally:
        process.terminate()
        process.wait(timeout=10)
        shutil.rmtree(folder, ignore_errors=True)


def read_in_chunks(url: str, **env: str) -> str:
    done = run_manage(
        "shell",
        "--no-imports",
        "-c",
        CHUNKS_ACROSS_SERVER_CONNECTIONS,
        env=manage_env(DATABASE_URL=url, **env),
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().splitlines()[-1]


@pytest.mark.django_db(transaction=True)
def test_transaction_pooling_needs_the_flag_and_works_with_it(pgbouncer):
    for number in range(3):
        User.objects.create_user(email=f"user{number}@example.com")
    assert "does not exist" in read_in_chunks(pgbouncer)  # what the flag is for
    assert read_in_chunks(pgbouncer, DATABASE_TRANSACTION_POOLING="1") == "read 3"


def test_the_flag_sets_what_django_documents_for_transaction_pooling():
    code = (
        "from django.conf import settings; d = settings.DATABASES['default']; "
        "print(d['DISABLE_SERVER_SIDE_CURSORS'], d['OPTIONS'].get('prepare_threshold'))"
    )
    done = run_manage(
        "shell", "--no-imports", "-c", code, env=manage_env(DATABASE_TRANSACTION_POOLING="1")
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["True", "None"]
