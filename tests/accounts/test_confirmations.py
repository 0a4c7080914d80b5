"""Revoking a key, removing a member and changing a role ask first (a page of its own, so it
works without script and under a strict CSP); creating an organization does not switch to
it behind the user's back; errors look like errors."""

import re
from pathlib import Path

import pytest

from accounts.models import Membership, Organization, Role
from accounts.services import api_key_create
from tests.support import PROJECT_DIR


@pytest.fixture
def membership(member, organization) -> Membership:
    """The member persona's membership: the questions are asked about it."""
    return Membership.objects.get(user=member, organization=organization)


def test_revoking_a_key_asks_first_and_only_the_post_revokes(client, owner, organization):
    api_key = api_key_create(organization=organization, name="prod").api_key
    client.force_login(owner)
    keys_page = client.get("/keys/").content.decode()
    assert f'href="/keys/{api_key.pk}/revoke"' in keys_page  # a link to the question
    question = client.get(f"/keys/{api_key.pk}/revoke")
    assert question.status_code == 200
    page = question.content.decode()
    assert "Revoke the key “prod”?" in page and 'method="post"' in page
    api_key.refresh_from_db()
    assert api_key.revoked_at is None
    assert client.post(f"/keys/{api_key.pk}/revoke").status_code == 302
    api_key.refresh_from_db()
    assert api_key.revoked_at is not None


def test_removing_a_member_asks_first(client, owner, membership):
    client.force_login(owner)
    question = client.get(f"/members/{membership.pk}/remove")
    assert "Remove member@example.com from Acme?" in question.content.decode()
    assert Membership.objects.filter(pk=membership.pk).exists()
    client.post(f"/members/{membership.pk}/remove")
    assert not Membership.objects.filter(pk=membership.pk).exists()


def test_changing_a_role_asks_first_and_says_what_the_role_may_do(client, owner, membership):
    client.force_login(owner)
    members_page = client.get("/members/").content.decode()
    assert f'method="get" action="/members/{membership.pk}/role"' in members_page
    question = client.get(f"/members/{membership.pk}/role", {"role": "admin"}).content.decode()
    assert "Make member@example.com admin?" in question
    assert "Admins manage keys and members" in question
    assert 'name="role" value="admin"' in question
    membership.refresh_from_db()
    assert membership.role == Role.MEMBER
    client.post(f"/members/{membership.pk}/role", {"role": "admin"})
    membership.refresh_from_db()
    assert membership.role == Role.ADMIN


def test_a_member_cannot_even_see_the_questions(client, membership, organization):
    api_key = api_key_create(organization=organization, name="prod").api_key
    client.force_login(membership.user)
    assert client.get(f"/keys/{api_key.pk}/revoke").status_code == 403
    assert client.get(f"/members/{membership.pk}/remove").status_code == 403
    assert client.get(f"/members/{membership.pk}/role", {"role": "owner"}).status_code == 403


def test_creating_an_organization_offers_to_switch_instead_of_switching(
    client, owner, organization
):
    client.force_login(owner)
    client.get("/")  # the session's organization: the first one
    current = client.session["organization_id"]
    response = client.post("/settings/organizations/create", {"name": "Side project"})
    created = Organization.objects.get(name="Side project")
    assert response["Location"] == f"/settings/?created={created.pk}"
    page = client.get(response["Location"]).content.decode()
    assert client.session["organization_id"] == current  # not switched
    assert "Switch to “Side project”" in page
    assert f'name="organization" value="{created.pk}"' in page
    client.post("/organizations/switch", {"organization": created.pk, "next": "/"})
    assert client.session["organization_id"] == created.pk


def test_another_users_organization_is_never_offered(client, owner, outsider):
    from accounts.services import organization_create

    theirs = organization_create(name="Not yours", owner=outsider)
    client.force_login(owner)
    assert "Not yours" not in client.get(f"/settings/?created={theirs.pk}").content.decode()


def test_errors_are_styled_and_announced_as_errors_and_successes_as_status(
    client, owner, organization
):
    """An error must not look like a success message: it is marked and announced as one."""
    client.force_login(owner)
    mine = Membership.objects.get(user=owner)
    page = client.post(f"/members/{mine.pk}/remove", follow=True).content.decode()
    error = re.search(r'<li class="message message-error" role="alert">([^<]*)</li>', page)
    assert error and "at least one owner" in error.group(1)
    api_key = api_key_create(organization=organization, name="prod").api_key
    page = client.post(f"/keys/{api_key.pk}/revoke", follow=True).content.decode()
    assert '<li class="message message-success" role="status">Key “prod” revoked.</li>' in page
    css = (PROJECT_DIR / "static" / "css" / "app.css").read_text()
    assert ".message-error" in css and ".message-success" in css


@pytest.mark.parametrize(
    "template",
    ["keys.html", "key_edit.html", "key_fields.html", "confirm.html", "members.html"],
)
def test_the_pages_carry_no_inline_script_or_style(template):
    """The strict Content-Security-Policy (script-src 'self', style-src 'self') would refuse
    them."""
    text = Path(PROJECT_DIR, "templates", "dashboard", template).read_text()
    assert not re.search(r"\son[a-z]+=|<script>|\sstyle=", text)
