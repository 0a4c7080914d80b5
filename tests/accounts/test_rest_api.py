"""The REST API with session and management-token auth; tenants stay apart."""

import pytest
from rest_framework.test import APIClient

from accounts import keys
from accounts.models import ApiKey, Membership, Role
from accounts.services import api_key_create, management_token_create, organization_create


@pytest.fixture
def api():
    return APIClient()


@pytest.fixture
def token(owner, organization):
    return management_token_create(user=owner, organization=organization, name="ci")[1]


def test_a_management_token_lists_organizations_and_creates_a_key_shown_once(
    api, token, organization
):
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    organizations = api.get("/api/organizations/").json()
    assert [(o["name"], o["role"]) for o in organizations] == [("Acme", "owner")]
    created = api.post(
        f"/api/organizations/{organization.pk}/keys/",
        {"name": "svc", "rpm_limit": 30},
        format="json",
    )
    assert created.status_code == 201
    body = created.json()
    assert keys.looks_like_key(body["key"]) and body["rpm_limit"] == 30
    listed = api.get(f"/api/organizations/{organization.pk}/keys/").json()
    assert "key" not in listed[0] and listed[0]["prefix"] == body["prefix"]
    revoked = api.post(f"/api/organizations/{organization.pk}/keys/{body['id']}/revoke/")
    assert revoked.json()["revoked_at"] is not None
    usage = api.get(f"/api/organizations/{organization.pk}/usage/").json()
    assert usage["charged_requests"] == 0


@pytest.mark.django_db
def test_a_bad_or_missing_token_is_401(api):
    assert api.get("/api/organizations/").status_code in (401, 403)
    api.credentials(HTTP_AUTHORIZATION="Bearer nex-mt-" + "x" * 48)
    assert api.get("/api/organizations/").status_code == 401


def test_the_session_works_too(api, owner, organization):
    api.force_authenticate(owner)
    members = api.get(f"/api/organizations/{organization.pk}/members/").json()
    assert [m["email"] for m in members] == ["owner@example.com"]


def test_a_member_reads_but_cannot_create_or_revoke(api, organization, owner, django_user_model):
    user = django_user_model.objects.create_user(email="m@example.com", password="pw-1234567")
    Membership.objects.create(organization=organization, user=user, role=Role.MEMBER)
    key = api_key_create(organization=organization, name="k", created_by=owner).api_key
    api.force_authenticate(user)
    assert api.get(f"/api/organizations/{organization.pk}/keys/").status_code == 200
    assert api.post(f"/api/organizations/{organization.pk}/keys/", {"name": "x"}).status_code == 403
    assert (
        api.post(f"/api/organizations/{organization.pk}/keys/{key.pk}/revoke/").status_code == 403
    )
    assert ApiKey.objects.get(pk=key.pk).revoked_at is None


def test_an_outsider_gets_404_for_another_tenants_ids(api, outsider, organization, owner):
    key = api_key_create(organization=organization, name="k", created_by=owner).api_key
    mine = organization_create(name="Mine", owner=outsider)
    api.force_authenticate(outsider)
    base = f"/api/organizations/{organization.pk}"
    for path in ("/keys/", "/members/", "/usage/"):
        assert api.get(base + path).status_code == 404
    assert api.post(base + f"/keys/{key.pk}/revoke/").status_code == 404
    assert api.post(f"/api/organizations/{mine.pk}/keys/{key.pk}/revoke/").status_code == 404
    assert ApiKey.objects.get(pk=key.pk).revoked_at is None


@pytest.mark.django_db
def test_the_openapi_schema_and_its_docs_page_are_served_without_a_cdn(client, owner):
    client.force_login(owner)
    schema = client.get("/api/schema/")
    assert schema.status_code == 200 and b"/api/organizations/" in schema.content
    docs = client.get("/api/docs/").content.decode()
    assert "redoc" in docs.lower()
    assert "cdn." not in docs and "unpkg" not in docs


@pytest.mark.parametrize("limit", [0, -5])
def test_a_spend_limit_is_above_zero_or_none(api, token, organization, limit):
    """A monthly spend limit of 0 would read as no limit at all: refused, as negatives are."""
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    refused = api.post(
        f"/api/organizations/{organization.pk}/keys/",
        {"name": "capped", "monthly_spend_limit_nanos": limit},
        format="json",
    )
    assert refused.status_code == 400
    assert "monthly_spend_limit_nanos" in refused.json()
    assert not ApiKey.objects.filter(name="capped").exists()
    with pytest.raises(ValueError, match="above zero"):
        api_key_create(organization=organization, name="capped", monthly_spend_limit_nanos=limit)
    unlimited = api.post(
        f"/api/organizations/{organization.pk}/keys/",
        {"name": "open", "monthly_spend_limit_nanos": None},
        format="json",
    )
    assert unlimited.status_code == 201 and unlimited.json()["monthly_spend_limit_nanos"] is None
