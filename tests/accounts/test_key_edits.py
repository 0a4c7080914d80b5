"""Editing a key after creation: name, limits, expiry and allowed models (picked from the
catalog), on the dashboard and through the REST API, with the gateway told after commit."""

import re
from datetime import timedelta

import pytest
from django.contrib.sessions.models import Session
from django.utils import timezone
from rest_framework.test import APIClient

from accounts import keys
from accounts.models import ApiKey, Membership, Role
from accounts.services import api_key_create, api_key_revoke, organization_create
from credit import keys as credit_keys


@pytest.fixture
def api_key(organization, owner):
    return api_key_create(organization=organization, name="prod", created_by=owner).api_key


def edit(client, api_key, **fields):
    data = {"name": api_key.name, "expiry": "keep", **fields}
    return client.post(f"/keys/{api_key.pk}/edit", data)


def test_the_keys_page_links_each_key_to_an_edit_form_with_its_spend_limit(client, owner, api_key):
    """The 402 for a spent key says to raise its limit on the API keys page: it is there."""
    client.force_login(owner)
    page = client.get("/keys/").content.decode()
    assert f'href="/keys/{api_key.pk}/edit"' in page
    form = client.get(f"/keys/{api_key.pk}/edit").content.decode()
    for field in ("monthly_spend_limit", "rpm_limit", "tpm_limit", "expiry", "allowed_models"):
        assert f'name="{field}"' in form


def test_owner_edits_name_limits_expiry_and_models(
    client, owner, api_key, redis_client, django_capture_on_commit_callbacks
):
    client.force_login(owner)
    redis_client.set(credit_keys.api_key(api_key.digest), b'{"stale": true}')
    with django_capture_on_commit_callbacks(execute=True):
        response = edit(
            client,
            api_key,
            name="batch",
            monthly_spend_limit="12.5",
            rpm_limit="30",
            tpm_limit="9000",
            expiry="30",
            allowed_models=["gpt-4o-mini", "claude-3-5-haiku"],
        )
    assert response.status_code == 302
    api_key.refresh_from_db()
    assert api_key.name == "batch"
    assert api_key.monthly_spend_limit_nanos == 12_500_000_000
    assert (api_key.rpm_limit, api_key.tpm_limit) == (30, 9000)
    assert api_key.allowed_models == ["gpt-4o-mini", "claude-3-5-haiku"]
    assert timedelta(days=29) < api_key.expires_at - timezone.now() <= timedelta(days=30)
    # The gateway's shared copy is replaced by the marker that sends lookups to the database.
    assert redis_client.get(credit_keys.api_key(api_key.digest)) == b"~"
    page = client.get("/keys/").content.decode()
    assert "$12.50" in page and "gpt-4o-mini, claude-3-5-haiku" in page

    # Keep the expiry, clear the limits and the models: every model, no limit.
    with django_capture_on_commit_callbacks(execute=True):
        edit(client, api_key, name="batch")
    expires_at = api_key.expires_at
    api_key.refresh_from_db()
    assert api_key.expires_at == expires_at
    assert api_key.allowed_models == [] and api_key.monthly_spend_limit_nanos is None
    assert api_key.rpm_limit is None
    edit(client, api_key, name="batch", expiry="never")
    api_key.refresh_from_db()
    assert api_key.expires_at is None


def test_allowed_models_are_checkboxes_of_the_catalog_not_free_text(client, owner, api_key):
    client.force_login(owner)
    for path in ("/keys/", f"/keys/{api_key.pk}/edit"):
        page = client.get(path).content.decode()
        assert 'type="checkbox" name="allowed_models" value="gpt-4o-mini"' in page
        assert 'type="text" name="allowed_models"' not in page


def test_an_unknown_model_is_a_form_error_and_changes_nothing(client, owner, api_key):
    client.force_login(owner)
    response = edit(client, api_key, name="renamed", allowed_models=["gpt-4o", "gpt-9-ultra"])
    assert response.status_code == 200
    page = response.content.decode()
    assert 'class="form-error" role="alert"' in page and "gpt-9-ultra" in page
    api_key.refresh_from_db()
    assert api_key.name == "prod" and api_key.allowed_models == []

    created = client.post("/keys/create", {"name": "new", "allowed_models": ["nope-1"]})
    assert created.status_code == 200 and "nope-1" in created.content.decode()
    assert not ApiKey.objects.filter(name="new").exists()


def test_a_model_the_catalog_dropped_stays_on_the_key_until_unchecked(client, owner, api_key):
    """A key limited to a model the catalog no longer has is never widened by an edit."""
    ApiKey.objects.filter(pk=api_key.pk).update(allowed_models=["retired-model"])
    client.force_login(owner)
    form = client.get(f"/keys/{api_key.pk}/edit").content.decode()
    assert re.search(r'value="retired-model" id="[^"]+" checked', form)
    edit(client, api_key, name="prod", rpm_limit="5", allowed_models=["retired-model"])
    api_key.refresh_from_db()
    assert api_key.allowed_models == ["retired-model"] and api_key.rpm_limit == 5


def test_a_revoked_key_cannot_be_edited(client, owner, api_key):
    api_key_revoke(api_key=api_key)
    client.force_login(owner)
    edit(client, api_key, name="back", rpm_limit="1")
    api_key.refresh_from_db()
    assert api_key.name == "prod" and api_key.rpm_limit is None


def test_a_member_cannot_edit_and_an_outsider_gets_404(
    client, organization, api_key, outsider, django_user_model
):
    member = django_user_model.objects.create_user(email="m@example.com", password="pw-1234567")
    Membership.objects.create(organization=organization, user=member, role=Role.MEMBER)
    client.force_login(member)
    assert client.get(f"/keys/{api_key.pk}/edit").status_code == 403
    assert edit(client, api_key, name="x").status_code == 403
    organization_create(name="Elsewhere", owner=outsider)
    client.force_login(outsider)
    assert client.get(f"/keys/{api_key.pk}/edit").status_code == 404
    assert edit(client, api_key, name="x").status_code == 404
    api_key.refresh_from_db()
    assert api_key.name == "prod"


def test_a_new_key_is_shown_in_the_answer_itself_and_never_stored_in_the_session(
    client, owner, organization
):
    """Kept in the session, the plaintext would sit in the session table until the next page
    view."""
    client.force_login(owner)
    response = client.post("/keys/create", {"name": "once"})
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    shown = response.context["new_key"]["key"]
    assert keys.looks_like_key(shown) and shown in response.content.decode()
    for session in Session.objects.all():
        assert shown not in session.session_data
        assert shown not in repr(session.get_decoded())
    assert shown not in client.get("/keys/").content.decode()


# --- the REST API, through the same service ------------------------------------------------


@pytest.fixture
def api(owner):
    client = APIClient()
    client.force_authenticate(owner)
    return client


def test_the_api_edits_a_key_partially(api, organization, api_key, redis_client):
    path = f"/api/organizations/{organization.pk}/keys/{api_key.pk}/"
    response = api.patch(
        path, {"monthly_spend_limit_nanos": 5_000_000, "allowed_models": ["gpt-4o"]}, format="json"
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["monthly_spend_limit_nanos"] == 5_000_000 and body["allowed_models"] == ["gpt-4o"]
    assert body["name"] == "prod" and "key" not in body
    api_key.refresh_from_db()
    assert api_key.allowed_models == ["gpt-4o"] and api_key.name == "prod"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"allowed_models": ["gpt-4o", "made-up"]}, "allowed_models"),
        ({"allowed_models": "gpt-4o"}, "allowed_models"),
        ({"monthly_spend_limit_nanos": 0}, "monthly_spend_limit_nanos"),
        ({"rpm_limit": -1}, "rpm_limit"),
        ({"prefix": "nex-sk-abc"}, None),  # read-only: ignored, never an edit of the secret
    ],
)
def test_the_api_refuses_bad_edits_with_400(api, organization, api_key, change, field):
    path = f"/api/organizations/{organization.pk}/keys/{api_key.pk}/"
    response = api.patch(path, change, format="json")
    api_key.refresh_from_db()
    assert api_key.allowed_models == [] and api_key.monthly_spend_limit_nanos is None
    if field is None:
        assert response.status_code == 200 and api_key.prefix != "nex-sk-abc"
        return
    assert response.status_code == 400
    assert field in response.json()


def test_the_api_refuses_an_unknown_model_at_creation(api, organization):
    response = api.post(
        f"/api/organizations/{organization.pk}/keys/",
        {"name": "svc", "allowed_models": ["gpt-4o", "not-a-model"]},
        format="json",
    )
    assert response.status_code == 400 and "allowed_models" in response.json()
    assert not ApiKey.objects.filter(name="svc").exists()


def test_the_api_lets_members_read_but_not_edit_and_hides_other_tenants(
    organization, api_key, outsider, django_user_model
):
    member = django_user_model.objects.create_user(email="m@example.com", password="pw-1234567")
    Membership.objects.create(organization=organization, user=member, role=Role.MEMBER)
    path = f"/api/organizations/{organization.pk}/keys/{api_key.pk}/"
    client = APIClient()
    client.force_authenticate(member)
    assert client.patch(path, {"name": "x"}, format="json").status_code == 403
    client.force_authenticate(outsider)
    assert client.patch(path, {"name": "x"}, format="json").status_code == 404
    api_key.refresh_from_db()
    assert api_key.name == "prod"


def test_the_api_refuses_to_edit_a_revoked_key(api, organization, api_key):
    api_key_revoke(api_key=api_key)
    path = f"/api/organizations/{organization.pk}/keys/{api_key.pk}/"
    response = api.patch(path, {"name": "again"}, format="json")
    assert response.status_code == 400
    api_key.refresh_from_db()
    assert api_key.name == "prod"
