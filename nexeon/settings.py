"""NeXeonAI settings: everything comes from the environment (see docs/configuration.md).

Embedded default (nothing set): SQLite file, in-process cache and limiter, Celery tasks run
eagerly. Production: DATABASE_URL (PostgreSQL) and REDIS_URL (money state; the cache and the
Celery broker in the next two Redis databases unless CACHE_REDIS_URL / CELERY_BROKER_URL).
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from urllib.parse import urlsplit

from accounts.plans import DEFAULT_PLANS, validated_plans
from apigateway.providers.options import configured as configured_provider_options
from apigateway.upstream_tls import configured as configured_provider_tls
from credit.redis_options import celery_broker
from nexeon.env import (
    database,
    env,
    env_decimal,
    flag,
    local_secret_key,
    read,
    redis_neighbour,
    redis_url,
    refuse_to_start,
)

BASE_DIR = Path(__file__).resolve().parent.parent
# Where the embedded defaults keep their files (the SQLite database, the development key).
DATA_DIR = Path(read(env.str, "DATA_DIR", default=str(BASE_DIR))).resolve()

DEBUG = flag("DEBUG", default=False)

SECRET_KEY = env.str("SECRET_KEY", default="")
if not SECRET_KEY:
    if not DEBUG:
        refuse_to_start(
            "SECRET_KEY is not set and DEBUG is off: set SECRET_KEY to a long random string "
            "(or DEBUG=1 for development, which generates one into .secret_key)."
        )
    SECRET_KEY = local_secret_key(DATA_DIR / ".secret_key")

ALLOWED_HOSTS = read(env.list, "ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]"])
CSRF_TRUSTED_ORIGINS = read(env.list, "CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "servestatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "csp",
    "allauth",
    "allauth.account",
    "allauth.mfa",
    "allauth.socialaccount",
    "allauth.socialaccount.providers.google",
    "allauth.socialaccount.providers.github",
    "accounts",
    "billing",
    "apigateway",
    "usage",
]

MIDDLEWARE = [
    "nexeon.probes.ProbesAnyHostMiddleware",  # before anything checks ALLOWED_HOSTS
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "servestatic.middleware.ServeStaticMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    "nexeon.admin_access.AdminNetworkMiddleware",
]

ROOT_URLCONF = "nexeon.urls"
ASGI_APPLICATION = "nexeon.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "apigateway.provider_report.context",  # providers, demo model: `serving`
            ],
        },
    },
]

# --- Data stores -------------------------------------------------------------------------

DATABASES = {"default": database("DATABASE_URL", default=f"sqlite:///{DATA_DIR / 'db.sqlite3'}")}
DATABASES["default"]["CONN_MAX_AGE"] = read(env.int, "DATABASE_CONN_MAX_AGE", default=0)
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets the dashboard read while a request writes; the timeout rides out short locks.
    DATABASES["default"]["OPTIONS"] = {
        "init_command": "PRAGMA journal_mode=WAL;",
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
    }
elif DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    DATABASES["default"].setdefault("OPTIONS", {}).setdefault("connect_timeout", 5)
    # Behind PgBouncer in transaction mode, consecutive transactions of one client may run
    # on different server connections, where a server-side cursor does not exist (prepared
    # statements, the other such state, are off already: Django's default).
    if flag("DATABASE_TRANSACTION_POOLING", default=False):
        DATABASES["default"]["DISABLE_SERVER_SIDE_CURSORS"] = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Redis has three roles, never sharing a database: REDIS_URL holds the money state and the
# gateway's shared caches (credit/keys.py), and must never evict; the Django cache (which
# `cache.clear()` flushes) and the Celery broker default to the next two databases.
# Every Redis URL may be redis://, rediss:// with TLS options, or a Sentinel URL
# (credit/redis_options.py; docs/operations.md, Redis).
REDIS_URL = env.str("REDIS_URL", default="")
if REDIS_URL:
    redis_url("REDIS_URL", REDIS_URL)
CACHE_REDIS_URL = env.str("CACHE_REDIS_URL", default="") or (
    redis_neighbour("CACHE_REDIS_URL", REDIS_URL, 1) if REDIS_URL else ""
)
if CACHE_REDIS_URL:
    CACHES = {
        "default": {
            # Django's RedisCache, also on a Redis Cluster (nexeon/redis_cache.py)
            "BACKEND": "nexeon.redis_cache.RedisCache",
            # A list: Django would split a Sentinel URL's host list at its commas.
            "LOCATION": [redis_url("CACHE_REDIS_URL", CACHE_REDIS_URL)],
            "OPTIONS": {"pool_class": "credit.connections.CachePool"},
            "KEY_PREFIX": "nexeon-cache",
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
# How many shards the money state is split into (credit/keys.py): each a Redis Cluster
# hash slot of its own. Fixed for a deployment's life: changing it renames every key.
CREDIT_SHARDS = read(env.int, "CREDIT_SHARDS", default=16)
if not 1 <= CREDIT_SHARDS <= 1024:
    refuse_to_start("CREDIT_SHARDS must be between 1 and 1024")
# Whether REDIS_URL is a Redis Cluster: `auto` asks the server (INFO cluster), `yes` / `no`
# say so without asking (credit/connections.py).
REDIS_CLUSTER = env.str("REDIS_CLUSTER", default="auto")
if REDIS_CLUSTER not in ("auto", "yes", "no"):
    refuse_to_start("REDIS_CLUSTER must be auto, yes or no")
# What the money state's Redis may do when full: anything but `noeviction` would delete
# balances, holds or queued usage. `refuse` stops the processes that use it, `warn` logs.
REDIS_EVICTION_CHECK = env.str("REDIS_EVICTION_CHECK", default="refuse")
if REDIS_EVICTION_CHECK not in ("refuse", "warn"):
    refuse_to_start("REDIS_EVICTION_CHECK must be refuse or warn")

# --- Celery (tasks take ids, store no results; eager when there is no broker) ------------

CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="") or (
    redis_neighbour("CELERY_BROKER_URL", REDIS_URL, 2) if REDIS_URL else "memory://"
)
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}
if CELERY_BROKER_URL.startswith(("redis", "unix")):
    # In kombu's form (a Sentinel URL becomes `sentinel://` hosts and a master_name), with
    # TLS verified as the URL says (kombu's own default for rediss:// checks nothing).
    _broker = celery_broker(redis_url("CELERY_BROKER_URL", CELERY_BROKER_URL))
    CELERY_BROKER_URL = _broker.url
    CELERY_BROKER_USE_SSL = _broker.use_ssl
    CELERY_BROKER_TRANSPORT_OPTIONS.update(_broker.transport_options)
CELERY_TASK_ALWAYS_EAGER = not REDIS_URL
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TIMEZONE = "UTC"
CELERY_BEAT_SCHEDULE = {
    "drain-usage-events": {"task": "usage.drain_events", "schedule": 1.0},
    "rollup-usage-hours": {"task": "usage.rollup_hours", "schedule": 60.0},
    "rollup-usage-days": {"task": "usage.rollup_days", "schedule": 600.0},
    "reconcile-balances": {"task": "billing.reconcile_balances", "schedule": 60.0},
    "low-balance-alerts": {"task": "billing.low_balance_alerts", "schedule": 600.0},
    "expire-keys": {"task": "accounts.expire_keys", "schedule": 3600.0},
    "return-expired-holds": {"task": "billing.return_expired_holds", "schedule": 10.0},
    "clear-expired-sessions": {"task": "accounts.clear_expired_sessions", "schedule": 3600.0},
}

# --- Auth and accounts -------------------------------------------------------------------

AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
ACCOUNT_LOGIN_METHODS = {"email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "password1*", "password2*"]
ACCOUNT_USER_MODEL_USERNAME_FIELD = None
ACCOUNT_EMAIL_VERIFICATION = read(env.str, "ACCOUNT_EMAIL_VERIFICATION", default="mandatory")
LOGIN_REDIRECT_URL = "/"
ACCOUNT_ADAPTER = "accounts.adapters.AccountAdapter"  # also brands allauth's mails
ACCOUNT_EMAIL_SUBJECT_PREFIX = "NeXeonAI: "  # not "[<request host>] "
ACCOUNT_LOGOUT_ON_PASSWORD_CHANGE = False
ACCOUNT_CONFIRM_EMAIL_ON_GET = False
ACCOUNT_LOGIN_ON_EMAIL_CONFIRMATION = True
ACCOUNT_RATE_LIMITS = {"login_failed": "10/m/ip,5/5m/key"}
MFA_SUPPORTED_TYPES = ["totp", "recovery_codes"]
# The admin signs in through allauth's login (nexeon/admin_access.py), so TOTP and the
# throttling above apply to staff; these networks (CIDR, comma-separated) alone reach it.
ADMIN_ALLOWED_NETWORKS = read(env.list, "ADMIN_ALLOWED_NETWORKS", default=[])
try:
    for _network in ADMIN_ALLOWED_NETWORKS:
        ipaddress.ip_network(_network.strip(), strict=False)
except ValueError:
    refuse_to_start("ADMIN_ALLOWED_NETWORKS must list addresses or CIDR ranges, comma-separated")
MFA_TOTP_ISSUER = "NeXeonAI"
# Google and GitHub sign-in appear only when their OAuth client ids are configured.
SOCIALACCOUNT_PROVIDERS = {
    provider: {
        "APPS": [
            {
                "client_id": env.str(f"{prefix}_CLIENT_ID"),
                "secret": env.str(f"{prefix}_CLIENT_SECRET", default=""),
            }
        ],
        "SCOPE": scope,
    }
    for provider, prefix, scope in (
        ("google", "GOOGLE", ["profile", "email"]),
        ("github", "GITHUB", ["user:email"]),
    )
    if env.str(f"{prefix}_CLIENT_ID", default="")
}
SOCIALACCOUNT_EMAIL_AUTHENTICATION_AUTO_CONNECT = True
SOCIALACCOUNT_EMAIL_AUTHENTICATION = True
# Invitations to an organization: how long a mailed link works, and how many an
# organization may send per hour (its owners and admins together).
INVITATION_EXPIRY_DAYS = read(env.int, "INVITATION_EXPIRY_DAYS", default=7)
INVITATIONS_PER_HOUR = read(env.int, "INVITATIONS_PER_HOUR", default=20)
if INVITATION_EXPIRY_DAYS < 1 or INVITATIONS_PER_HOUR < 1:
    refuse_to_start("INVITATION_EXPIRY_DAYS and INVITATIONS_PER_HOUR must be 1 or more")

# --- REST API (dashboard session or `Authorization: Bearer nex-mt-…` management token) --

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "accounts.api.authentication.ManagementTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "NeXeonAI management API",
    "DESCRIPTION": "Organizations, members, API keys and usage. The LLM API itself is /v1.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "REDOC_DIST": "SIDECAR",
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
}

# --- Email (console in development; EMAIL_URL such as smtp+tls://user:pass@host:587) -----

_email = read(env.email_url, "EMAIL_URL", default="consolemail://")
if "EMAIL_FILE_PATH" in _email:  # filemail:///var/mail/x: django-environ drops the leading /
    _email["EMAIL_FILE_PATH"] = "/" + _email["EMAIL_FILE_PATH"].lstrip("/")
vars().update(_email)
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="NeXeonAI <no-reply@localhost>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL

# --- LLM providers: the operator's keys, named as the providers' official SDKs name them --

PROVIDER_ENV = {
    # provider: (api key variable, base URL variable, default base URL)
    "openai": ("OPENAI_API_KEY", "OPENAI_BASE_URL", "https://api.openai.com/v1"),
    "azure": ("AZURE_OPENAI_API_KEY", "AZURE_OPENAI_ENDPOINT", ""),
    "anthropic": ("ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL", "https://api.anthropic.com"),
    "gemini": (
        "GEMINI_API_KEY",
        "GEMINI_BASE_URL",
        "https://generativelanguage.googleapis.com",
    ),
    "mistral": ("MISTRAL_API_KEY", "MISTRAL_BASE_URL", "https://api.mistral.ai/v1"),
    "groq": ("GROQ_API_KEY", "GROQ_BASE_URL", "https://api.groq.com/openai/v1"),
    "deepseek": ("DEEPSEEK_API_KEY", "DEEPSEEK_BASE_URL", "https://api.deepseek.com/v1"),
    "together": ("TOGETHER_API_KEY", "TOGETHER_BASE_URL", "https://api.together.xyz/v1"),
    "xai": ("XAI_API_KEY", "XAI_BASE_URL", "https://api.x.ai/v1"),
    "openrouter": ("OPENROUTER_API_KEY", "OPENROUTER_BASE_URL", "https://openrouter.ai/api/v1"),
    "ollama": ("OLLAMA_API_KEY", "OLLAMA_BASE_URL", ""),
    "vllm": ("VLLM_API_KEY", "VLLM_BASE_URL", ""),
}
PROVIDERS = {
    name: {
        "api_key": env.str(key_var, default=""),
        "base_url": env.str(url_var, default=default_url).rstrip("/"),
    }
    for name, (key_var, url_var, default_url) in PROVIDER_ENV.items()
}
AZURE_OPENAI_API_VERSION = env.str("OPENAI_API_VERSION", default="2024-10-21")
# More OpenAI-compatible (or Anthropic/Gemini-shaped) endpoints, by configuration alone:
# {"mylab": {"base_url": "http://10.0.0.5:8000/v1", "api_key": "", "adapter": "openai",
#            "headers": {"X-Team": "ml"}, "timeout": 120, "connect_timeout": 5}}; catalog rows
# then name "mylab" as their provider (or fallback). An entry named like a built-in provider
# changes only the fields it gives, e.g. {"anthropic": {"timeout": 300}}; "api_keys": [...] instead
# of "api_key" balances its calls over several keys (apigateway/routing.py). The request options
# output_cap_field, extra_fields, store_field, remote_media, reasoning_field, completions and
# moderations default per provider (apigateway/providers/options.py); ca_file, client_cert,
# client_key and verify set the TLS of its connections (apigateway/upstream_tls.py).


def _provider_seconds(name: str, config: dict, field: str) -> dict:
    if field not in config:
        return {}
    value = config[field]
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < 1e6:
        refuse_to_start(f"NEXEON_PROVIDERS[{name!r}].{field} must be a number of seconds above 0")
    return {field: float(value)}


for _name, _extra in read(env.json, "NEXEON_PROVIDERS", default={}).items():
    if not isinstance(_extra, dict):
        refuse_to_start(f"NEXEON_PROVIDERS[{_name!r}] must be an object")
    if _name in PROVIDER_ENV:
        _config = dict(PROVIDERS[_name])  # a built-in provider: only what is given changes
    elif _extra.get("base_url"):
        _config = {"api_key": "", "adapter": "openai", "headers": {}}
    else:
        refuse_to_start(f"NEXEON_PROVIDERS[{_name!r}] needs at least a base_url")
    if "base_url" in _extra:
        _config["base_url"] = str(_extra["base_url"]).rstrip("/")
    if "api_key" in _extra:
        _config["api_key"] = str(_extra["api_key"])
    if "api_keys" in _extra:  # several keys of one account: calls are balanced over them
        _keys = _extra["api_keys"]
        if (
            not isinstance(_keys, list)
            or not _keys
            or not all(isinstance(k, str) and k for k in _keys)
        ):
            refuse_to_start(
                f"NEXEON_PROVIDERS[{_name!r}].api_keys must be a non-empty list of keys"
            )
        _config["api_keys"] = list(_keys)
    if "adapter" in _extra:
        _config["adapter"] = str(_extra["adapter"])
    if "headers" in _extra:
        _config["headers"] = dict(_extra["headers"])
    for _field in ("timeout", "connect_timeout"):
        _config.update(_provider_seconds(_name, _extra, _field))
    try:
        _config.update(configured_provider_options(_name, _extra))
        _config.update(configured_provider_tls(_name, _extra))
    except ValueError as _error:
        refuse_to_start(str(_error))
    PROVIDERS[_name] = _config

# The demo model (apigateway/demo.py): a free local echo, so that a server with no provider
# keys still answers. On in development, off elsewhere unless the operator turns it on.
GATEWAY_DEMO_MODEL = flag("GATEWAY_DEMO_MODEL", default=DEBUG)
if GATEWAY_DEMO_MODEL:
    PROVIDERS["demo"] = {"api_key": "", "base_url": "demo://local", "adapter": "openai"}

# --- The /v1 gateway ---------------------------------------------------------------------

UPSTREAM_TIMEOUT = read(env.float, "UPSTREAM_TIMEOUT", default=600.0)
UPSTREAM_CONNECT_TIMEOUT = read(env.float, "UPSTREAM_CONNECT_TIMEOUT", default=10.0)
UPSTREAM_RETRIES = read(env.int, "UPSTREAM_RETRIES", default=2)
# Per host (and TLS setting), per worker process: callers beyond it wait for a connection
# within their connect time-out, then 503. An answer is refused (502) past the size cap,
# counted as received and as decompressed (for a stream: what arrived between two reads).
GATEWAY_UPSTREAM_MAX_CONNECTIONS_PER_HOST = read(
    env.int, "GATEWAY_UPSTREAM_MAX_CONNECTIONS_PER_HOST", default=1000
)
GATEWAY_UPSTREAM_MAX_RESPONSE_BYTES = read(
    env.int, "GATEWAY_UPSTREAM_MAX_RESPONSE_BYTES", default=64 * 1024 * 1024
)
if GATEWAY_UPSTREAM_MAX_CONNECTIONS_PER_HOST < 1 or GATEWAY_UPSTREAM_MAX_RESPONSE_BYTES < 1:
    refuse_to_start(
        "GATEWAY_UPSTREAM_MAX_CONNECTIONS_PER_HOST and GATEWAY_UPSTREAM_MAX_RESPONSE_BYTES"
        " must be 1 or more"
    )
# A deployment rests this long after this many consecutive failures (circuit breaker).
GATEWAY_BREAKER_FAILURES = read(env.int, "GATEWAY_BREAKER_FAILURES", default=5)
GATEWAY_BREAKER_REST_SECONDS = read(env.float, "GATEWAY_BREAKER_REST_SECONDS", default=30.0)
if GATEWAY_BREAKER_FAILURES < 1 or GATEWAY_BREAKER_REST_SECONDS < 0:
    refuse_to_start(
        "GATEWAY_BREAKER_FAILURES must be 1 or more, GATEWAY_BREAKER_REST_SECONDS 0 or more"
    )
GATEWAY_MAX_BODY_BYTES = read(env.int, "GATEWAY_MAX_BODY_BYTES", default=32 * 1024 * 1024)
GATEWAY_KEY_CACHE_SECONDS = read(env.float, "GATEWAY_KEY_CACHE_SECONDS", default=2.0)
# Unknown (well-formed) keys each cost a database query: an address gets this many per
# minute, then 429 until the minute ends (0: no limit).
GATEWAY_AUTH_FAILURES_PER_MINUTE = read(env.int, "GATEWAY_AUTH_FAILURES_PER_MINUTE", default=30)
# Proxies whose X-Forwarded-For names the client (uvicorn's variable; "*" trusts any).
# uvicorn reads it too and puts the client it names into the ASGI scope, which is Django's
# REMOTE_ADDR and so the address allauth's login throttling counts (allauth's own
# ALLAUTH_TRUSTED_PROXY_COUNT stays 0: the header is read once, by the peer-checked rule).
FORWARDED_ALLOW_IPS = read(env.list, "FORWARDED_ALLOW_IPS", default=["127.0.0.1"])
# The usage page's live feed (usage/live_hub.py): each socket's session and membership are
# checked again this often (and before any event is forwarded once the last check is a
# second old); sockets are capped per user, per organization and per process.
LIVE_RECHECK_SECONDS = read(env.float, "LIVE_RECHECK_SECONDS", default=5.0)
LIVE_MAX_SOCKETS_PER_USER = read(env.int, "LIVE_MAX_SOCKETS_PER_USER", default=10)
LIVE_MAX_SOCKETS_PER_ORGANIZATION = read(env.int, "LIVE_MAX_SOCKETS_PER_ORGANIZATION", default=100)
LIVE_MAX_SOCKETS_PER_PROCESS = read(env.int, "LIVE_MAX_SOCKETS_PER_PROCESS", default=2000)
# How often each process checks the catalog's change counter (one Redis GET), and how old
# its copy may get before it is read again anyway (edits made around the ORM, e.g. in SQL).
GATEWAY_CATALOG_REFRESH_SECONDS = read(env.float, "GATEWAY_CATALOG_REFRESH_SECONDS", default=2.0)
GATEWAY_CATALOG_MAX_AGE_SECONDS = read(env.float, "GATEWAY_CATALOG_MAX_AGE_SECONDS", default=300.0)
# A stream already delivered whose settlement cannot reach Redis retries this long.
GATEWAY_SETTLE_RETRY_SECONDS = read(env.float, "GATEWAY_SETTLE_RETRY_SECONDS", default=120.0)
# At shutdown, calls cut short by the grace period get this long to settle and record usage.
GATEWAY_SHUTDOWN_SETTLE_SECONDS = read(env.float, "GATEWAY_SHUTDOWN_SETTLE_SECONDS", default=5.0)
# Credit held for a call is returned by the reaper this long after its process stopped
# renewing it (a living process renews its holds every third of it: credit/renewal.py).
GATEWAY_HOLD_SECONDS = read(env.float, "GATEWAY_HOLD_SECONDS", default=60.0)
if GATEWAY_HOLD_SECONDS <= 0:
    refuse_to_start("GATEWAY_HOLD_SECONDS must be above 0")
# A worker admits a key's calls from a lease (a slice of its credit and requests per minute
# taken in one round trip) for this long; 0 reserves every call on its own.
GATEWAY_LEASE_SECONDS = read(env.float, "GATEWAY_LEASE_SECONDS", default=2.0)
# What customers pay over the catalog's (provider) prices, in percent: 10 -> prices x 1.10.
PRICE_MARKUP_PERCENT = read(env_decimal, "PRICE_MARKUP_PERCENT", default="0")
if PRICE_MARKUP_PERCENT < 0:
    refuse_to_start("PRICE_MARKUP_PERCENT must be 0 or more")

# --- Rate limits: requests and tokens per minute, per key and per organization -----------

# Plans give the defaults; a key's own limits and an organization's (admin) override them.
# JSON: {"standard": {"key_rpm": 500, "key_tpm": null, "org_rpm": 5000, "org_tpm": null}}
_plans_raw = read(env.json, "RATE_LIMIT_PLANS", default=None)
try:
    RATE_LIMIT_PLANS = DEFAULT_PLANS if _plans_raw is None else validated_plans(_plans_raw)
except ValueError as _error:
    refuse_to_start(f"RATE_LIMIT_PLANS {_error}")
DEFAULT_PLAN = env.str("DEFAULT_PLAN", default="standard")
if DEFAULT_PLAN not in RATE_LIMIT_PLANS:
    refuse_to_start(f"DEFAULT_PLAN {DEFAULT_PLAN!r} is not one of RATE_LIMIT_PLANS")
# Redis unreachable: "closed" refuses calls with 503 (nothing forwarded, nothing charged);
# "local" lets each process check limits and credit itself and book usage directly.
GATEWAY_REDIS_FAILURE = env.str("GATEWAY_REDIS_FAILURE", default="closed")
if GATEWAY_REDIS_FAILURE not in ("closed", "local"):
    refuse_to_start("GATEWAY_REDIS_FAILURE must be closed or local")

# --- Operations ---------------------------------------------------------------------------

# A batch of usage a drainer read and did not acknowledge this long (it died, or its
# database stalled) is claimed by another drainer; booking twice books nothing twice.
USAGE_CLAIM_SECONDS = read(env.float, "USAGE_CLAIM_SECONDS", default=30.0)
if USAGE_CLAIM_SECONDS <= 0:
    refuse_to_start("USAGE_CLAIM_SECONDS must be above 0")

# Credit each new customer's own organization starts with (a ledger grant, once). A dollar
# in development, so that `make run` with a provider key answers a first real call.
SIGNUP_CREDIT_USD = read(env_decimal, "SIGNUP_CREDIT_USD", default="1" if DEBUG else "0")
if SIGNUP_CREDIT_USD < 0:
    refuse_to_start("SIGNUP_CREDIT_USD must be 0 or more")
# Owners and admins are mailed once when their balance falls below this (0 = never).
LOW_BALANCE_USD = read(env_decimal, "LOW_BALANCE_USD", default="5")
# Bearer token for GET /metrics (Prometheus); unset = the endpoint answers 404.
METRICS_TOKEN = env.str("METRICS_TOKEN", default="")

# --- Stripe ------------------------------------------------------------------------------

STRIPE_SECRET_KEY = env.str("STRIPE_SECRET_KEY", default="")
STRIPE_WEBHOOK_SECRET = env.str("STRIPE_WEBHOOK_SECRET", default="")
STRIPE_API_BASE = env.str("STRIPE_API_BASE", default="https://api.stripe.com")
# Bounds of a credits purchase on the billing page, in whole US dollars.
BILLING_MIN_PURCHASE_USD = read(env.int, "BILLING_MIN_PURCHASE_USD", default=5)
BILLING_MAX_PURCHASE_USD = read(env.int, "BILLING_MAX_PURCHASE_USD", default=1000)
if not 1 <= BILLING_MIN_PURCHASE_USD <= BILLING_MAX_PURCHASE_USD:
    refuse_to_start("BILLING_MIN_PURCHASE_USD must be at least 1 and at most the maximum")

# --- HTTP security -----------------------------------------------------------------------

SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SECURE = flag("SECURE_COOKIES", default=not DEBUG)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
# Sent only over HTTPS (directly, or from a BEHIND_TLS_PROXY that says so), never in DEBUG.
SECURE_HSTS_SECONDS = read(env.int, "SECURE_HSTS_SECONDS", default=0 if DEBUG else 31_536_000)
SECURE_SSL_REDIRECT = flag("SECURE_SSL_REDIRECT", default=False)
if flag("BEHIND_TLS_PROXY", default=False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$"]
# Where a form of ours may lead, through a redirect (browsers hold redirects after a form
# post to form-action too): the OAuth providers that are configured, Stripe's Checkout (or the
# stand-in at STRIPE_API_BASE, which serves its own checkout page).
OFFSITE_FORM_TARGETS = [
    origin
    for provider, origin in (
        ("google", "https://accounts.google.com"),
        ("github", "https://github.com"),
    )
    if provider in SOCIALACCOUNT_PROVIDERS
]
if STRIPE_SECRET_KEY:
    OFFSITE_FORM_TARGETS.append("https://checkout.stripe.com")
    if STRIPE_API_BASE != "https://api.stripe.com":
        _stripe = urlsplit(STRIPE_API_BASE)
        OFFSITE_FORM_TARGETS.append(f"{_stripe.scheme}://{_stripe.netloc}")
# Content-Security-Policy (django-csp): scripts, styles and everything else from this origin
# only, no inline script, style or handler anywhere (templates load static/js/ files), no
# framing, forms posting only here. connect-src 'self' covers the live feed's ws(s):// of
# the same host. A page that needs more says so with csp_update (the Redoc page).
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "connect-src": ["'self'"],
        "frame-ancestors": ["'none'"],
        "form-action": ["'self'", *OFFSITE_FORM_TARGETS],
        "base-uri": ["'none'"],
        "object-src": ["'none'"],
    }
}
DATA_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024

# --- Static files, i18n ------------------------------------------------------------------

STATIC_URL = "/static/"
STATIC_ROOT = Path(read(env.str, "STATIC_ROOT", default=str(BASE_DIR / "staticfiles")))
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "servestatic.storage.CompressedManifestStaticFilesStorage"
        )
    },
}
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# --- Logging: one line per record on stderr; no keys ever reach it -----------------------

LOG_LEVEL = env.str("LOG_LEVEL", default="INFO").upper()
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["stderr"], "level": LOG_LEVEL},
    "loggers": {"httpx": {"level": "WARNING"}, "httpcore": {"level": "WARNING"}},
}
