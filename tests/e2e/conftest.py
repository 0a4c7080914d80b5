"""Fixtures shared by the browser tests."""

# The served app with mandatory email verification and mail written to files.
from tests.e2e.test_first_api_call import server  # noqa: F401
