"""The served apps and the browser that the e2e tests share."""

from collections.abc import Iterator

import pytest

from apigateway.catalog import catalog_load_defaults
from tests.e2e.browser import chromium
from tests.support import manage_env, serving_nexeon, test_database_url


def _served(verification: str) -> Iterator[str]:
    environment = manage_env(
        DATABASE_URL=test_database_url(), DEBUG="1", ACCOUNT_EMAIL_VERIFICATION=verification
    )
    with serving_nexeon(environment) as (base, _):
        yield base


@pytest.fixture
def app(transactional_db, redis_client):
    """The app served by uvicorn, as `make run` serves it (DEBUG, no e-mail verification)."""
    yield from _served("none")


@pytest.fixture
def app_verifying(transactional_db, redis_client):
    """The app served by uvicorn with mandatory e-mail verification, as in production."""
    yield from _served("mandatory")


@pytest.fixture
def server(transactional_db, redis_client, tmp_path):
    """(base URL, mail directory): the app with mandatory e-mail verification, its mail
    written to files the test reads, and OpenAI's models offered; a key's changes reach the
    gateway within 2 s."""
    catalog_load_defaults()
    mail_dir = tmp_path / "mail"
    environment = manage_env(
        DATABASE_URL=test_database_url(),
        DEBUG="1",
        EMAIL_URL=f"filemail://{mail_dir}",
        ACCOUNT_EMAIL_VERIFICATION="mandatory",
        OPENAI_API_KEY="sk-e2e-operator",
        GATEWAY_KEY_CACHE_SECONDS="2",
    )
    with serving_nexeon(environment) as (base, _):
        yield base, mail_dir


@pytest.fixture
def browser():
    """Chromium for a test with several pages; a test names it after the fixtures that write
    rows, since the ORM refuses to run while Playwright's loop does."""
    with chromium() as browser:
        yield browser
