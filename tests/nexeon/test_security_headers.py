"""The strict Content-Security-Policy on every page, templates with nothing inline for it to
refuse, and HSTS by default in production over HTTPS (directly or from a TLS proxy).

What this guards against: no Content-Security-Policy, inline handlers (onchange) in the
templates, and no Strict-Transport-Security unless SECURE_HSTS_SECONDS is set by hand."""

from __future__ import annotations

import re

import httpx
import pytest
from django.conf import settings

from tests.support import PROJECT_DIR, manage_env, run_manage, serving_nexeon, test_database_url

STRICT = {
    "default-src": "'self'",
    "script-src": "'self'",
    "style-src": "'self'",
    "img-src": "'self' data:",
    "connect-src": "'self'",
    "frame-ancestors": "'none'",
    "form-action": "'self'",
    "base-uri": "'none'",
    "object-src": "'none'",
}


def directives(header: str) -> dict[str, str]:
    parts = (part.strip().split(" ", 1) for part in header.split(";") if part.strip())
    return {name: value for name, value in parts}


@pytest.mark.parametrize("path", ["/", "/accounts/login/", "/docs/", "/keys/"])
def test_every_page_carries_the_strict_policy(client, owner, path):
    if path != "/accounts/login/":
        client.force_login(owner)
    answer = client.get(path)
    assert answer.status_code == 200
    assert directives(answer["Content-Security-Policy"]) == STRICT


def test_only_the_redoc_page_allows_its_inline_styles_and_worker(client, owner):
    client.force_login(owner)
    policy = directives(client.get("/api/docs/")["Content-Security-Policy"])
    assert policy["style-src"] == "'self' 'unsafe-inline'"
    assert policy["worker-src"] == "blob:"
    assert policy["script-src"] == "'self'" and policy["img-src"] == "'self' data:"


INLINE = [
    (re.compile(r"\son[a-z]+\s*=", re.IGNORECASE), "an inline event handler"),
    (re.compile(r"\sstyle\s*=", re.IGNORECASE), "a style attribute"),
    (re.compile(r"<style", re.IGNORECASE), "a <style> element"),
    (re.compile(r"<script(?![^>]*\ssrc=)(?![^>]*type=\"application/json\")", re.I), "inline JS"),
    (re.compile(r"javascript:", re.IGNORECASE), "a javascript: URL"),
]


def test_no_template_holds_inline_script_or_style():
    found = [
        f"{path.relative_to(PROJECT_DIR)}: {what}"
        for path in sorted((PROJECT_DIR / "templates").rglob("*.html"))
        for pattern, what in INLINE
        if pattern.search(path.read_text())
    ]
    assert found == []


def hsts_seconds(**env: str | None) -> str:
    done = run_manage(
        "shell",
        "--no-imports",
        "-c",
        "from django.conf import settings; print(settings.SECURE_HSTS_SECONDS)",
        env=manage_env(**{"SECRET_KEY": "test-only", "SECURE_HSTS_SECONDS": None, **env}),
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_hsts_is_a_year_in_production_and_off_in_development():
    assert hsts_seconds(DEBUG="0") == "31536000"
    assert hsts_seconds(DEBUG="1") == "0"
    assert hsts_seconds(DEBUG="0", SECURE_HSTS_SECONDS="600") == "600"


@pytest.mark.django_db
def test_in_process_with_debug_off_hsts_goes_out_over_https_only(client):
    assert not settings.DEBUG
    assert client.get("/accounts/login/", secure=True)["Strict-Transport-Security"] == (
        "max-age=31536000"
    )
    assert "Strict-Transport-Security" not in client.get("/accounts/login/")


@pytest.mark.usefixtures("transactional_db", "redis_client")
def test_a_production_server_behind_a_tls_proxy_sends_hsts_and_the_policy():
    environment = manage_env(
        DATABASE_URL=test_database_url(),
        DEBUG="0",
        SECRET_KEY="test-only",
        BEHIND_TLS_PROXY="1",
        SECURE_HSTS_SECONDS=None,
    )
    with serving_nexeon(environment) as (url, _):
        over_tls = httpx.get(f"{url}/api/organizations/", headers={"X-Forwarded-Proto": "https"})
        plain = httpx.get(f"{url}/api/organizations/")
    assert over_tls.headers["Strict-Transport-Security"] == "max-age=31536000"
    assert "Strict-Transport-Security" not in plain.headers
    for answer in (over_tls, plain):
        assert directives(answer.headers["Content-Security-Policy"]) == STRICT
