"""What a Redis URL says, read once for every client that connects with it: the hot
path's FastRedis, redis-py (sync, asyncio), the Django cache and Celery's broker.

URL forms:

* `redis://[[user]:password@]host[:port][/db]`, `unix:///path?db=N`;
* `rediss://...` (TLS) with the options `ssl_ca_certs` (a PEM file of the CAs to trust;
  default the system's), `ssl_cert_reqs` (`required`, the default, `optional` or `none`),
  `ssl_certfile` / `ssl_keyfile` (a client certificate) and `ssl_check_hostname`
  (default on when certificates are required);
* `redis+sentinel://[[user]:password@]host[:port][,host2[:port2]...]/service[/db]` and
  `rediss+sentinel://...` (TLS to the sentinels and to the servers): the sentinels
  (port 26379 by default) name the current primary of `service`. The user and password
  are the servers'; `sentinel_username` / `sentinel_password` options are the
  sentinels' when they require one. The convention of redis-sentinel-url, redisvl and
  prefect-redis.

A value that cannot mean anything stops the process at start with a line that names it.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

SENTINEL_PORT = 26379
SSL_OPTIONS = ("ssl_ca_certs", "ssl_cert_reqs", "ssl_certfile", "ssl_keyfile", "ssl_check_hostname")
SENTINEL_OPTIONS = ("sentinel_username", "sentinel_password")
CERT_REQS = {"none": ssl.CERT_NONE, "optional": ssl.CERT_OPTIONAL, "required": ssl.CERT_REQUIRED}
_TRUE, _FALSE = {"1", "true", "yes", "on"}, {"0", "false", "no", "off"}


class BadRedisUrl(ValueError):
    """A Redis URL, or one of its options, that cannot be used (the secret never shown)."""


@dataclass(frozen=True, slots=True)
class Tls:
    """TLS as the URL asks for it: certificates verified unless it says otherwise."""

    ca_certs: str | None = None
    cert_reqs: ssl.VerifyMode = ssl.CERT_REQUIRED
    certfile: str | None = None
    keyfile: str | None = None
    check_hostname: bool = True

    def context(self) -> ssl.SSLContext:
        """An SSLContext of its own: the trust store the providers' clients use is not
        touched (a private CA for Redis does not become one for the internet)."""
        context = ssl.create_default_context(cafile=self.ca_certs)
        context.check_hostname = self.check_hostname and self.cert_reqs != ssl.CERT_NONE
        context.verify_mode = self.cert_reqs
        if self.certfile:
            context.load_cert_chain(self.certfile, self.keyfile)
        return context

    def redis_py(self) -> dict[str, Any]:
        """redis-py's SSLConnection options (what kombu's broker_use_ssl takes too)."""
        return {
            "ssl_ca_certs": self.ca_certs,
            "ssl_cert_reqs": self.cert_reqs,
            "ssl_certfile": self.certfile,
            "ssl_keyfile": self.keyfile,
            "ssl_check_hostname": self.check_hostname and self.cert_reqs != ssl.CERT_NONE,
        }


@dataclass(frozen=True, slots=True)
class RedisTarget:
    """Where the data lives and how to reach it. `sentinels` set: ask them for
    `service`'s primary (host and port are then unknown until asked)."""

    host: str = "127.0.0.1"
    port: int = 6379
    path: str | None = None  # a unix socket
    db: int = 0
    username: str | None = None
    password: str | None = None
    tls: Tls | None = None
    sentinels: tuple[tuple[str, int], ...] = ()
    service: str | None = None
    sentinel_username: str | None = None
    sentinel_password: str | None = None

    @property
    def uses_sentinel(self) -> bool:
        return bool(self.sentinels)

    def redis_py(self, *, asyncio: bool = False) -> dict[str, Any]:
        """Keyword arguments for a redis-py connection pool (redis.asyncio's with
        `asyncio`). A Sentinel target's gives no address nor connection class: its pool
        (redis.sentinel's) asks the sentinels, and `ssl` says whether to use TLS."""
        if asyncio:
            from redis.asyncio import connection
        else:
            from redis import connection  # type: ignore[no-redef]

        options: dict[str, Any] = {"db": self.db, **self._credentials()}
        if self.uses_sentinel:
            if self.tls is not None:
                options.update(ssl=True, **self.tls.redis_py())
        elif self.path:
            options.update(path=self.path, connection_class=connection.UnixDomainSocketConnection)
        elif self.tls is not None:
            options.update(host=self.host, port=self.port, **self.tls.redis_py())
            options["connection_class"] = connection.SSLConnection
        else:
            options.update(host=self.host, port=self.port, connection_class=connection.Connection)
        return options

    def sentinel_kwargs(self) -> dict[str, Any]:
        """How to talk to the sentinels themselves (redis.sentinel.Sentinel's)."""
        options: dict[str, Any] = {}
        if self.sentinel_password:
            options["password"] = self.sentinel_password
        if self.sentinel_username:
            options["username"] = self.sentinel_username
        if self.tls is not None:
            options.update(ssl=True, **self.tls.redis_py())
        return options

    def _credentials(self) -> dict[str, Any]:
        return {
            name: value
            for name, value in (("username", self.username), ("password", self.password))
            if value
        }


def parse(url: str) -> RedisTarget:
    """The target a Redis URL names; BadRedisUrl when it names none."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ("redis", "rediss", "unix", "redis+sentinel", "rediss+sentinel"):
        raise BadRedisUrl(
            "a Redis URL starts with redis://, rediss://, unix://, redis+sentinel:// or "
            "rediss+sentinel://"
        )
    query = dict(parse_qsl(parts.query))
    tls = _tls(query) if scheme.startswith("rediss") else None
    if tls is None and (given := [name for name in SSL_OPTIONS if name in query]):
        raise BadRedisUrl(f"{', '.join(given)} given for a Redis URL without TLS (rediss://)")
    if unknown := sorted(set(query) - {"db", *SSL_OPTIONS, *SENTINEL_OPTIONS}):
        raise BadRedisUrl(
            f"unknown Redis URL option {', '.join(unknown)} (known: db, "
            f"{', '.join(SSL_OPTIONS)}, {', '.join(SENTINEL_OPTIONS)})"
        )
    username, password = _userinfo(parts.netloc)
    common: dict[str, Any] = {"username": username, "password": password, "tls": tls}
    if scheme == "unix":
        return RedisTarget(path=unquote(parts.path), db=_number(query.get("db", "0")), **common)
    if scheme.endswith("+sentinel"):
        segments = [unquote(s) for s in parts.path.split("/") if s]
        if not segments:
            raise BadRedisUrl("a Sentinel URL names its service: redis+sentinel://host/service")
        hosts = parts.netloc.rpartition("@")[2]
        return RedisTarget(
            db=_number(segments[1] if len(segments) > 1 else query.get("db", "0")),
            sentinels=tuple(_address(item, SENTINEL_PORT) for item in hosts.split(",")),
            service=segments[0],
            sentinel_username=query.get("sentinel_username"),
            sentinel_password=query.get("sentinel_password"),
            **common,
        )
    host, port = _address(parts.netloc.rpartition("@")[2] or "127.0.0.1", 6379)
    path = parts.path.strip("/")
    return RedisTarget(host=host, port=port, db=_number(query.get("db") or path or "0"), **common)


def _tls(query: dict[str, str]) -> Tls:
    reqs = query.get("ssl_cert_reqs", "required").lower()
    if reqs not in CERT_REQS:
        raise BadRedisUrl("ssl_cert_reqs must be required, optional or none")
    check = query.get("ssl_check_hostname", "true").lower()
    if check not in _TRUE | _FALSE:
        raise BadRedisUrl("ssl_check_hostname must be true or false")
    if "ssl_keyfile" in query and "ssl_certfile" not in query:
        raise BadRedisUrl("ssl_keyfile needs ssl_certfile (the client certificate)")
    return Tls(
        ca_certs=query.get("ssl_ca_certs") or None,
        cert_reqs=CERT_REQS[reqs],
        certfile=query.get("ssl_certfile") or None,
        keyfile=query.get("ssl_keyfile") or None,
        check_hostname=check in _TRUE,
    )


def _userinfo(netloc: str) -> tuple[str | None, str | None]:
    userinfo, at, _ = netloc.rpartition("@")
    if not at:
        return None, None
    username, colon, password = userinfo.partition(":")
    return unquote(username) or None, unquote(password) if colon and password else None


def _address(text: str, default_port: int) -> tuple[str, int]:
    text = text.strip()
    if text.startswith("["):  # an IPv6 literal
        host, _, rest = text[1:].partition("]")
        port = rest.removeprefix(":")
    else:
        host, _, port = text.partition(":")
    return host or "127.0.0.1", _number(port) if port else default_port


def _number(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise BadRedisUrl(f"{text!r} is not a number in a Redis URL") from None


@dataclass(frozen=True, slots=True)
class Broker:
    """Celery's broker settings for a Redis URL: kombu's own URL form (`sentinel://` hosts
    joined by `;` for a Sentinel URL), its TLS options (broker_use_ssl: certificates
    verified unless the URL says otherwise) and transport options to add."""

    url: str
    use_ssl: dict[str, Any] | None
    transport_options: dict[str, Any]


def celery_broker(url: str) -> Broker:
    target = parse(url)
    parts = urlsplit(url)
    use_ssl = target.tls.redis_py() if target.tls is not None else None
    if target.uses_sentinel:
        userinfo = parts.netloc.rpartition("@")[0]
        auth = f"{userinfo}@" if userinfo else ""
        hosts = ";".join(
            f"sentinel://{auth}{_netloc(host, port)}/{target.db}" for host, port in target.sentinels
        )
        options: dict[str, Any] = {"master_name": target.service}
        if sentinel_kwargs := target.sentinel_kwargs():
            options["sentinel_kwargs"] = sentinel_kwargs
        return Broker(hosts, use_ssl, options)
    if target.path:
        return Broker(url, None, {})
    # The TLS options go in broker_use_ssl, typed; kombu would read them from the query
    # as strings.
    return Broker(parts._replace(path=f"/{target.db}", query="").geturl(), use_ssl, {})


def _netloc(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
