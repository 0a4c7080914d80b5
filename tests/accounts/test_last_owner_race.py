"""The last-owner rule under concurrency, on PostgreSQL: two owners demoting or removing each
other at the same moment, each in its own thread and database connection.

Without a lock, each change counts two owners before either writes, and the organization
is left with no owner. The services lock the organization's memberships (SELECT ... FOR
UPDATE) first; the control run below takes the lock away and shows the same schedule
losing every owner."""

from __future__ import annotations

import threading
from collections.abc import Callable
from contextlib import suppress

import pytest
from django.db import connection

from accounts import services
from accounts.models import Membership, Organization, Role, User

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def two_owners() -> tuple[Organization, Membership, Membership]:
    ada = User.objects.create_user(email="ada@example.com", password="pw-1234567")
    bob = User.objects.create_user(email="bob@example.com", password="pw-1234567")
    organization = services.organization_create(name="Duo", owner=ada)
    first = Membership.objects.get(user=ada)
    second = Membership.objects.create(organization=organization, user=bob, role=Role.OWNER)
    return organization, first, second


def at_the_same_moment(monkeypatch, *changes: Callable[[], None]) -> list[Exception]:
    """Run each change in its own thread; each waits for the others right after counting
    the owners (as far as a lock lets it get), so the counts race as they can in
    production. A thread held back by a lock never arrives: the wait gives up after 2 s."""
    barrier = threading.Barrier(len(changes))
    count = services._owner_count

    def count_then_wait(organization_id: int) -> int:
        owners = count(organization_id)
        with suppress(threading.BrokenBarrierError):
            barrier.wait(timeout=2)
        return owners

    monkeypatch.setattr(services, "_owner_count", count_then_wait)
    refused: list[Exception] = []

    def run(change: Callable[[], None]) -> None:
        try:
            change()
        except services.MembershipError as error:
            refused.append(error)
        finally:
            connection.close()  # this thread's own connection

    threads = [threading.Thread(target=run, args=(change,)) for change in changes]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return refused


def without_the_lock(monkeypatch) -> None:
    monkeypatch.setattr(
        services,
        "_locked_memberships",
        lambda organization_id: {
            row.pk: row for row in Membership.objects.filter(organization_id=organization_id)
        },
    )


def demote_each_other(monkeypatch, first: Membership, second: Membership) -> list[Exception]:
    return at_the_same_moment(
        monkeypatch,
        lambda: services.membership_change_role(membership=second, role=Role.MEMBER, by=first),  # type: ignore[arg-type]
        lambda: services.membership_change_role(membership=first, role=Role.MEMBER, by=second),  # type: ignore[arg-type]
    )


def remove_each_other(monkeypatch, first: Membership, second: Membership) -> list[Exception]:
    return at_the_same_moment(
        monkeypatch,
        lambda: services.membership_remove(membership=second, by=first),
        lambda: services.membership_remove(membership=first, by=second),
    )


def owners(organization: Organization) -> int:
    return Membership.objects.filter(organization=organization, role=Role.OWNER).count()


@pytest.mark.parametrize("race", [demote_each_other, remove_each_other])
def test_without_the_lock_the_race_leaves_no_owner(monkeypatch, two_owners, race):
    """The control: the same schedule without the lock loses every owner."""
    organization, first, second = two_owners
    without_the_lock(monkeypatch)
    assert race(monkeypatch, first, second) == []
    assert owners(organization) == 0


@pytest.mark.parametrize("race", [demote_each_other, remove_each_other])
def test_two_owners_demoting_or_removing_each_other_keep_one_owner(monkeypatch, two_owners, race):
    organization, first, second = two_owners
    refused = race(monkeypatch, first, second)
    assert owners(organization) == 1
    assert len(refused) == 1
    assert "owner" in str(refused[0]) or "no longer" in str(refused[0])


def test_the_last_owner_rule_reads_the_committed_roles_not_the_callers_copy(two_owners):
    """A membership object loaded before another change committed is read again."""
    organization, first, second = two_owners
    stale_first = Membership.objects.get(pk=first.pk)
    services.membership_change_role(membership=first, role=Role.MEMBER, by=second)
    with pytest.raises(services.MembershipError, match="at least one owner"):
        services.membership_change_role(membership=second, role=Role.ADMIN, by=second)
    with pytest.raises(services.MembershipError, match="Only owners"):
        services.membership_remove(membership=second, by=stale_first)  # now a member
    assert owners(organization) == 1
