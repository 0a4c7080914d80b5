"""Invitations: they survive sign-up and email verification, expire, can be withdrawn, are
limited per organization, and their mail's subject carries no text a user wrote."""

import re
from datetime import timedelta

import pytest
from allauth.account.models import EmailAddress
from django.utils import timezone

from accounts.invitations import MAIL_SUBJECT
from accounts.models import Invitation, Membership, Role, User
from accounts.services import organization_create


@pytest.fixture
def invite(client, owner, organization, django_capture_on_commit_callbacks):
    """Send an invitation as the owner; returns the mailed link's path."""
    client.force_login(owner)

    def send(email: str = "new@example.com", role: str = "member"):
        with django_capture_on_commit_callbacks(execute=True):
            response = client.post("/members/invite", {"email": email, "role": role})
        return response

    return send


def link_path(mail) -> str:
    return re.search(r"http://testserver(/invitations/\S+/)", mail.body).group(1)


def test_the_subject_is_ours_whatever_the_organization_is_called(
    client, owner, mailoutbox, django_capture_on_commit_callbacks
):
    """The organization's name is anyone's text: it never goes into the subject."""
    evil = organization_create(name="URGENT: verify your bank account at evil.example", owner=owner)
    client.force_login(owner)
    client.post("/organizations/switch", {"organization": evil.pk})
    with django_capture_on_commit_callbacks(execute=True):
        client.post("/members/invite", {"email": "victim@example.com", "role": "member"})
    assert [mail.subject for mail in mailoutbox] == [MAIL_SUBJECT]
    assert MAIL_SUBJECT == "You're invited to an organization on NeXeonAI"


def test_an_invitee_who_must_sign_up_and_verify_lands_in_the_organization(
    client, invite, organization, mailoutbox, settings, django_capture_on_commit_callbacks
):
    """An invitee who must sign up (and verify the address) first still joins."""
    settings.ACCOUNT_EMAIL_VERIFICATION = "mandatory"
    invite("newcomer@example.com", "admin")
    path = link_path(mailoutbox[0])
    client.logout()
    page = client.get(path).content.decode()
    assert "Join Acme" in page and "/accounts/signup/" in page
    with django_capture_on_commit_callbacks(execute=True):
        signup = client.post(
            "/accounts/signup/",
            {
                "email": "newcomer@example.com",
                "password1": "a-long-passphrase-9",
                "password2": "a-long-passphrase-9",
            },
        )
    assert signup["Location"] == "/accounts/confirm-email/"  # "we sent you a link"
    assert not Membership.objects.filter(organization=organization).exclude(role=Role.OWNER)
    confirm = re.search(r"http://testserver(/accounts/confirm-email/\S+/)", mailoutbox[-1].body)
    confirmed = client.post(confirm.group(1), follow=True)
    membership = Membership.objects.get(
        user__email="newcomer@example.com", organization=organization
    )
    assert membership.role == Role.ADMIN
    assert client.session["organization_id"] == organization.pk  # the dashboard shows Acme
    assert "You joined Acme." in confirmed.content.decode()
    assert Invitation.objects.get().accepted_at is not None


def test_an_existing_user_who_logs_in_from_the_link_joins(client, invite, organization, mailoutbox):
    invite("known@example.com")
    path = link_path(mailoutbox[0])
    _user("known@example.com")
    client.logout()
    client.get(path)
    client.post("/accounts/login/", {"login": "known@example.com", "password": "pw-long-12345"})
    assert Membership.objects.filter(user__email="known@example.com", organization=organization)


def test_another_account_logging_in_does_not_take_the_invitation(
    client, invite, organization, mailoutbox
):
    invite("someone@example.com")
    outsider = _user("outsider@example.com")
    client.logout()
    client.get(link_path(mailoutbox[0]))
    page = client.post(
        "/accounts/login/",
        {"login": "outsider@example.com", "password": "pw-long-12345"},
        follow=True,
    ).content.decode()
    assert not Membership.objects.filter(user=outsider, organization=organization).exists()
    assert "sent to someone@example.com" in page
    assert Invitation.objects.get().accepted_at is None


def test_an_invitation_expires(client, invite, organization, mailoutbox, settings):
    settings.INVITATION_EXPIRY_DAYS = 7
    invite("late@example.com")
    invitation = Invitation.objects.get()
    assert timedelta(days=6, hours=23) < invitation.expires_at - timezone.now() <= timedelta(7)
    Invitation.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    late = organization_create(name="Late's", owner=_user("late@example.com"))
    client.force_login(late.memberships.get().user)
    page = client.get(link_path(mailoutbox[0]))
    assert page.status_code == 410 and "expired" in page.content.decode()
    client.post(link_path(mailoutbox[0]))
    assert not Membership.objects.filter(organization=organization, user__email="late@example.com")


def _user(email: str):
    """A user whose address is verified (they may log in under mandatory verification)."""
    user = User.objects.create_user(email=email, password="pw-long-12345")
    EmailAddress.objects.create(user=user, email=email, verified=True, primary=True)
    return user


def test_an_admin_withdraws_an_invitation(client, invite, owner, organization, mailoutbox):
    invite("gone@example.com")
    invitation = Invitation.objects.get()
    assert "gone@example.com" in client.get("/members/").content.decode()
    client.post(f"/members/invitations/{invitation.pk}/withdraw")
    invitation.refresh_from_db()
    assert invitation.withdrawn_at is not None
    assert 'data-testid="invitation"' not in client.get("/members/").content.decode()
    invitee = _user("gone@example.com")
    client.force_login(invitee)
    page = client.get(link_path(mailoutbox[0]))
    assert page.status_code == 410 and "withdrawn" in page.content.decode()
    client.post(link_path(mailoutbox[0]))
    assert not Membership.objects.filter(organization=organization, user=invitee).exists()


def test_inviting_the_same_address_again_replaces_the_open_invitation(invite, mailoutbox):
    invite("twice@example.com")
    invite("twice@example.com", "admin")
    first, second = Invitation.objects.order_by("pk")
    assert first.state == "withdrawn" and second.state == "open"


def test_a_member_cannot_withdraw_and_an_outsider_gets_404(
    client, invite, organization, outsider, django_user_model
):
    invite("kept@example.com")
    invitation = Invitation.objects.get()
    member = django_user_model.objects.create_user(email="m@example.com", password="pw-1234567")
    Membership.objects.create(organization=organization, user=member, role=Role.MEMBER)
    client.force_login(member)
    assert client.post(f"/members/invitations/{invitation.pk}/withdraw").status_code == 403
    organization_create(name="Elsewhere", owner=outsider)
    client.force_login(outsider)
    assert client.post(f"/members/invitations/{invitation.pk}/withdraw").status_code == 404
    invitation.refresh_from_db()
    assert invitation.state == "open"


def test_an_organization_sends_at_most_its_hourly_number_of_invitations(
    client, invite, organization, mailoutbox, settings
):
    """Unlimited invitations would let anyone mail any address through this server."""
    settings.INVITATIONS_PER_HOUR = 3
    for number in range(3):
        invite(f"guest{number}@example.com")
    refused = client.post(
        "/members/invite", {"email": "guest9@example.com", "role": "member"}, follow=True
    )
    page = refused.content.decode()
    assert 'class="message message-error" role="alert"' in page
    assert "sent 3 invitations in the last hour" in page
    assert len(mailoutbox) == 3 and Invitation.objects.count() == 3
    # An hour later, the organization may invite again.
    Invitation.objects.update(created_at=timezone.now() - timedelta(hours=1, seconds=1))
    invite("guest9@example.com")
    assert len(mailoutbox) == 4


def test_a_bad_address_is_a_form_error(client, owner, organization):
    client.force_login(owner)
    response = client.post("/members/invite", {"email": "not-an-address", "role": "member"})
    assert response.status_code == 400
    assert 'class="form-error" role="alert"' in response.content.decode()
    assert not Invitation.objects.exists()
