"""An upgrade from the key names before the credit shards: a single Redis holding money
state as the previous version wrote it — a call booked but not acknowledged (its drainer
died after the commit), a call settled and not yet read, a hold in flight with a spend
counter, a rate window — moved by `manage.py migrate_credit_keys` ends with every call
booked exactly once and the same balance."""

from __future__ import annotations

import logging
import time

import orjson
import pytest
from django.core.management import call_command

from accounts.services import api_key_create
from billing.selectors import ledger_figures
from billing.services import credits_grant
from credit import keys, legacy, scripts
from credit.stores import current as credit_store
from tests.ledger_check import assert_balance_reconciles
from usage import pipeline
from usage.models import UsageRecord

OLD = "nexeon:"  # the names as the previous version wrote them


def old_names(organization_id: int, key_id: int, month: str) -> dict[str, str]:
    return {
        "credit": f"{OLD}credit:org:{organization_id}",
        "holds": f"{OLD}credit:holds",
        "stream": f"{OLD}usage:stream",
        "spend": f"{OLD}credit:spend:{key_id}:{month}",
        "key_window": f"{OLD}rl:key:{key_id}",
        "org_window": f"{OLD}rl:org:{organization_id}",
    }


def run(client, script, script_keys, args):
    return client.eval(script.source, len(script_keys), *script_keys, *args)


@pytest.mark.django_db(transaction=True)
def test_an_old_layout_is_moved_and_booked_exactly_once(organization, owner, redis_client):
    key = api_key_create(organization=organization, name="old", created_by=owner).api_key
    credits_grant(organization=organization, amount_nanos=10_000, reference="grant:old")
    org, month = organization.pk, keys.month_of()
    old = old_names(org, key.pk, month)
    figures = ledger_figures(org)
    run(redis_client, scripts.LOAD, [old["credit"]], [figures.credits, figures.credits_seq, 0])
    redis_client.set(old["spend"], 0)
    deadline = time.time() + 60

    def reserve(call: str, amount: int, limit: int | str = "") -> None:
        script_keys = [
            old["key_window"],
            old["org_window"],
            old["credit"],
            old["holds"],
            f"{OLD}credit:hold:{call}",
            old["spend"] if limit != "" else "",
        ]
        args = [60, 0, 0, 0, 0, amount, org, f"{deadline:.3f}", limit, 1, key.pk, ""]
        assert run(redis_client, scripts.RESERVE, script_keys, args)[0] == 1

    def settle(call: str, cost: int) -> None:
        event = orjson.dumps(
            {"request_id": call, "organization_id": org, "key_id": key.pk, "at": time.time()}
        )
        script_keys = [old["holds"], f"{OLD}credit:hold:{call}", old["credit"], "", old["stream"]]
        args = [cost, 10**9, 1, org, event, call, 180]
        run(redis_client, scripts.SETTLE, script_keys, args)

    reserve("req_a", 3_000)
    settle("req_a", 1_000)
    redis_client.xgroup_create(old["stream"], keys.USAGE_GROUP, id="0")
    [(_, [(entry_id, fields)])] = redis_client.xreadgroup(
        keys.USAGE_GROUP, "old-drainer", {old["stream"]: ">"}
    )
    from credit.redis_store import queued_usage

    pipeline.book(pipeline._triage([queued_usage(entry_id, fields)])[0])  # died before its ack
    reserve("req_b", 2_000)
    settle("req_b", 500)
    reserve("req_c", 4_000, limit=50_000)  # in flight when the old version stopped
    before = redis_client.hgetall(old["credit"])
    assert (int(before[b"available"]), int(before[b"held"]), int(before[b"unbooked"])) == (
        4_500,
        4_000,
        1_500,
    )

    call_command("migrate_credit_keys")

    assert not any(redis_client.exists(name) for name in old.values())
    state = credit_store().credit_state(org)
    assert (state.available, state.held, state.unbooked) == (4_500, 4_000, 1_500)
    shard = keys.shard_of(org)
    hold = keys.hold(org, "req_c")
    assert redis_client.zscore(keys.holds(shard), hold) == pytest.approx(deadline, abs=0.01)
    spend = keys.key_spend(org, key.pk, month)
    assert redis_client.hmget(hold, "credit", "spend") == [
        keys.organization_credit(org).encode(),
        spend.encode(),
    ]
    assert int(redis_client.get(spend)) == 4_000  # (only req_c counted in it)
    assert int(redis_client.hget(keys.key_window(org, key.pk), "R")) == 3

    assert pipeline.drain() == 1  # req_b; req_a was booked before the upgrade
    assert sorted(UsageRecord.objects.values_list("request_id", flat=True)) == ["req_a", "req_b"]
    assert credit_store().reap(now=deadline + 1) == 1  # its process is gone: returned
    assert assert_balance_reconciles(org) == 10_000 - 1_500
    assert ledger_figures(org).usage == 1_500

    call_command("migrate_credit_keys")  # again: nothing left to move
    assert credit_store().credit_state(org).available == 10_000 - 1_500


def test_a_run_that_moves_only_rate_windows_says_so(redis_client, caplog):
    redis_client.zadd(f"{OLD}rl:org:41", {"req_1": time.time()})
    with caplog.at_level(logging.WARNING, logger="credit.legacy"):
        moved = legacy.migrate(redis_client, lambda key_ids: {})
    assert moved.windows == 1 and moved.anything
    assert "moved to the sharded layout" in caplog.text
    assert redis_client.exists(keys.organization_window(41))
