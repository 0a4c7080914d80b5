"""The hot path's cluster client (credit/cluster.py) while slots move between masters, as a
resharding or a scale-out does: a slot moved under a client with the old map is followed
(MOVED), a key already migrated is sought on the importing master (ASK), and the money
stays exact."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import pytest
import redis

from credit import connections, keys
from credit.cluster import ClusterRedis, slot_of
from credit.records import Charge, CreditUnavailable, LedgerFigures, Reserved
from credit.redis_store import RedisStore
from tests.credit.test_rules import Payer
from tests.own_services import OwnRedisCluster

ORG = 5


@pytest.fixture
def cluster(settings) -> Iterator[OwnRedisCluster]:
    own = OwnRedisCluster(masters=3)
    own.start()
    settings.REDIS_URL = own.url
    try:
        yield own
    finally:
        own.stop()


def node(port: int) -> redis.Redis:
    return redis.Redis(port=port)


def owner_port(cluster: OwnRedisCluster, slot: int) -> int:
    alive = next(port for port, process in cluster.processes.items() if process.poll() is None)
    for start, end, master, *_ in node(alive).execute_command("CLUSTER SLOTS"):
        if start <= slot <= end:
            return int(master[1])
    raise AssertionError("slot not served")


def node_id(port: int) -> str:
    return node(port).execute_command("CLUSTER MYID").decode()


def migrating(cluster: OwnRedisCluster, slot: int, source: int, target: int) -> None:
    node(target).execute_command("CLUSTER SETSLOT", slot, "IMPORTING", node_id(source))
    node(source).execute_command("CLUSTER SETSLOT", slot, "MIGRATING", node_id(target))


def move_keys(slot: int, source: int, target: int) -> None:
    names = node(source).execute_command("CLUSTER GETKEYSINSLOT", slot, 1000)
    if names:
        node(source).execute_command("MIGRATE", "127.0.0.1", target, "", 0, 5000, "KEYS", *names)


def settle_slot(cluster: OwnRedisCluster, slot: int, source: int, target: int) -> None:
    """The new owner first, then the old one, then the rest (as redis-cli does)."""
    owner = node_id(target)
    others = [port for port in cluster.ports if port not in (source, target)]
    for port in (target, source, *others):
        node(port).execute_command("CLUSTER SETSLOT", slot, "NODE", owner)


def asking(port: int, *command) -> object:
    """A command on a master importing the slot (as a client told ASK sends it)."""
    pipe = node(port).pipeline(transaction=False)
    pipe.execute_command("ASKING")
    pipe.execute_command(*command)
    return pipe.execute()[1]


def finish_move(cluster: OwnRedisCluster, slot: int, source: int, target: int) -> None:
    time.sleep(0.15)
    move_keys(slot, source, target)
    settle_slot(cluster, slot, source, target)


def test_a_slot_moved_under_the_client_is_followed_and_the_money_stays_exact(cluster):
    store = RedisStore()
    payer = Payer(key_id=1, organization_id=ORG, rpm_limit=100)
    slot = slot_of(keys.organization_credit(ORG))
    source = owner_port(cluster, slot)
    target = next(port for port in cluster.ports if port != source)
    other = next(port for port in cluster.ports if port not in (source, target))

    async def scenario() -> None:
        client = connections.fast()
        assert isinstance(client, ClusterRedis)
        await store.load_balance(ORG, LedgerFigures(10_000, 1, 0))
        first = await store.reserve(
            payer, hold_id="r1", amount=3_000, tokens=0, deadline=time.time() + 60
        )
        assert isinstance(first, Reserved)

        # The whole slot moves to another master; the client's map still says `source`.
        migrating(cluster, slot, source, target)
        move_keys(slot, source, target)
        settle_slot(cluster, slot, source, target)
        charged = await store.send_settlement(
            first.hold, Charge("r1", 3_000, 1_000, b'{"request_id": "r1"}')
        ).reply()
        assert charged == 1_000  # MOVED: sent again to the new owner, once

        # Half-way through the next move: keys not migrated yet are still on `target`, keys
        # created meanwhile go to `other` (ASK: ASKING, then the command, there).
        migrating(cluster, slot, target, other)
        neighbour = ORG + len(keys.shards())  # (same shard, same slot)
        await store.load_balance(neighbour, LedgerFigures(500, 1, 0))
        assert asking(other, "HGET", keys.organization_credit(neighbour), "available") == b"500"
        counter = keys.key_spend(ORG, 77, "202601")
        await client.call("SET", counter, 5)
        assert await client.call("GET", counter) == b"5"
        assert asking(other, "GET", counter) == b"5"
        # A script whose keys are split between the two (TRYAGAIN) waits for the move to end.
        loop = asyncio.get_running_loop()
        finishing = loop.run_in_executor(None, finish_move, cluster, slot, target, other)
        await store.count_refused(Payer(key_id=77, organization_id=ORG, rpm_limit=5))
        await finishing
        assert int(node(other).hget(keys.key_window(ORG, 77), "R")) == 1  # type: ignore[arg-type]

        second = await store.reserve(
            payer, hold_id="r2", amount=2_000, tokens=0, deadline=time.time() + 60
        )
        assert isinstance(second, Reserved) and second.available == 7_000
        client.close()

    asyncio.run(scenario())
    state = store.credit_state(ORG)
    assert (state.available, state.held, state.unbooked) == (7_000, 2_000, 1_000)
    assert node(other).execute_command("CLUSTER COUNTKEYSINSLOT", slot) > 0


def test_after_a_master_fails_over_its_replica_serves_the_same_client(settings):
    """A master killed: its calls fail closed (CreditUnavailable: the gateway's 503) until
    its replica is promoted; the client reads the map again and the money is intact."""
    cluster = OwnRedisCluster(masters=3, replicas=1)
    cluster.start()
    settings.REDIS_URL = cluster.url
    store = RedisStore()
    payer = Payer(key_id=1, organization_id=ORG)
    slot = slot_of(keys.organization_credit(ORG))
    try:
        master = owner_port(cluster, slot)

        async def scenario() -> None:
            await store.load_balance(ORG, LedgerFigures(10_000, 1, 0))
            for n in range(3):
                reserved = await store.reserve(
                    payer, hold_id=f"a{n}", amount=1_000, tokens=0, deadline=time.time() + 60
                )
                charge = Charge(f"a{n}", 1_000, 100, b'{"request_id": "x"}')
                await store.send_settlement(reserved.hold, charge).reply()
            # (replicated before the kill: the replica acknowledges what its master wrote)
            node(master).execute_command("WAIT", 1, 2000)
            cluster.kill(master)
            refused = 0
            deadline = time.monotonic() + 30
            while True:
                assert time.monotonic() < deadline, "the replica never took over"
                try:
                    result = await store.reserve(
                        payer, hold_id="after", amount=1_000, tokens=0, deadline=time.time() + 60
                    )
                    break
                except CreditUnavailable:
                    refused += 1
                    await asyncio.sleep(0.2)
            assert refused > 0 and isinstance(result, Reserved)
            assert result.available == 10_000 - 300 - 1_000

        asyncio.run(scenario())
        assert owner_port(cluster, slot) != master
    finally:
        cluster.stop()
