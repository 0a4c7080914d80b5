"""`manage.py create_api_key`: provisions a user, their personal organization, optional
credit and a key in one command, refuses bad arguments before creating anything, and
survives a Redis error after the grant without granting twice on a retry. Called through
Django's call_command against the test database."""

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from accounts import keys
from accounts.models import ApiKey, Membership, Role, User
from billing.selectors import organization_balance_nanos


def create_api_key(*args: str) -> list[str]:
    out = StringIO()
    call_command("create_api_key", *args, stdout=out)
    return out.getvalue().strip().splitlines()


@pytest.mark.django_db
def test_provisions_user_personal_organization_credits_and_a_key():
    lines = create_api_key("new@example.com", "--credits", "2.50", "--rpm", "60", "--name", "ci")

    key = lines[-1]
    assert keys.looks_like_key(key)
    user = User.objects.get(email="new@example.com")
    membership = Membership.objects.get(user=user)
    assert membership.role == Role.OWNER
    assert membership.organization.is_personal
    assert organization_balance_nanos(organization=membership.organization) == 2_500_000_000
    api_key = ApiKey.objects.get(digest=keys.digest(key))
    assert (api_key.name, api_key.rpm_limit, api_key.organization) == (
        "ci",
        60,
        membership.organization,
    )
    assert key not in ApiKey.objects.values_list("prefix", flat=True)


@pytest.mark.django_db
def test_running_again_reuses_the_user_and_organization_and_adds_a_key():
    first = create_api_key("Same@Example.com", "--credits", "1")[-1]
    second = create_api_key("same@example.com", "--credits", "1")[-1]

    assert first != second
    assert User.objects.filter(email="same@example.com").count() == 1
    user = User.objects.get(email="same@example.com")
    organization = Membership.objects.get(user=user).organization
    assert organization.api_keys.count() == 2
    assert organization_balance_nanos(organization=organization) == 2_000_000_000


@pytest.mark.django_db
def test_without_credits_the_balance_stays_zero():
    create_api_key("zero@example.com")
    organization = Membership.objects.get(user__email="zero@example.com").organization
    assert organization_balance_nanos(organization=organization) == 0
    assert not organization.ledger_entries.exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    "args",
    [
        ["not-an-email"],
        ["a@example.com", "--credits", "ten"],
        ["a@example.com", "--credits", "-1"],
        ["a@example.com", "--credits", "NaN"],
        ["a@example.com", "--rpm", "0"],
    ],
)
def test_bad_arguments_are_refused_and_create_nothing(args):
    with pytest.raises(CommandError):
        create_api_key(*args)
    assert not User.objects.exists()
    assert not ApiKey.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_a_redis_error_after_the_grant_commits_neither_crashes_nor_doubles_a_retry(monkeypatch):
    """On a Redis Cluster, telling Redis about a committed grant can raise (MovedError): the
    key must still be printed, and the operator's retry must not grant the credits again.
    Telling Redis is best effort (reconciliation syncs the balance within a minute), and
    a retry with the same --reference grants nothing more."""
    import redis

    from credit.redis_store import RedisStore

    def refused(*args, **kwargs):
        raise redis.ResponseError("CLUSTERDOWN The cluster is down")

    monkeypatch.setattr(RedisStore, "sync_credits", refused)
    first = create_api_key("retry@example.com", "--credits", "5", "--reference", "order-42")
    assert keys.looks_like_key(first[-1])
    second = create_api_key("retry@example.com", "--credits", "5", "--reference", "order-42")
    assert keys.looks_like_key(second[-1])
    assert any("already granted" in line for line in second)
    organization = Membership.objects.get(user__email="retry@example.com").organization
    assert organization_balance_nanos(organization=organization) == 5_000_000_000
