"""Usage records for the dashboard tests: written directly (the pipeline is tested apart),
then rolled up as beat would."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta

import pytest
from django.utils import timezone

from accounts.models import ApiKey, Organization, User
from accounts.services import api_key_create, organization_create
from usage.models import Period, UsageRecord
from usage.rollups import rollup

_ids = itertools.count(1)


def make_record(organization: Organization, api_key: ApiKey | None, **fields) -> UsageRecord:
    values = {
        "request_id": f"req_{next(_ids):06d}",
        "endpoint": "chat",
        "model": "gpt-4o",
        "provider": "openai",
        "status": 200,
        "prompt_tokens": 10,
        "completion_tokens": 5,
        "cost_nanos": 1_000,
        "ttfb_ms": 120.0,
        "duration_ms": 480.0,
        "created_at": timezone.now(),
        **fields,
    }
    return UsageRecord.objects.create(organization=organization, api_key=api_key, **values)


def roll_up(since: datetime | None = None) -> None:
    since = since or timezone.now() - timedelta(days=400)
    rollup(Period.HOUR, since=since)
    rollup(Period.DAY, since=since)


@pytest.fixture
def prod_key(organization: Organization, owner: User) -> ApiKey:
    return api_key_create(organization=organization, name="prod", created_by=owner).api_key


@pytest.fixture
def dev_key(organization: Organization, owner: User) -> ApiKey:
    return api_key_create(organization=organization, name="dev", created_by=owner).api_key


@pytest.fixture
def other_organization(outsider: User) -> Organization:
    return organization_create(name="Elsewhere", owner=outsider)


@pytest.fixture
def other_key(other_organization: Organization, outsider: User) -> ApiKey:
    return api_key_create(
        organization=other_organization, name="theirs", created_by=outsider
    ).api_key
