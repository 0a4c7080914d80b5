"""A new API key is shown in the answer to the form that created it, and never written to
the session table (found: it sat there in plaintext until the next page view)."""

import json
import re

from django.contrib.sessions.models import Session

from accounts import keys
from accounts.models import ApiKey


def test_a_new_key_is_shown_in_the_post_answer_and_never_stored_in_the_session(
    client, owner, organization
):
    client.force_login(owner)
    answer = client.post("/keys/create", {"name": "ci"})
    assert answer.status_code == 200
    assert "no-store" in answer["Cache-Control"]
    shown = re.search(r"nex-sk-[A-Za-z0-9]{48}", answer.content.decode()).group(0)
    assert ApiKey.objects.get(digest=keys.digest(shown)).organization == organization
    for session in Session.objects.all():
        assert shown not in session.session_data
        assert shown not in json.dumps(session.get_decoded())
    assert shown not in client.get("/keys/").content.decode()
