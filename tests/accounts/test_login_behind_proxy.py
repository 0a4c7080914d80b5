"""Behind a trusted proxy (an ingress), allauth's failed-login throttling counts each
client's own address, from X-Forwarded-For, so one user's ten failures do not lock out
everyone behind the same proxy; a peer that is not trusted cannot choose its address."""

from __future__ import annotations

import itertools

import httpx
import pytest

from tests.support import manage_env, serving_nexeon, test_database_url

_emails = itertools.count()


THROTTLED = "Too many failed login attempts"


def failed_login(url: str, client_address: str) -> str:
    """One wrong password, as a browser behind the proxy sends it (each time for another
    email, so that only the per-address limit counts)."""
    with httpx.Client(base_url=url, headers={"X-Forwarded-For": client_address}) as browser:
        browser.get("/accounts/login/").raise_for_status()
        answer = browser.post(
            "/accounts/login/",
            data={
                "login": f"nobody{next(_emails)}@example.com",
                "password": "wrong password",
                "csrfmiddlewaretoken": browser.cookies["csrftoken"],
            },
            headers={"Referer": f"{url}/accounts/login/"},
        )
    assert answer.status_code == 200, answer.text
    return "throttled" if THROTTLED in answer.text else "refused"


def serve(forwarded_allow_ips: str):
    env = manage_env(
        DATABASE_URL=test_database_url(),
        DEBUG="1",  # pages without collectstatic's manifest
        FORWARDED_ALLOW_IPS=forwarded_allow_ips,
    )
    return serving_nexeon(env)


@pytest.mark.usefixtures("transactional_db", "redis_client")
def test_one_clients_failures_do_not_lock_out_another_behind_a_trusted_proxy():
    with serve("127.0.0.1") as (url, _process):  # the test is the proxy, on loopback
        assert [failed_login(url, "203.0.113.7") for _ in range(10)] == ["refused"] * 10
        assert failed_login(url, "203.0.113.7") == "throttled"
        assert failed_login(url, "203.0.113.8") == "refused"


@pytest.mark.usefixtures("transactional_db", "redis_client")
def test_an_untrusted_peer_cannot_pick_its_address_to_escape_the_limit():
    with serve("10.9.9.9") as (url, _process):
        for number in range(10):
            assert failed_login(url, f"198.51.100.{number}") == "refused"
        assert failed_login(url, "198.51.100.99") == "throttled"  # all counted as the peer
