"""Management tokens act on ONE organization, expire, die with a password change or reset,
and are shown once without passing through the session.

What this guards against: a token that acts on every organization of its user, never
expires, survives a password change, or sits in plaintext in the session table."""

from __future__ import annotations

import json
import re
from datetime import timedelta

import pytest
from django.contrib.sessions.models import Session
from django.utils import timezone
from rest_framework.test import APIClient

from accounts import keys
from accounts.models import ManagementToken, Membership, Role
from accounts.services import api_key_create, management_token_create, organization_create
from tests.support import manage_env, run_manage, test_database_url


@pytest.fixture
def api():
    return APIClient()


@pytest.fixture
def other(owner):
    """A second organization the same user owns."""
    return organization_create(name="Side", owner=owner)


def bearer(api: APIClient, token: str) -> APIClient:
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return api


def test_a_token_acts_on_its_organization_only(api, owner, organization, other):
    _, token = management_token_create(user=owner, organization=organization, name="ci")
    bearer(api, token)
    listed = api.get("/api/organizations/").json()
    assert [o["id"] for o in listed] == [organization.pk]
    mine = f"/api/organizations/{organization.pk}"
    assert api.get(f"{mine}/keys/").status_code == 200
    assert api.post(f"{mine}/keys/", {"name": "ok"}, format="json").status_code == 201

    outside_key = api_key_create(organization=other, name="theirs", created_by=owner).api_key
    theirs = f"/api/organizations/{other.pk}"
    for path in ("/keys/", "/members/", "/usage/"):
        assert api.get(theirs + path).status_code == 404, path
    assert api.post(f"{theirs}/keys/", {"name": "x"}, format="json").status_code == 404
    assert api.post(f"{theirs}/keys/{outside_key.pk}/revoke/").status_code == 404
    assert api.post(f"{mine}/keys/{outside_key.pk}/revoke/").status_code == 404
    outside_key.refresh_from_db()
    assert outside_key.revoked_at is None and not other.api_keys.filter(name="x").exists()


def test_a_token_stops_when_its_user_leaves_the_organization(api, owner, organization):
    user = owner.__class__.objects.create_user(email="m@example.com", password="pw-1234567")
    membership = Membership.objects.create(organization=organization, user=user, role=Role.ADMIN)
    _, token = management_token_create(user=user, organization=organization, name="ci")
    bearer(api, token)
    assert api.get(f"/api/organizations/{organization.pk}/keys/").status_code == 200
    membership.delete()
    assert api.get(f"/api/organizations/{organization.pk}/keys/").status_code == 404
    assert api.get("/api/organizations/").json() == []


def test_a_token_is_only_made_for_an_organization_of_its_user(owner, outsider, organization):
    with pytest.raises(ValueError, match="member"):
        management_token_create(user=outsider, organization=organization, name="x")


def test_a_token_expires(api, owner, organization):
    stored, token = management_token_create(user=owner, organization=organization, name="ci")
    assert timedelta(days=89) < stored.expires_at - timezone.now() <= timedelta(days=90)
    bearer(api, token)
    assert api.get("/api/organizations/").status_code == 200
    ManagementToken.objects.filter(pk=stored.pk).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    refused = api.get("/api/organizations/")
    assert refused.status_code == 401 and "expired" in refused.json()["detail"]


@pytest.mark.parametrize("days", [0, -1, 366, 10_000])
def test_a_token_lives_at_most_a_year(owner, organization, days):
    with pytest.raises(ValueError, match="365"):
        management_token_create(user=owner, organization=organization, name="x", days=days)


def test_a_password_change_revokes_the_users_tokens(api, client, owner, organization, settings):
    settings.ACCOUNT_EMAIL_VERIFICATION = "none"
    _, token = management_token_create(user=owner, organization=organization, name="ci")
    bearer(api, token)
    assert api.get("/api/organizations/").status_code == 200
    client.force_login(owner)
    changed = client.post(
        "/accounts/password/change/",
        {
            "oldpassword": "correct horse 1",
            "password1": "a-brand-new-passphrase-7",
            "password2": "a-brand-new-passphrase-7",
        },
    )
    assert changed.status_code == 302
    assert api.get("/api/organizations/").status_code == 401
    assert ManagementToken.objects.get(user=owner).revoked_at is not None


def test_a_password_reset_revokes_the_users_tokens(
    api, client, owner, organization, mailoutbox, settings
):
    settings.ACCOUNT_EMAIL_VERIFICATION = "none"
    _, token = management_token_create(user=owner, organization=organization, name="ci")
    client.post("/accounts/password/reset/", {"email": owner.email})
    link = re.search(r"http://testserver(/accounts/password/reset/key/\S+)", mailoutbox[0].body)
    form_page = client.get(link.group(1), follow=True)
    reset = client.post(
        form_page.request["PATH_INFO"],
        {"password1": "a-brand-new-passphrase-7", "password2": "a-brand-new-passphrase-7"},
    )
    assert reset.status_code == 302
    owner.refresh_from_db()
    assert owner.check_password("a-brand-new-passphrase-7")
    assert bearer(api, token).get("/api/organizations/").status_code == 401


def test_the_admin_password_form_revokes_the_users_tokens(client, owner, organization, outsider):
    """An operator setting a user's password in the admin is a reset too."""
    management_token_create(user=owner, organization=organization, name="ci")
    outsider.is_staff = outsider.is_superuser = True
    outsider.save()
    client.force_login(outsider)
    done = client.post(
        f"/admin/accounts/user/{owner.pk}/password/",
        {
            "password1": "a-brand-new-passphrase-7",
            "password2": "a-brand-new-passphrase-7",
            "usable_password": "true",
        },
    )
    assert done.status_code == 302, done.content.decode()[:2000]
    assert ManagementToken.objects.get(user=owner).revoked_at is not None


# --- the settings page -------------------------------------------------------------------


def test_the_new_token_is_shown_in_the_answer_and_never_stored_in_the_session(
    client, owner, organization, other
):
    client.force_login(owner)
    answer = client.post(
        "/settings/tokens/create", {"name": "ci", "organization": other.pk, "days": "30"}
    )
    assert answer.status_code == 200
    assert "no-store" in answer["Cache-Control"]
    token = re.search(r"nex-mt-[A-Za-z0-9]{48}", answer.content.decode()).group(0)
    stored = ManagementToken.objects.get(digest=keys.digest(token))
    assert stored.organization == other and stored.name == "ci"
    assert timedelta(days=29) < stored.expires_at - timezone.now() <= timedelta(days=30)
    for session in Session.objects.all():
        assert token not in session.session_data
        assert token not in json.dumps(session.get_decoded())
    page = client.get("/settings/").content.decode()
    assert token not in page and stored.prefix in page and "Side" in page


@pytest.mark.parametrize(
    ("field", "value"), [("organization", "foreign"), ("days", "10000"), ("name", "")]
)
def test_a_bad_token_form_is_an_error_on_the_page(
    client, owner, organization, outsider, field, value
):
    theirs = organization_create(name="Theirs", owner=outsider)
    client.force_login(owner)
    data = {"name": "ci", "organization": organization.pk, "days": "90"}
    data[field] = theirs.pk if value == "foreign" else value
    answer = client.post("/settings/tokens/create", data)
    assert answer.status_code == 400
    assert 'class="errorlist' in answer.content.decode()
    assert not ManagementToken.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_the_create_command_scopes_and_limits_the_token(owner, organization, other):
    env = manage_env(DEBUG="1", DATABASE_URL=test_database_url())
    done = run_manage(
        "create_management_token",
        owner.email,
        "--organization",
        other.slug,
        "--days",
        "30",
        env=env,
    )
    assert done.returncode == 0, done.stderr
    token = done.stdout.strip().splitlines()[-1]
    stored = ManagementToken.objects.get(digest=keys.digest(token))
    assert stored.organization == other
    ambiguous = run_manage("create_management_token", owner.email, env=env)
    assert ambiguous.returncode != 0 and "--organization" in ambiguous.stderr
    assert other.slug in ambiguous.stderr and organization.slug in ambiguous.stderr
