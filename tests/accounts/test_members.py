"""Members and invitations: owner, admin, member and outsider personas."""

import re

import pytest

from accounts.models import Invitation, Membership, Role
from accounts.services import organization_create


@pytest.fixture
def admin(organization, django_user_model):
    user = django_user_model.objects.create_user(email="admin@example.com", password="pw-123456")
    Membership.objects.create(organization=organization, user=user, role=Role.ADMIN)
    return user


def test_owner_invites_by_email_and_the_invitee_joins(
    client, owner, organization, django_user_model, mailoutbox, django_capture_on_commit_callbacks
):
    client.force_login(owner)
    with django_capture_on_commit_callbacks(execute=True):
        client.post("/members/invite", {"email": "New@Example.com", "role": "admin"})
    assert len(mailoutbox) == 1 and mailoutbox[0].to == ["new@example.com"]
    link = re.search(r"http://\S+/invitations/\S+/", mailoutbox[0].body).group(0)
    invitee = django_user_model.objects.create_user(email="new@example.com", password="pw-123456")
    client.force_login(invitee)
    path = link.split("testserver", 1)[1]
    assert "Acme" in client.get(path).content.decode()
    client.post(path)
    assert Membership.objects.get(user=invitee, organization=organization).role == Role.ADMIN
    assert client.post(path).status_code == 302  # a second use is refused
    assert Membership.objects.filter(user=invitee).count() == 1


def test_an_invitation_only_works_for_its_own_email(client, owner, organization, outsider):
    client.force_login(owner)
    client.post("/members/invite", {"email": "someone@example.com", "role": "member"})
    token = Invitation.objects.get().token
    client.force_login(outsider)
    client.post(f"/invitations/{token}/")
    assert not Membership.objects.filter(user=outsider, organization=organization).exists()


def test_admin_manages_members_but_not_owners(client, admin, member, owner, organization):
    client.force_login(admin)
    target = Membership.objects.get(user=member)
    client.post(f"/members/{target.pk}/role", {"role": "admin"})
    assert Membership.objects.get(user=member).role == Role.ADMIN
    owner_membership = Membership.objects.get(user=owner)
    client.post(f"/members/{owner_membership.pk}/role", {"role": "member"})
    client.post(f"/members/{owner_membership.pk}/remove")
    assert Membership.objects.get(user=owner).role == Role.OWNER
    assert (
        client.post("/members/invite", {"email": "x@example.com", "role": "owner"}).status_code
        == 403
    )


def test_the_last_owner_cannot_leave_or_be_demoted(client, owner, organization):
    client.force_login(owner)
    mine = Membership.objects.get(user=owner)
    client.post(f"/members/{mine.pk}/role", {"role": "member"})
    client.post(f"/members/{mine.pk}/remove")
    assert Membership.objects.get(user=owner).role == Role.OWNER


def test_member_sees_members_but_changes_nothing(client, member, owner):
    client.force_login(member)
    assert "owner@example.com" in client.get("/members/").content.decode()
    owner_membership = Membership.objects.get(user=owner)
    assert client.post(f"/members/{owner_membership.pk}/remove").status_code == 403
    assert client.post("/members/invite", {"email": "x@example.com"}).status_code == 403


def test_outsider_cannot_see_or_touch_another_organizations_members(client, outsider, member):
    organization_create(name="Elsewhere", owner=outsider)
    client.force_login(outsider)
    assert "member@example.com" not in client.get("/members/").content.decode()
    target = Membership.objects.get(user=member)
    assert client.post(f"/members/{target.pk}/remove").status_code == 404
    assert client.post(f"/members/{target.pk}/role", {"role": "admin"}).status_code == 404
    assert Membership.objects.filter(pk=target.pk, role=Role.MEMBER).exists()
