"""The Django cache on Redis (CACHE_REDIS_URL), standalone or a Redis Cluster.

Django's RedisCache speaks to one server through redis.Redis; a cluster answers it MOVED.
Here the server is asked once whether it is a cluster (credit.connections.ask_cluster) and,
if so, redis-py's RedisCluster is used, with the multi-key commands split by slot, and
`clear()` deletes only the cache's own keys (KEY_PREFIX): a cluster has one database,
which may also hold the money state, so FLUSHDB is never sent there.
"""

from __future__ import annotations

from typing import Any

import redis
from django.core.cache.backends.redis import RedisCache as DjangoRedisCache
from django.core.cache.backends.redis import RedisCacheClient
from redis.cluster import RedisCluster

from credit.connections import ask_cluster, node_url


class CacheClient(RedisCacheClient):
    def __init__(
        self, servers, serializer=None, pool_class=None, parser_class=None, **options
    ) -> None:
        super().__init__(servers, serializer, pool_class, parser_class, **options)
        self._options = options  # (the connection's; the pool and parser are Django's)
        self._cluster: RedisCluster | None = None
        self._standalone = False  # known not to be a cluster

    def cluster(self) -> RedisCluster | None:
        """The cluster client, or None on a standalone Redis (asked again while the server
        cannot be reached: commands then fail as Django's own client's do)."""
        if self._cluster is None and not self._standalone:
            url = self._servers[0]
            try:
                found = ask_cluster(url)
            except redis.RedisError:
                return None
            if found:
                self._cluster = RedisCluster.from_url(node_url(url), **self._options)
            else:
                self._standalone = True
        return self._cluster

    def get_client(self, key=None, *, write=False):
        return self.cluster() or super().get_client(key, write=write)

    def get_many(self, keys) -> dict[Any, Any]:
        cluster = self.cluster()
        if cluster is None:
            return super().get_many(keys)
        keys = list(keys)
        values = cluster.mget_nonatomic(keys)
        found = zip(keys, values, strict=True)
        return {key: self._serializer.loads(value) for key, value in found if value is not None}

    def set_many(self, data, timeout) -> None:
        cluster = self.cluster()
        if cluster is None:
            return super().set_many(data, timeout)
        cluster.mset_nonatomic({k: self._serializer.dumps(v) for k, v in data.items()})
        if timeout is not None:
            for key in data:
                cluster.expire(key, timeout)
        return None

    def clear_prefix(self, prefix: str) -> bool:
        cluster = self.cluster()
        if cluster is None:
            return bool(self.get_client(None, write=True).flushdb())
        for name in cluster.scan_iter(match=f"{prefix}:*", count=1000):
            cluster.delete(name)
        return True


class RedisCache(DjangoRedisCache):
    def __init__(self, server, params) -> None:
        super().__init__(server, params)
        self._class = CacheClient

    def clear(self) -> bool:  # type: ignore[override]  # (Django's own returns the flush's bool)
        return self._cache.clear_prefix(self.key_prefix)
