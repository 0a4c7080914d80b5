"""Redis URLs, read once for every client (credit/redis_options.py): the forms, their
options, and a clear refusal of what cannot mean anything."""

from __future__ import annotations

import ssl

import pytest

from credit.redis_options import BadRedisUrl, celery_broker, parse
from nexeon.env import redis_neighbour


def test_plain_tls_and_unix_urls():
    plain = parse("redis://:pw@cache.internal:6380/4")
    assert (plain.host, plain.port, plain.db, plain.password, plain.tls) == (
        "cache.internal",
        6380,
        4,
        "pw",
        None,
    )
    secure = parse("rediss://u:pw@h/1?ssl_ca_certs=/ca.pem&ssl_certfile=/c.pem&ssl_keyfile=/k.pem")
    assert secure.username == "u" and secure.tls is not None
    assert secure.tls.cert_reqs == ssl.CERT_REQUIRED and secure.tls.check_hostname
    assert (secure.tls.ca_certs, secure.tls.certfile, secure.tls.keyfile) == (
        "/ca.pem",
        "/c.pem",
        "/k.pem",
    )
    relaxed = parse("rediss://h/0?ssl_cert_reqs=none&ssl_check_hostname=false").tls
    assert relaxed.cert_reqs == ssl.CERT_NONE and not relaxed.check_hostname
    assert parse("unix:///run/redis.sock?db=2").path == "/run/redis.sock"


def test_sentinel_urls():
    target = parse(
        "redis+sentinel://:data-pw@s1:26380,s2,[::1]:26381/mymaster/3?sentinel_password=s-pw"
    )
    assert target.sentinels == (("s1", 26380), ("s2", 26379), ("::1", 26381))
    assert (target.service, target.db, target.password) == ("mymaster", 3, "data-pw")
    assert target.sentinel_kwargs() == {"password": "s-pw"}
    assert parse("rediss+sentinel://s1/m").tls is not None


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://h/0", "starts with"),
        ("rediss://h/0?ssl_cert_reqs=maybe", "ssl_cert_reqs"),
        ("redis://h/0?ssl_ca_certs=/ca.pem", "without TLS"),
        ("rediss://h/0?ssl_keyfile=/k.pem", "ssl_certfile"),
        ("redis://h/0?socket_timout=1", "unknown Redis URL option socket_timout"),
        ("redis+sentinel://s1:26379", "names its service"),
        ("redis://h:port/0", "not a number"),
    ],
)
def test_what_cannot_mean_anything_is_refused_clearly(url, message):
    with pytest.raises(BadRedisUrl, match=message):
        parse(url)


def test_the_cache_and_broker_neighbours_of_a_sentinel_url_keep_its_service():
    url = "redis+sentinel://s1:26379,s2:26379/mymaster/0"
    assert (
        redis_neighbour("CACHE_REDIS_URL", url, 1)
        == "redis+sentinel://s1:26379,s2:26379/mymaster/1"
    )


def test_celerys_broker_settings():
    tls = celery_broker("rediss://:pw@h:6380/2?ssl_ca_certs=/ca.pem")
    assert tls.url == "rediss://:pw@h:6380/2"  # the options go typed into broker_use_ssl
    assert tls.use_ssl["ssl_cert_reqs"] == ssl.CERT_REQUIRED
    assert tls.use_ssl["ssl_ca_certs"] == "/ca.pem"
    assert celery_broker("redis://h/2").use_ssl is None
    watched = celery_broker("redis+sentinel://:pw@s1,s2:26380/mymaster/2")
    assert watched.url == "sentinel://:pw@s1:26379/2;sentinel://:pw@s2:26380/2"
    assert watched.transport_options == {"master_name": "mymaster"}
