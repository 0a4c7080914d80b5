"""The gateway as `make run` serves it (uvicorn, two worker processes, its startup checks),
with the money state and the Django cache on a 3-master Redis Cluster and the broker on
RabbitMQ: calls of organizations on every master are answered, charged once, and booked."""

from __future__ import annotations

import httpx
import pytest

from accounts.models import User
from accounts.services import api_key_create, organization_create
from billing.services import credits_grant
from credit import keys
from tests.apigateway.conftest import gateway
from tests.apigateway.test_leases import CHAT, cost_of
from tests.ledger_check import assert_balance_reconciles

RABBITMQ = "amqp://guest:guest@127.0.0.1:5672//"


@pytest.mark.parametrize("money_redis", ["cluster"], indirect=True)
def test_calls_through_gateway_processes_on_a_cluster(tenant, fake_openai, redis_cluster):
    accounts = []
    for n in range(6):  # organizations of several shards (and so of every master)
        owner = User.objects.create_user(email=f"c{n}@example.com", password="x-horse")
        organization = organization_create(name=f"C{n}", owner=owner)
        credits_grant(organization=organization, amount_nanos=10**9, reference=f"grant:c{n}")
        key = api_key_create(organization=organization, name="c", created_by=owner).plaintext
        accounts.append((organization.pk, key))
    assert len({keys.shard_of(organization_id) for organization_id, _ in accounts}) == 6
    with gateway(
        fake_openai,
        REDIS_URL=redis_cluster.url,
        CACHE_REDIS_URL=redis_cluster.url,
        CELERY_BROKER_URL=RABBITMQ,
    ) as (url, _):
        assert httpx.get(f"{url}/readyz", timeout=10).status_code == 200
        charged: dict[int, int] = {}
        for organization_id, key in accounts * 3:
            answer = httpx.post(
                f"{url}/v1/chat/completions",
                json=CHAT,
                headers={"authorization": f"Bearer {key}"},
                timeout=30,
            )
            assert answer.status_code == 200, answer.text
            charged[organization_id] = charged.get(organization_id, 0) + cost_of(answer)
    for organization_id, _ in accounts:
        assert assert_balance_reconciles(organization_id) == 10**9 - charged[organization_id]
