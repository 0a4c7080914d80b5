"""The one place Redis connections to the project's own database (REDIS_URL) are made.

* `fast()`: the hot path's pipelined client (credit/resp.py), one per event loop; over a
  Redis Cluster, credit/cluster.py's, which sends each command to its slot's master.
* `client()`: redis-py's asyncio client, one per event loop; `subscriber()` a dedicated
  one for a process's pub/sub subscriber (usage/live_hub.py), and `publisher()` their
  blocking twin: over a cluster they speak to the node REDIS_URL names, so that every
  subscriber is where PUBSUB NUMSUB counts (a cluster's counts one node's subscribers).
* `sync()`: redis-py's blocking client, one per process (workers, commands, views);
  redis-py's RedisCluster over a cluster.

All read the same URL through credit/redis_options.py (TLS options, Sentinel), as do the
Django cache (`CachePool`) and Celery's broker (nexeon/settings.py). None / an error when
REDIS_URL is unset (the embedded default keeps the money state in memory:
credit.memory_store).

Whether REDIS_URL is a Redis Cluster: REDIS_CLUSTER=yes or no says so; `auto` (the
default) asks the server (`INFO cluster`) once per process for the blocking clients, and
the hot path's client finds out from its first CLUSTER SLOTS. A cluster has only database
0: the URL's database number is ignored there. A Sentinel URL is never a cluster.
"""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any, Literal, cast, overload
from urllib.parse import urlsplit, urlunsplit

import redis
import redis.asyncio as aioredis
import redis.asyncio.sentinel as aiosentinel
import redis.sentinel
from django.conf import settings
from redis.cluster import RedisCluster

from credit import redis_options
from credit.cluster import ClusterRedis
from credit.resp import FastRedis
from nexeon.loops import running_loop

_clients: dict[int, aioredis.Redis] = {}
# loop id -> (the loop, REDIS_URL, its client): a loop that ended may leave its id, and
# tests point REDIS_URL at their own servers
_fast: dict[int, tuple[asyncio.AbstractEventLoop, str, FastRedis | ClusterRedis]] = {}
_sync: tuple[str, redis.Redis] | None = None
_cluster: dict[str, bool] = {}
SOCKET_TIMEOUT = 10.0
ASK_TIMEOUT = 2.0


def node_url(url: str, host: str | None = None, port: int | None = None) -> str:
    """`url` for database 0 (a cluster's only one), on another node if given."""
    parts = urlsplit(url)
    netloc = parts.netloc
    if host is not None:
        credentials = netloc.rpartition("@")[0]
        address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        netloc = f"{credentials}@{address}" if credentials else address
    return urlunsplit(parts._replace(netloc=netloc, path=""))


# A redis-py connection pool: the blocking clients' or redis.asyncio's.
Pool = redis.ConnectionPool | aioredis.ConnectionPool


def is_cluster(url: str) -> bool:
    """Whether `url` is a Redis Cluster (REDIS_CLUSTER, else asked once and remembered).
    Raises redis.RedisError when it must be asked and cannot be."""
    mode: str = settings.REDIS_CLUSTER
    if mode != "auto":
        return mode == "yes"
    return ask_cluster(url)


def ask_cluster(url: str) -> bool:
    """Whether the Redis at `url` (any role's) is a Redis Cluster, asked once (INFO
    cluster) and remembered. Raises redis.RedisError when it cannot be asked."""
    found = _cluster.get(url)
    if found is None:
        if redis_options.parse(url).uses_sentinel:
            found = _cluster[url] = False
        else:
            made = pool(url, socket_timeout=ASK_TIMEOUT, socket_connect_timeout=ASK_TIMEOUT)
            with redis.Redis(connection_pool=made) as asked:
                found = _cluster[url] = bool(asked.info("cluster").get("cluster_enabled"))
    return found


def _blocking(url: str, **options: Any) -> tuple[redis.Redis, bool]:
    """A blocking client of `url` (RedisCluster over a cluster), and whether it may be
    kept: Redis unreachable, a plain client that is not (its commands fail as Redis's do;
    the next call asks again)."""
    try:
        cluster = is_cluster(url)
    except redis.RedisError:
        return redis.Redis(connection_pool=pool(url, **options)), False
    if cluster:
        # (RedisCluster answers the commands the callers send as redis.Redis does)
        return cast(redis.Redis, _ClusterClient.from_url(node_url(url), **options)), True
    return redis.Redis(connection_pool=pool(url, **options)), True


class _ClusterClient(RedisCluster):
    def ping(self, **kwargs: Any) -> bool:
        """Every master answers (a master down leaves a share of the money unreachable)."""
        kwargs.setdefault("target_nodes", RedisCluster.PRIMARIES)
        return super().ping(**kwargs)


def configured() -> bool:
    return bool(settings.REDIS_URL)


@overload
def pool(
    url: str,
    *,
    asyncio: Literal[False] = False,
    pool_class: type[Any] | None = None,
    **options: Any,
) -> redis.ConnectionPool: ...
@overload
def pool(
    url: str, *, asyncio: Literal[True], pool_class: type[Any] | None = None, **options: Any
) -> aioredis.ConnectionPool: ...
def pool(
    url: str, *, asyncio: bool = False, pool_class: type[Any] | None = None, **options: Any
) -> Pool:
    """A redis-py connection pool for `url` (redis.asyncio's with `asyncio`), with every
    option of the URL; a Sentinel URL's asks its sentinels for the primary (and takes no
    `pool_class`: redis.sentinel's own, not blocking)."""
    target = redis_options.parse(url)
    kwargs = {**target.redis_py(asyncio=asyncio), **options}
    if not target.uses_sentinel:
        kind = pool_class or (aioredis.ConnectionPool if asyncio else redis.ConnectionPool)
        return kind(**kwargs)
    kwargs.pop("timeout", None)  # (a BlockingConnectionPool's wait)
    timeouts = ("socket_timeout", "socket_connect_timeout")
    sentinel_kwargs = {
        **target.sentinel_kwargs(),
        **{name: options[name] for name in timeouts if name in options},
    }
    if asyncio:
        manager = aiosentinel.Sentinel(target.sentinels, sentinel_kwargs=sentinel_kwargs)
        return aiosentinel.SentinelConnectionPool(target.service, manager, **kwargs)
    sync_manager = redis.sentinel.Sentinel(target.sentinels, sentinel_kwargs=sentinel_kwargs)
    return redis.sentinel.SentinelConnectionPool(target.service, sync_manager, **kwargs)


class CachePool:
    """The Django cache's pool class (CACHES' OPTIONS["pool_class"]): the same URL
    reading as every other client, Sentinel and TLS options included."""

    @classmethod
    def from_url(cls, url: str, **options: Any) -> redis.ConnectionPool:
        made: redis.ConnectionPool = pool(url, **options)  # (Django passes no `asyncio`)
        return made


def client() -> aioredis.Redis | None:
    # Looked up on every request: a dict hit, no Django settings access on the hot path.
    loop_id = id(running_loop())
    found = _clients.get(loop_id)
    if found is None:
        if not settings.REDIS_URL:
            return None
        # A blocking pool: under a burst, requests wait briefly for a connection instead
        # of failing with "Too many connections".
        made = pool(
            _pubsub_url(settings.REDIS_URL),
            asyncio=True,
            pool_class=aioredis.BlockingConnectionPool,
            max_connections=512,
            timeout=5,
            socket_connect_timeout=2,
            socket_timeout=5,
            health_check_interval=30,
        )
        found = _clients[loop_id] = aioredis.Redis(connection_pool=made)
    return found


def _pubsub_url(url: str) -> str:
    try:
        return node_url(url) if is_cluster(url) else url
    except redis.RedisError:
        return url  # (unreachable: the commands fail as they would)


def subscriber(client_name: str) -> aioredis.Redis:
    """A new asyncio client with a pool of its own, for a process's one pub/sub subscriber
    (usage/live_hub.py): its connection is named (CLIENT LIST shows it) and held for as
    long as the subscriber lives, never taken from `client()`'s pool."""
    made = pool(
        _pubsub_url(settings.REDIS_URL),
        asyncio=True,
        client_name=client_name,
        socket_connect_timeout=2,
        socket_timeout=5,
        health_check_interval=30,
    )
    return aioredis.Redis(connection_pool=made)


_publisher: tuple[str, redis.Redis] | None = None


def publisher() -> redis.Redis:
    """A blocking client of the node REDIS_URL names, for PUBLISH and PUBSUB NUMSUB."""
    global _publisher
    url = settings.REDIS_URL
    if _publisher is None or _publisher[0] != url:
        made = pool(_pubsub_url(url), socket_timeout=SOCKET_TIMEOUT, socket_connect_timeout=5)
        _publisher = (url, redis.Redis(connection_pool=made))
    return _publisher[1]


def fast() -> FastRedis | ClusterRedis:
    """The hot path's own client on this loop; only where REDIS_URL is set."""
    loop = running_loop()
    found = _fast.get(id(loop))
    url = settings.REDIS_URL  # (a cached attribute)
    if found is not None and found[0] is loop and found[1] == url:
        return found[2]
    single = FastRedis(url, loop=loop)
    mode = settings.REDIS_CLUSTER
    target = single.target
    # Known standalone (REDIS_CLUSTER=no, a Sentinel or unix-socket URL, or asked already:
    # the process's startup checks ask), FastRedis itself; else ClusterRedis, which finds
    # out from its first CLUSTER SLOTS and on a single Redis hands every command to the
    # URL's own client.
    standalone = (
        mode == "no"
        or (mode == "auto" and _cluster.get(url) is False)
        or target.uses_sentinel
        or target.path is not None
    )
    if standalone:
        made: FastRedis | ClusterRedis = single
    else:
        seed = (target.host, target.port)
        made = ClusterRedis(seed, lambda host, port: _node(single, host, port, seed))
    _fast[id(loop)] = (loop, url, made)
    return made


def _node(single: FastRedis, host: str, port: int, seed: tuple[str, int]) -> FastRedis:
    """The hot path's client of one node: the URL's own for the node it names (its
    database kept for a single Redis), database 0 for the cluster's others."""
    if (host, port) == seed:
        return single
    node = single.node(host, port)
    node.target = dataclasses.replace(node.target, db=0)
    return node


def sync() -> redis.Redis:
    """A blocking client (thread-safe, pooled; reconnects in a forked child)."""
    global _sync
    url = settings.REDIS_URL
    if _sync is None or _sync[0] != url:  # (tests point REDIS_URL at their own servers)
        made, known = _blocking(
            url, socket_timeout=SOCKET_TIMEOUT, socket_connect_timeout=5, health_check_interval=30
        )
        if not known:
            return made
        _sync = (url, made)
    return _sync[1]


def fast_clients() -> dict[int, FastRedis | ClusterRedis]:
    """Every loop's hot-path client by loop id (for tests and diagnostics)."""
    return {loop_id: found[2] for loop_id, found in _fast.items()}


def close_fast(loop: asyncio.AbstractEventLoop) -> None:
    """Close and forget `loop`'s hot-path client (a loop that is about to close)."""
    found = _fast.pop(id(loop), None)
    if found is not None:
        found[2].close()
