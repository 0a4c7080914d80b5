"""An operator changes an organization's plan or limits in the admin: the gateway's cached
facts about its keys are dropped, so the change applies within GATEWAY_KEY_CACHE_SECONDS."""

from __future__ import annotations

import pytest

from accounts import key_cache
from accounts.models import Organization
from accounts.services import api_key_create
from apigateway import auth
from credit import keys as credit_keys


@pytest.mark.django_db(transaction=True)
def test_changing_the_plan_in_the_admin_forgets_the_keys_cached_facts(
    admin_client, redis_client, organization
):
    created = api_key_create(organization=organization, name="k")
    cached = credit_keys.api_key(created.api_key.digest)
    redis_client.set(cached, b"{}")
    form = admin_client.get(f"/admin/accounts/organization/{organization.pk}/change/")
    assert b'name="plan"' in form.content and b'name="rpm_limit"' in form.content
    response = admin_client.post(
        f"/admin/accounts/organization/{organization.pk}/change/",
        {
            "name": organization.name,
            "slug": organization.slug,
            "created_at_0": "2026-01-01",
            "created_at_1": "00:00:00",
            "plan": "scale",
            "rpm_limit": "42",
            "tpm_limit": "",
            "memberships-TOTAL_FORMS": "0",
            "memberships-INITIAL_FORMS": "0",
        },
    )
    assert response.status_code == 302, response.content[:2000]
    organization = Organization.objects.get(pk=organization.pk)
    assert (organization.plan, organization.rpm_limit) == ("scale", 42)
    assert redis_client.get(cached) == key_cache.CHANGED  # lookups read the database
    info = auth.read_key(created.api_key.digest)
    assert (info.rpm_limit, info.org_rpm_limit, info.org_tpm_limit) == (10_000, 42, 50_000_000)
