"""The API keys pages, for an owner, a member and an outsider."""

import pytest

from accounts import keys
from accounts.models import ApiKey, Membership, Role
from accounts.services import api_key_create, organization_create


@pytest.fixture
def owners_key(organization, owner):
    return api_key_create(organization=organization, name="prod", created_by=owner).api_key


def test_owner_creates_a_key_and_sees_it_exactly_once(client, owner, organization):
    client.force_login(owner)
    response = client.post("/keys/create", {"name": "ci", "rpm_limit": "60"}, follow=True)
    shown = response.context["new_key"]["key"]
    assert keys.looks_like_key(shown)
    assert shown in response.content.decode()
    api_key = ApiKey.objects.get(digest=keys.digest(shown))
    assert (api_key.organization, api_key.name, api_key.rpm_limit) == (organization, "ci", 60)
    again = client.get("/keys/")
    assert shown not in again.content.decode()
    assert api_key.prefix in again.content.decode()


def test_owner_revokes_and_renames(client, owner, owners_key):
    client.force_login(owner)
    client.post(f"/keys/{owners_key.pk}/rename", {"name": "renamed"})
    client.post(f"/keys/{owners_key.pk}/revoke")
    owners_key.refresh_from_db()
    assert owners_key.name == "renamed"
    assert owners_key.revoked_at is not None


def test_member_sees_keys_but_cannot_create_or_revoke(client, member, owners_key):
    client.force_login(member)
    page = client.get("/keys/")
    assert page.status_code == 200 and owners_key.prefix in page.content.decode()
    assert client.post("/keys/create", {"name": "x"}).status_code == 403
    assert client.post(f"/keys/{owners_key.pk}/revoke").status_code == 403
    owners_key.refresh_from_db()
    assert owners_key.revoked_at is None
    assert ApiKey.objects.count() == 1


def test_outsider_cannot_see_or_revoke_another_organizations_key(client, outsider, owners_key):
    client.force_login(outsider)
    organization_create(name="Outsiders", owner=outsider)
    page = client.get("/keys/")
    assert owners_key.prefix not in page.content.decode()
    assert client.post(f"/keys/{owners_key.pk}/revoke").status_code == 404
    assert client.post(f"/keys/{owners_key.pk}/rename", {"name": "pwned"}).status_code == 404
    owners_key.refresh_from_db()
    assert owners_key.revoked_at is None and owners_key.name == "prod"


def test_outsider_cannot_switch_into_another_organization(client, outsider, organization):
    client.force_login(outsider)
    organization_create(name="Outsiders", owner=outsider)
    response = client.post("/organizations/switch", {"organization": organization.pk})
    assert response.status_code == 404
    assert "Acme" not in client.get("/").content.decode()


def test_switching_organization_changes_what_pages_show(client, owner, organization, owners_key):
    other = organization_create(name="Side project", owner=owner)
    client.force_login(owner)
    client.post("/organizations/switch", {"organization": other.pk, "next": "/keys/"})
    assert owners_key.prefix not in client.get("/keys/").content.decode()
    client.post("/organizations/switch", {"organization": organization.pk})
    assert owners_key.prefix in client.get("/keys/").content.decode()


def test_the_switch_never_redirects_off_site(client, owner, organization):
    client.force_login(owner)
    response = client.post(
        "/organizations/switch", {"organization": organization.pk, "next": "https://evil.example/"}
    )
    assert response["Location"] == "/"


def test_anonymous_users_are_sent_to_login(client):
    response = client.get("/keys/")
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


@pytest.mark.django_db
def test_signup_creates_a_personal_organization(client, settings):
    settings.ACCOUNT_EMAIL_VERIFICATION = "none"
    response = client.post(
        "/accounts/signup/",
        {
            "email": "new@example.com",
            "password1": "a-long-passphrase-9",
            "password2": "a-long-passphrase-9",
        },
    )
    assert response.status_code == 302
    membership = Membership.objects.get(user__email="new@example.com")
    assert membership.role == Role.OWNER and membership.organization.is_personal


def test_the_keys_page_shows_each_keys_limits_and_the_plans(client, owner, organization):
    from accounts.services import organization_limits_update

    organization_limits_update(organization=organization, plan="standard", tpm_limit=90_000)
    api_key_create(organization=organization, name="own", rpm_limit=60, tpm_limit=1000)
    api_key_create(organization=organization, name="plain")
    client.force_login(owner)
    page = client.get("/keys/").content.decode()
    assert "60 requests, 1000 tokens" in page
    assert "500 requests</span>" in page  # the plain key: the standard plan's default
    assert "the whole organization 5000 requests and 90000 tokens per minute" in page
