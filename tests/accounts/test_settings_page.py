"""The settings page: creating another organization, renaming (owners only), and
management tokens shown once and revocable only by their user, through Django's test
client on the test database."""

from accounts import keys
from accounts.models import ManagementToken, Membership, Organization, Role
from accounts.services import organization_create


def test_a_user_creates_another_organization_and_becomes_its_owner(client, owner, organization):
    client.force_login(owner)
    client.post("/settings/organizations/create", {"name": "Side project"})
    created = Organization.objects.get(name="Side project")
    assert Membership.objects.get(organization=created, user=owner).role == Role.OWNER
    assert "Side project" in client.get("/settings/").content.decode()


def test_only_owners_rename(client, owner, organization, django_user_model):
    admin = django_user_model.objects.create_user(email="a@example.com", password="pw-1234567")
    Membership.objects.create(organization=organization, user=admin, role=Role.ADMIN)
    client.force_login(admin)
    client.post("/organizations/switch", {"organization": organization.pk})
    assert client.post("/settings/organizations/rename", {"name": "Hijacked"}).status_code == 403
    client.force_login(owner)
    client.post("/organizations/switch", {"organization": organization.pk})
    client.post("/settings/organizations/rename", {"name": "Acme Labs"})
    assert Organization.objects.get(pk=organization.pk).name == "Acme Labs"


def test_management_tokens_are_shown_once_and_revocable_only_by_their_user(
    client, owner, organization, outsider
):
    client.force_login(owner)
    page = client.post(
        "/settings/tokens/create", {"name": "ci", "organization": organization.pk, "days": "90"}
    )
    token = page.context["new_token"]["plaintext"]
    assert keys.looks_like_key(token, keys.MANAGEMENT_PREFIX)
    assert token not in client.get("/settings/").content.decode()
    stored = ManagementToken.objects.get(digest=keys.digest(token))
    organization_create(name="Outsiders", owner=outsider)
    client.force_login(outsider)
    assert client.post(f"/settings/tokens/{stored.pk}/revoke").status_code == 404
    client.force_login(owner)
    client.post(f"/settings/tokens/{stored.pk}/revoke")
    stored.refresh_from_db()
    assert stored.revoked_at is not None
