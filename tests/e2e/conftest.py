"""What the browser tests share."""

import pytest

from tests.support import manage_env, serving_nexeon, test_database_url


@pytest.fixture
def app(transactional_db, redis_client):
    """The app served by uvicorn, as `make run` serves it (DEBUG, no e-mail verification)."""
    environment = manage_env(
        DATABASE_URL=test_database_url(), DEBUG="1", ACCOUNT_EMAIL_VERIFICATION="none"
    )
    with serving_nexeon(environment) as (base, _):
        yield base
