"""The hot path's client for a Redis Cluster: the commands and scripts of credit/resp.py,
each sent to the master that serves its key's slot.

Why hand-written, like resp.py: each master gets one FastRedis (one pipelined connection
per event loop), so a call's scripts keep resp.py's latency and its "written before the
answer" promise; redis-py's cluster client would bring back the layers resp.py avoids.

* The slot map comes from CLUSTER SLOTS (every Redis Cluster version and managed offer
  answers it), asked of the node REDIS_URL names or, once known, of any master.
* A key's slot is CRC16 of its hash tag (redis.crc.key_slot). Every script's keys share one
  tag (credit/keys.py), so the first key routes it.
* MOVED (the slot has a new owner): the map is read again and the command sent to the
  owner. ASK (the slot is being migrated and this key has moved): ASKING, then the command,
  on the target's connection, back to back. Neither ran the command, so sending it again
  is safe; at most MAX_REDIRECTIONS times.
* TRYAGAIN (a script's keys are split between the two masters of a slot being migrated):
  sent again after a pause, for up to about TRYAGAIN_SECONDS, then the call fails (503).
* NOSCRIPT is each node's own FastRedis's business (the script is sent in full again).
* A node that cannot be reached fails the call (the caller's 503) and the map is read
  again before the next one (a replica may have been promoted meanwhile).
* A server that is not a cluster (REDIS_CLUSTER=auto on a single Redis) answers CLUSTER
  SLOTS with an error: every command then goes to that server's FastRedis as it is.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator, Sequence
from typing import Any, NoReturn

from redis.crc import REDIS_CLUSTER_HASH_SLOTS, key_slot

from credit.resp import (
    Arg,
    FastRedis,
    RedisReplyError,
    RedisUnavailable,
    ScriptCall,
    checked,
    pack,
)
from credit.scripts import Script

MAX_REDIRECTIONS = 5
TRYAGAIN_PAUSES = (0.02, 0.05, 0.1, 0.2, 0.3, 0.5)  # about TRYAGAIN_SECONDS in all
TRYAGAIN_SECONDS = sum(TRYAGAIN_PAUSES)
Address = tuple[str, int]


def slot_of(key: Arg) -> int:
    return key_slot(key if isinstance(key, bytes) else str(key).encode())


def redirection(error: Exception) -> tuple[str, int, Address] | None:
    """('MOVED' or 'ASK', slot, address) of a redirection error, else None."""
    parts = str(error).split()
    if len(parts) != 3 or parts[0] not in ("MOVED", "ASK"):
        return None
    host, _, port = parts[2].rpartition(":")
    return parts[0], int(parts[1]), (host, int(port))


class ClusterRedis:
    """The hot-path client (FastRedis's methods) over the masters of a Redis Cluster."""

    def __init__(self, seed: Address, node_client: Callable[[str, int], FastRedis]) -> None:
        self._seed = seed
        self._node_client = node_client
        self._nodes: dict[Address, FastRedis] = {}
        self._slots: list[FastRedis] | None = None  # slot -> its master's client
        self._masters: list[FastRedis] = []
        self._single: FastRedis | None = None  # not a cluster: every command goes here
        self._mapping: asyncio.Future[Any] | None = None
        self._stale = False

    # --- the map ----------------------------------------------------------------------
    def node(self, address: Address) -> FastRedis:
        found = self._nodes.get(address)
        if found is None:
            found = self._nodes[address] = self._node_client(*address)
        return found

    async def _map(self) -> None:
        """Read the slot map from the first node that answers."""
        asked = [self._seed, *(a for a in self._nodes if a != self._seed)]
        failure: Exception | None = None
        for address in asked:
            node = self.node(address)
            try:
                reply = await node.call("CLUSTER", "SLOTS")
            except RedisReplyError as exc:
                if "cluster support disabled" in str(exc) and address == self._seed:
                    self._single = node
                    self._slots = [node] * REDIS_CLUSTER_HASH_SLOTS
                    self._masters = [node]
                    return
                failure = exc
                continue
            except RedisUnavailable as exc:
                failure = exc
                continue
            slots: list[FastRedis | None] = [None] * REDIS_CLUSTER_HASH_SLOTS
            for start, end, master, *_ in reply:
                host = master[0].decode() if master[0] else address[0]
                owner = self.node((host, int(master[1])))
                slots[start : end + 1] = [owner] * (end - start + 1)
            missing = [slot for slot, owner in enumerate(slots) if owner is None]
            if missing:  # a slot without a master: calls routed there fail as unavailable
                unserved = _Unserved()
                for slot in missing:
                    slots[slot] = unserved
            self._slots = slots  # type: ignore[assignment]
            self._masters = list(set(slots))  # type: ignore[arg-type]
            self._stale = False
            return
        raise RedisUnavailable(f"no node of the Redis Cluster answered: {failure}")

    async def _ensure_map(self) -> list[FastRedis]:
        if self._slots is None or self._stale:
            if self._mapping is None or self._mapping.done():
                self._mapping = asyncio.ensure_future(self._map())
            mapping = self._mapping
            await asyncio.shield(mapping)
        assert self._slots is not None
        return self._slots

    def _stale_map(self) -> None:
        if self._single is None:
            self._stale = True

    async def _owner(self, key: Arg) -> FastRedis:
        slots = await self._ensure_map()
        return slots[slot_of(key)]

    # --- FastRedis's interface ----------------------------------------------------------
    @property
    def connected(self) -> bool:
        """The map is known and no master's connection is known to be down (one not made
        yet is not: it is made by the next command sent there)."""
        if self._slots is None or self._stale:
            return False
        return all(node._connection is None or node.connected for node in self._masters)

    async def call(self, *args: Arg) -> Any:
        """A command whose first argument is its key (GET, SET, INCR, EXPIRE, XADD...)."""
        if self._single is not None:
            return await self._single.call(*args)
        node = await self._owner(args[1])
        pauses = iter(TRYAGAIN_PAUSES)
        for _ in range(MAX_REDIRECTIONS + len(TRYAGAIN_PAUSES)):
            try:
                return await node.call(*args)
            except RedisUnavailable as exc:
                if await _paused(exc, pauses):
                    continue
                self._stale_map()
                raise
            except RedisReplyError as exc:
                node, asking = await self._redirected(exc)
                if asking:
                    return checked(await _asking(node, pack(args)))
        raise RedisUnavailable("too many Redis Cluster redirections")

    async def run_script(self, script: Script, keys: Sequence[Arg], args: Sequence[Arg]) -> Any:
        return await self.send_script(script, keys, args, now=False).reply()

    def send_script(
        self, script: Script, keys: Sequence[Arg], args: Sequence[Arg], *, now: bool = True
    ) -> ScriptCall | ClusterScriptCall:
        if self._single is not None:
            return self._single.send_script(script, keys, args, now=now)
        return ClusterScriptCall(self, script, keys, args, now)

    def close(self) -> None:
        for node in self._nodes.values():
            node.close()
        self._nodes.clear()
        self._slots = None

    async def _redirected(self, error: RedisReplyError) -> tuple[FastRedis, bool]:
        """Where a MOVED or ASK sends the command (and whether ASKING must precede it);
        any other error is the caller's."""
        found = redirection(error)
        if found is None:
            raise error
        kind, slot, address = found
        node = self.node(address)
        if kind == "MOVED":
            if self._slots is not None:
                self._slots[slot] = node  # at once; the whole map is read again meanwhile
            self._stale_map()
            return node, False
        return node, True


async def _paused(error: RedisUnavailable, pauses: Iterator[float]) -> bool:
    """A TRYAGAIN with a pause left: waited; else False."""
    if not str(error).startswith("TRYAGAIN"):
        return False
    pause = next(pauses, None)
    if pause is None:
        return False
    await asyncio.sleep(pause)
    return True


async def _asking(node: FastRedis, command: bytes) -> Any:
    """ASKING and the command, queued back to back on the node's connection (ASKING lets
    only the next command of its connection reach a slot being imported)."""
    connection = await node._ready()
    connection.send(pack(("ASKING",)))
    return await node._wait(connection, connection.send(command))


class _Unserved(FastRedis):
    """The owner of a slot no master serves (the cluster is failing over)."""

    def __init__(self) -> None:
        super().__init__("redis://unserved:0")

    async def _ready(self) -> NoReturn:
        raise RedisUnavailable("a Redis Cluster slot has no master (CLUSTERDOWN)")


class ClusterScriptCall:
    """One script run on the master of its keys' slot (ScriptCall's interface): sent at
    once when the map is known and that master's connection is up, redirected if need be
    when its reply is awaited."""

    __slots__ = ("_args", "_client", "_inner", "_keys", "_script")

    def __init__(
        self,
        client: ClusterRedis,
        script: Script,
        keys: Sequence[Arg],
        args: Sequence[Arg],
        now: bool,
    ):
        self._client, self._script, self._keys, self._args = client, script, keys, args
        self._inner: ScriptCall | None = None
        slots = client._slots
        if now and slots is not None and not client._stale:
            self._inner = slots[slot_of(keys[0])].send_script(script, keys, args, now=True)

    @property
    def written(self) -> bool:
        return self._inner is not None and self._inner.written

    async def leave(self) -> bool:
        return self._inner is not None and await self._inner.leave()

    async def reply(self) -> Any:
        client = self._client
        if self._inner is None:
            node = await client._owner(self._keys[0])
            self._inner = node.send_script(self._script, self._keys, self._args, now=False)
        pauses = iter(TRYAGAIN_PAUSES)
        for _ in range(MAX_REDIRECTIONS + len(TRYAGAIN_PAUSES)):
            try:
                return await self._inner.reply()
            except RedisUnavailable as exc:
                if await _paused(exc, pauses):
                    node, asking = await client._owner(self._keys[0]), False
                else:
                    client._stale_map()
                    raise
            except RedisReplyError as exc:
                node, asking = await client._redirected(exc)
            if asking:
                connection = await node._ready()
                connection.send(pack(("ASKING",)))
                # (the connection is up: the script is queued right after ASKING)
                self._inner = node.send_script(self._script, self._keys, self._args, now=True)
            else:
                self._inner = node.send_script(self._script, self._keys, self._args, now=False)
        raise RedisUnavailable("too many Redis Cluster redirections")
