"""Tokens made before tokens had a scope and an expiry: the migration keeps each working
for 90 days in its user's personal organization (else their oldest membership), keeps the
revoked ones revoked, and deletes those of users in no organization."""

from __future__ import annotations

import json

from tests.support import manage_env, run_manage

BEFORE = "0006_invitation_expiry_and_withdrawal"

SEED = f"BEFORE = {BEFORE!r}\n" + (
    """
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone
apps = MigrationExecutor(connection).loader.project_state(("accounts", BEFORE)).apps
User = apps.get_model("accounts", "User")
Organization = apps.get_model("accounts", "Organization")
Membership = apps.get_model("accounts", "Membership")
Token = apps.get_model("accounts", "ManagementToken")
def org(slug, personal):
    return Organization.objects.create(name=slug, slug=slug, is_personal=personal)
def token(user, name, revoked=False):
    Token.objects.create(user=user, name=name, prefix="nex-mt-" + name, digest=name * 8,
                         revoked_at=timezone.now() if revoked else None)
alice = User.objects.create(email="alice@example.com")
team = org("team", False)
Membership.objects.create(organization=team, user=alice, role="owner")
Membership.objects.create(organization=org("alice-own", True), user=alice, role="owner")
token(alice, "alive")
token(alice, "dead", revoked=True)
bob = User.objects.create(email="bob@example.com")
Membership.objects.create(organization=team, user=bob, role="member")
Membership.objects.create(organization=org("later", False), user=bob, role="owner")
token(bob, "bobs")
token(User.objects.create(email="nobody@example.com"), "orphan")
"""
)

REPORT = """
import json
from django.utils import timezone
from accounts.models import ManagementToken
print(json.dumps({t.name: [t.organization.slug, t.revoked_at is not None,
                           round((t.expires_at - timezone.now()).total_seconds() / 86400)]
                  for t in ManagementToken.objects.all()}))
"""


def test_existing_tokens_are_scoped_and_given_an_expiry(tmp_path):
    env = manage_env(DEBUG="1", DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}")
    for step in (
        ("migrate", "accounts", BEFORE, "--noinput"),
        ("shell", "--no-imports", "-c", SEED),
        ("migrate", "--noinput"),
    ):
        done = run_manage(*step, env=env, timeout=120)
        assert done.returncode == 0, done.stdout + done.stderr
    report = run_manage("shell", "--no-imports", "-c", REPORT, env=env)
    assert json.loads(report.stdout.strip().splitlines()[-1]) == {
        "alive": ["alice-own", False, 90],
        "dead": ["alice-own", True, 90],
        "bobs": ["team", False, 90],  # no personal organization: the oldest membership
    }
