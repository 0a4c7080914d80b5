"""Reading configuration from the environment: the few rules shared by settings.py.

Configuration fails loudly: a malformed value stops the process with one line that names
the variable, instead of a traceback or a silently ignored setting.
"""

from __future__ import annotations

import secrets
import sys
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import NoReturn
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import environ

env = environ.Env()


def refuse_to_start(message: str) -> NoReturn:
    """Stop the process with one readable line (settings run before logging exists)."""
    sys.stderr.write(f"nexeon: {message}\n")
    raise SystemExit(2)


def read(reader, name: str, **kwargs):
    """Call a django-environ reader, turning a malformed value into a one-line refusal.

    The value itself is never echoed: URLs and keys carry secrets.
    """
    try:
        return reader(name, **kwargs)
    except (ValueError, TypeError, environ.ImproperlyConfigured):
        expected = getattr(reader, "__name__", "a valid value")
        refuse_to_start(f"{name} is set but is not a valid {expected} value")


def env_decimal(name: str, default: str) -> Decimal:
    """An exact decimal (money and percentages are never floats)."""
    try:
        value = Decimal(env.str(name, default=default).strip())
    except InvalidOperation:
        raise ValueError(name) from None
    if not value.is_finite():
        raise ValueError(name)
    return value


env_decimal.__name__ = "decimal"


def local_secret_key(path: Path) -> str:
    """Development only: a random key generated once and kept in an untracked file."""
    if path.exists():
        key = path.read_text().strip()
        if key:
            return key
    key = secrets.token_urlsafe(50)
    path.write_text(key + "\n")
    path.chmod(0o600)
    return key


SUPPORTED_DATABASES = ("django.db.backends.postgresql", "django.db.backends.sqlite3")


def database(name: str, default: str) -> dict:
    """DATABASE_URL as Django's dict; only PostgreSQL (production) and SQLite (embedded)."""
    config = read(env.db_url, name, default=default)
    if config.get("ENGINE") not in SUPPORTED_DATABASES:
        refuse_to_start(f"{name} must be postgres://user:password@host:port/name or sqlite:///path")
    return config


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def flag(name: str, default: bool) -> bool:
    """A strict boolean: a typo such as DEBUG=ture stops the process instead of meaning off."""
    raw = env.str(name, default="1" if default else "0").strip().lower()
    if raw in _TRUE:
        return True
    if raw in _FALSE:
        return False
    refuse_to_start(f"{name} must be one of 1/0, true/false, yes/no, on/off")


REDIS_DATABASES = 16  # Redis's default `databases`


def redis_url(name: str, url: str) -> str:
    """A Redis URL that every client can use (credit/redis_options.py), or a refusal that
    says what is wrong with it."""
    from credit.redis_options import BadRedisUrl, parse

    try:
        parse(url)
    except BadRedisUrl as bad:
        refuse_to_start(f"{name}: {bad}")
    return url


def redis_neighbour(name: str, url: str, offset: int) -> str:
    """A Redis URL for another role on the same server: `url`'s database number plus
    `offset` (redis://h:6379/0 -> redis://h:6379/1), so that the roles never share one."""
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    if parts.scheme == "unix":
        number = int(query.get("db") or 0) + offset
        query["db"] = str(number)
        derived = f"unix://{parts.netloc}{parts.path}?{urlencode(query)}"
    elif parts.scheme.endswith("+sentinel"):  # /service[/db]
        service, _, path = parts.path.strip("/").partition("/")
        number = (int(path) if path.isdigit() else 0) + offset
        derived = urlunsplit(parts._replace(path=f"/{service}/{number}"))
    else:
        path = parts.path.strip("/")
        number = (int(path) if path.isdigit() else 0) + offset
        derived = urlunsplit(parts._replace(path=f"/{number}"))
    if number >= REDIS_DATABASES:
        refuse_to_start(
            f"{name} is not set, and REDIS_URL's database number leaves no room for it "
            f"(REDIS_URL's number + {offset}): set {name}"
        )
    return derived
