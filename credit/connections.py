"""The one place Redis connections to the project's own database (REDIS_URL) are made.

* `fast()`: the hot path's pipelined client (credit/resp.py), one per event loop; over a
  Redis Cluster, credit/cluster.py's, which sends each command to its slot's master.
* `client()`: redis-py's asyncio client, one per event loop (pub/sub), and `publisher()`
  its blocking twin: over a cluster both speak to the node REDIS_URL names, so that every
  subscriber is where PUBSUB NUMSUB counts (a cluster's counts one node's subscribers).
* `sync()`: redis-py's blocking client, one per process (workers, commands, views);
  redis-py's RedisCluster over a cluster.
* `probe()`: the same with short time-outs, for the readiness probe.

All read the same URL; None / an error when REDIS_URL is unset (the embedded
default keeps the money state in memory: credit.memory_store).

Whether REDIS_URL is a Redis Cluster: REDIS_CLUSTER=yes or no says so; `auto` (the
default) asks the server (`INFO cluster`) once per process for the blocking clients, and
the hot path's client finds out from its first CLUSTER SLOTS. A cluster has only database
0: the URL's database number is ignored there.
"""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

import redis
import redis.asyncio as aioredis
from django.conf import settings
from redis.cluster import RedisCluster

from credit.cluster import ClusterRedis
from credit.resp import FastRedis
from nexeon.loops import running_loop

_clients: dict[int, aioredis.Redis] = {}
_fast: dict[int, FastRedis | ClusterRedis] = {}
_fast_urls: dict[int, str] = {}
_sync: tuple[str, redis.Redis] | None = None
_probe: tuple[str, redis.Redis] | None = None
_cluster: dict[str, bool] = {}
SOCKET_TIMEOUT = 10.0
PROBE_TIMEOUT = 2.0


def node_url(url: str, host: str | None = None, port: int | None = None) -> str:
    """`url` for database 0 (a cluster's only one), on another node if given."""
    parts = urlsplit(url)
    netloc = parts.netloc
    if host is not None:
        credentials = netloc.rpartition("@")[0]
        address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        netloc = f"{credentials}@{address}" if credentials else address
    return urlunsplit(parts._replace(netloc=netloc, path=""))


def is_cluster(url: str) -> bool:
    """Whether `url` is a Redis Cluster (REDIS_CLUSTER, else asked once and remembered).
    Raises redis.RedisError when it must be asked and cannot be."""
    mode = settings.REDIS_CLUSTER
    if mode != "auto":
        return mode == "yes"
    return ask_cluster(url)


def ask_cluster(url: str) -> bool:
    """Whether the Redis at `url` (any role's) is a Redis Cluster, asked once (INFO
    cluster) and remembered. Raises redis.RedisError when it cannot be asked."""
    found = _cluster.get(url)
    if found is None:
        with redis.Redis.from_url(
            url, socket_timeout=PROBE_TIMEOUT, socket_connect_timeout=PROBE_TIMEOUT
        ) as asked:
            found = _cluster[url] = bool(asked.info("cluster").get("cluster_enabled"))
    return found


def _blocking(url: str, **options) -> tuple[redis.Redis, bool]:
    """A blocking client of `url` (RedisCluster over a cluster), and whether it may be
    kept: Redis unreachable, a plain client that is not (its commands fail as Redis's do;
    the next call asks again)."""
    try:
        cluster = is_cluster(url)
    except redis.RedisError:
        return redis.Redis.from_url(url, **options), False
    if cluster:
        return _ClusterClient.from_url(node_url(url), **options), True
    return redis.Redis.from_url(url, **options), True


class _ClusterClient(RedisCluster):
    def ping(self, **kwargs) -> bool:
        """Every master answers (a master down leaves a share of the money unreachable)."""
        kwargs.setdefault("target_nodes", RedisCluster.PRIMARIES)
        return super().ping(**kwargs)


def configured() -> bool:
    return bool(settings.REDIS_URL)


def client() -> aioredis.Redis | None:
    # Looked up on every request: a dict hit, no Django settings access on the hot path.
    loop_id = id(running_loop())
    found = _clients.get(loop_id)
    if found is None:
        if not settings.REDIS_URL:
            return None
        # A blocking pool: under a burst, requests wait briefly for a connection instead
        # of failing with "Too many connections".
        pool = aioredis.BlockingConnectionPool.from_url(
            _pubsub_url(settings.REDIS_URL),
            max_connections=512,
            timeout=5,
            socket_connect_timeout=2,
            socket_timeout=5,
            health_check_interval=30,
        )
        found = _clients[loop_id] = aioredis.Redis(connection_pool=pool)
    return found


def _pubsub_url(url: str) -> str:
    try:
        return node_url(url) if is_cluster(url) else url
    except redis.RedisError:
        return url  # (unreachable: the commands fail as they would)


_publisher: tuple[str, redis.Redis] | None = None


def publisher() -> redis.Redis:
    """A blocking client of the node REDIS_URL names, for PUBLISH and PUBSUB NUMSUB."""
    global _publisher
    url = settings.REDIS_URL
    if _publisher is None or _publisher[0] != url:
        made = redis.Redis.from_url(
            _pubsub_url(url), socket_timeout=SOCKET_TIMEOUT, socket_connect_timeout=5
        )
        _publisher = (url, made)
    return _publisher[1]


def fast() -> FastRedis | ClusterRedis:
    """The hot path's own client; only where REDIS_URL is set."""
    loop_id = id(running_loop())
    found = _fast.get(loop_id)
    url = settings.REDIS_URL  # (a cached attribute: tests point it at their own servers)
    if found is None or _fast_urls.get(loop_id) != url:
        mode = settings.REDIS_CLUSTER
        # Known standalone (REDIS_CLUSTER=no, or asked already: the process's startup
        # checks ask), FastRedis itself; else ClusterRedis, which finds out from its first
        # CLUSTER SLOTS and on a single Redis hands every command to one FastRedis.
        if mode == "no" or (mode == "auto" and _cluster.get(url) is False):
            found = FastRedis(url)
        else:
            parts = urlsplit(url)
            if parts.scheme == "unix":
                found = FastRedis(url)
            else:
                seed = (parts.hostname or "127.0.0.1", parts.port or 6379)
                found = ClusterRedis(seed, lambda host, port, u=url: _node(u, host, port, seed))
        _fast[loop_id], _fast_urls[loop_id] = found, url
    return found


def _node(url: str, host: str, port: int, seed: tuple[str, int]) -> FastRedis:
    """The hot path's client of one node: the URL's own for the node it names (its
    database kept for a single Redis), database 0 for the cluster's others."""
    return FastRedis(url if (host, port) == seed else node_url(url, host, port))


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


def probe() -> redis.Redis:
    """A blocking client that gives up within PROBE_TIMEOUT (a probe must answer in time)."""
    global _probe
    url = settings.REDIS_URL
    if _probe is None or _probe[0] != url:
        made, known = _blocking(
            url, socket_timeout=PROBE_TIMEOUT, socket_connect_timeout=PROBE_TIMEOUT
        )
        if not known:
            return made
        _probe = (url, made)
    return _probe[1]
