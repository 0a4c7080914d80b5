"""allauth features the dashboard promises: 2FA, social sign-in when configured, throttling."""

import pytest

from tests.support import manage_env, run_manage


def test_two_factor_setup_is_offered_to_signed_in_users(client, owner, settings, redis_client):
    settings.ACCOUNT_EMAIL_VERIFICATION = "none"
    client.post("/accounts/login/", {"login": owner.email, "password": "correct horse 1"})
    page = client.get("/accounts/2fa/")
    assert page.status_code == 200
    assert "/accounts/2fa/totp/activate/" in page.content.decode()


def test_password_reset_sends_a_mail(client, owner, mailoutbox):
    client.post("/accounts/password/reset/", {"email": owner.email})
    assert len(mailoutbox) == 1
    assert "/accounts/password/reset/key/" in mailoutbox[0].body


@pytest.mark.django_db
def test_no_social_buttons_without_client_ids(client):
    assert "google" not in client.get("/accounts/login/").content.decode().lower()


def test_google_and_github_sign_in_follow_their_client_ids():
    code = "from django.conf import settings; print(sorted(settings.SOCIALACCOUNT_PROVIDERS))"
    configured = run_manage(
        "shell",
        "--no-imports",
        "-c",
        code,
        env=manage_env(DEBUG="1", GOOGLE_CLIENT_ID="g-id", GITHUB_CLIENT_ID="gh-id"),
    )
    assert configured.stdout.split() == ["['github',", "'google']"]
    bare = run_manage(
        "shell",
        "--no-imports",
        "-c",
        code,
        env=manage_env(DEBUG="1", GOOGLE_CLIENT_ID=None, GITHUB_CLIENT_ID=None),
    )
    assert bare.stdout.strip() == "[]"


def test_repeated_failed_logins_are_throttled(client, owner, redis_client):
    pages = [
        client.post("/accounts/login/", {"login": owner.email, "password": "wrong"})
        for _ in range(7)
    ]
    assert "too many failed login attempts" in pages[-1].content.decode().lower()
    right = client.post("/accounts/login/", {"login": owner.email, "password": "correct horse 1"})
    assert "too many failed login attempts" in right.content.decode().lower()


def test_with_totp_active_login_asks_for_a_valid_code(client, owner, settings, redis_client):
    import time

    from allauth.mfa.totp.internal.auth import (
        TOTP,
        format_hotp_value,
        generate_totp_secret,
        hotp_value,
    )

    settings.ACCOUNT_EMAIL_VERIFICATION = "none"
    secret = generate_totp_secret()
    TOTP.activate(owner, secret)
    response = client.post(
        "/accounts/login/", {"login": owner.email, "password": "correct horse 1"}
    )
    assert response["Location"] == "/accounts/2fa/authenticate/"
    assert client.get("/keys/").status_code == 302  # not signed in yet
    wrong = client.post("/accounts/2fa/authenticate/", {"code": "000000"})
    assert wrong.status_code == 200 and client.get("/keys/").status_code == 302
    code = format_hotp_value(hotp_value(secret, int(time.time()) // 30))
    client.post("/accounts/2fa/authenticate/", {"code": code})
    assert client.get("/keys/").status_code == 200


def test_a_signed_in_user_changes_their_password(client, owner, settings, redis_client):
    settings.ACCOUNT_EMAIL_VERIFICATION = "none"
    client.post("/accounts/login/", {"login": owner.email, "password": "correct horse 1"})
    client.post(
        "/accounts/password/change/",
        {
            "oldpassword": "correct horse 1",
            "password1": "a-brand-new-passphrase-7",
            "password2": "a-brand-new-passphrase-7",
        },
    )
    owner.refresh_from_db()
    assert owner.check_password("a-brand-new-passphrase-7")
