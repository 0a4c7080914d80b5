"""What the browser tests share."""

import pytest

from tests.e2e.browser import chromium

# The served app with mandatory email verification and mail written to files.
from tests.e2e.test_first_api_call import server  # noqa: F401
from tests.support import manage_env, serving_nexeon, test_database_url


@pytest.fixture
def app(transactional_db, redis_client):
    """The app served by uvicorn, as `make run` serves it (DEBUG, no e-mail verification)."""
    environment = manage_env(
        DATABASE_URL=test_database_url(), DEBUG="1", ACCOUNT_EMAIL_VERIFICATION="none"
    )
    with serving_nexeon(environment) as (base, _):
        yield base


@pytest.fixture
def browser():
    """Chromium for a test with several pages; a test names it after the fixtures that write
    rows, since the ORM refuses to run while Playwright's loop does."""
    with chromium() as browser:
        yield browser
