"""The admin is entered through allauth's login, so its TOTP step and its failed-login
throttling apply to staff as to everyone; ADMIN_ALLOWED_NETWORKS keeps it to some networks.

What this guards against: Django's own /admin/login/ takes a staff user's password alone
although the user has TOTP, lets 25 wrong passwords through unthrottled, and its session
opens the dashboard and /api/ too."""

from __future__ import annotations

import time

import pytest
from allauth.mfa.totp.internal.auth import TOTP, format_hotp_value, generate_totp_secret, hotp_value
from django.test import Client

from accounts.models import User
from tests.support import manage_env, serving_nexeon, test_database_url

PASSWORD = "staff horse battery 9"
THROTTLED = "too many failed login attempts"


@pytest.fixture
def staff(db, settings) -> User:
    settings.ACCOUNT_EMAIL_VERIFICATION = "none"
    return User.objects.create_user(email="staff@example.com", password=PASSWORD, is_staff=True)


@pytest.fixture
def staff_totp(staff) -> str:
    secret = generate_totp_secret()
    TOTP.activate(staff, secret)
    return secret


def current_code(secret: str) -> str:
    return format_hotp_value(hotp_value(secret, int(time.time()) // 30))


def signed_out_everywhere(client: Client) -> bool:
    return (
        client.get("/admin/").status_code == 302
        and client.get("/keys/").status_code == 302
        and client.get("/api/organizations/").status_code in (401, 403)
    )


def test_a_staff_user_with_totp_cannot_enter_the_admin_with_the_password_alone(
    client, staff, staff_totp, redis_client
):
    answer = client.post(
        "/admin/login/?next=/admin/", {"username": staff.email, "password": PASSWORD}
    )
    assert answer.status_code == 302
    assert answer["Location"] == "/accounts/login/?next=%2Fadmin%2F"
    assert signed_out_everywhere(client)

    # Through allauth: the password, then the code, then the admin.
    login = client.post(answer["Location"], {"login": staff.email, "password": PASSWORD})
    assert login["Location"] == "/accounts/2fa/authenticate/"
    assert signed_out_everywhere(client)
    done = client.post("/accounts/2fa/authenticate/", {"code": current_code(staff_totp)})
    assert done["Location"] == "/admin/"
    assert client.get("/admin/").status_code == 200


def test_the_admin_login_page_sends_everyone_to_allauths_login(client, staff, redis_client):
    page = client.get("/admin/login/")
    assert page.status_code == 302 and page["Location"].startswith("/accounts/login/?next=")
    # Straight to an admin page: Django's own redirect ends at allauth's login too.
    followed = client.get("/admin/accounts/user/", follow=True)
    assert followed.request["PATH_INFO"] == "/accounts/login/"


def test_a_signed_in_staff_user_is_not_asked_again_and_others_are_refused(
    client, staff, outsider, redis_client
):
    client.force_login(staff)
    assert client.get("/admin/login/?next=/admin/accounts/")["Location"] == "/admin/accounts/"
    assert client.get("/admin/login/?next=https://evil.example/")["Location"] == "/admin/"
    # Over a staff user's session, Django's own login form would sign in another account.
    client.post("/admin/login/", {"username": outsider.email, "password": "correct horse 2"})
    assert client.get("/admin/").wsgi_request.user == staff
    client.force_login(outsider)
    assert client.get("/admin/login/").status_code == 403


def test_25_wrong_admin_passwords_are_throttled(client, staff, redis_client):
    for _ in range(25):
        client.post("/admin/login/", {"username": staff.email, "password": "wrong"})
    client.post("/admin/login/", {"username": staff.email, "password": PASSWORD})
    assert signed_out_everywhere(client)

    # At allauth's login, where the admin signs in, wrong passwords are throttled after the first
    # few (allauth: 5 per 5 minutes per account, counted as failures land), and so is the
    # right one after 25.
    answers = [
        client.post("/accounts/login/?next=/admin/", {"login": staff.email, "password": "wrong"})
        for _ in range(25)
    ]
    throttled = [THROTTLED in answer.content.decode().lower() for answer in answers]
    assert not any(throttled[:5]) and all(throttled[8:]), str(throttled)
    right = client.post(
        "/accounts/login/?next=/admin/", {"login": staff.email, "password": PASSWORD}
    )
    assert THROTTLED in right.content.decode().lower()
    assert signed_out_everywhere(client)


def test_admin_allowed_networks_refuse_other_addresses(client, staff, settings, redis_client):
    settings.ADMIN_ALLOWED_NETWORKS = ["10.0.0.0/8", "2001:db8::/32"]
    client.force_login(staff)
    assert client.get("/admin/", REMOTE_ADDR="10.1.2.3").status_code == 200
    assert client.get("/admin/", REMOTE_ADDR="2001:db8::5").status_code == 200
    for address in ("203.0.113.7", "127.0.0.1", "2001:db9::1"):
        assert client.get("/admin/", REMOTE_ADDR=address).status_code == 404
        assert client.get("/admin/login/", REMOTE_ADDR=address).status_code == 404
    # The rest of the site is not the admin's business.
    assert client.get("/keys/", REMOTE_ADDR="203.0.113.7").status_code == 200


def test_without_admin_allowed_networks_every_address_reaches_the_admin(client, staff, settings):
    settings.ADMIN_ALLOWED_NETWORKS = []
    client.force_login(staff)
    assert client.get("/admin/", REMOTE_ADDR="203.0.113.7").status_code == 200


@pytest.mark.usefixtures("transactional_db", "redis_client")
def test_admin_allowed_networks_read_the_client_address_a_trusted_proxy_names():
    """Behind the ingress (FORWARDED_ALLOW_IPS), the client in X-Forwarded-For counts; from
    a peer that is not trusted, the header is ignored and the peer's own address counts."""
    import httpx

    base = {
        "DATABASE_URL": test_database_url(),
        "DEBUG": "1",
        "ADMIN_ALLOWED_NETWORKS": "10.0.0.0/8",
    }
    with serving_nexeon(manage_env(**base, FORWARDED_ALLOW_IPS="127.0.0.1")) as (url, _):
        inside = httpx.get(f"{url}/admin/", headers={"X-Forwarded-For": "10.1.2.3"})
        outside = httpx.get(f"{url}/admin/", headers={"X-Forwarded-For": "203.0.113.7"})
        assert inside.status_code == 302 and outside.status_code == 404
    with serving_nexeon(manage_env(**base, FORWARDED_ALLOW_IPS="10.9.9.9")) as (url, _):
        claimed = httpx.get(f"{url}/admin/", headers={"X-Forwarded-For": "10.1.2.3"})
        assert claimed.status_code == 404


def test_a_malformed_admin_allowed_networks_stops_the_process():
    from tests.support import run_manage

    done = run_manage("check", env=manage_env(DEBUG="1", ADMIN_ALLOWED_NETWORKS="10.0.0.0/33"))
    assert done.returncode != 0
    assert "ADMIN_ALLOWED_NETWORKS" in done.stderr and "10.0.0.0/33" not in done.stderr
