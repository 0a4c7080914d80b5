"""The mails allauth sends (sign-up verification, password reset, an unknown address) speak
as NeXeonAI, never as the host they were requested from, with a plain-text body that says
what to do and carries the link."""

import re

import pytest
from django.core import mail

HOST = "127.0.0.1:8100"


def assert_branded(message: mail.EmailMessage, link: str) -> str:
    assert message.subject.startswith("NeXeonAI: "), message.subject
    assert HOST not in message.subject
    assert "NeXeonAI" in message.from_email
    body = message.body
    assert re.search(rf"http://{re.escape(HOST)}{link}", body), body  # type: ignore[arg-type]
    without_links = re.sub(r"https?://\S+", "", body)  # type: ignore[arg-type]
    assert HOST not in without_links, body  # the host only inside links
    assert "NeXeonAI" in without_links
    for alternative, _ in getattr(message, "alternatives", []):
        assert not re.search(r"<img[^>]+src=[\"']?https?:", alternative)  # no remote images
    return body  # type: ignore[return-value]


@pytest.mark.django_db
def test_sign_up_verification_mail_is_branded(client, settings, mailoutbox):
    settings.ACCOUNT_EMAIL_VERIFICATION = "mandatory"
    client.post(
        "/accounts/signup/",
        {"email": "ada@example.com", "password1": "a-long-pass-42", "password2": "a-long-pass-42"},
        HTTP_HOST=HOST,
    )
    (message,) = mailoutbox
    assert message.to == ["ada@example.com"]
    body = assert_branded(message, "/accounts/confirm-email/[^/\\s]+/")
    assert "confirm" in body.lower()


def test_password_reset_mail_is_branded(client, owner, mailoutbox):
    client.post("/accounts/password/reset/", {"email": owner.email}, HTTP_HOST=HOST)
    (message,) = mailoutbox
    body = assert_branded(message, "/accounts/password/reset/key/[^/\\s]+/")
    assert "did not ask" in body or "ignore" in body.lower()


@pytest.mark.django_db
def test_reset_for_an_unknown_address_is_branded(client, settings, mailoutbox):
    settings.ACCOUNT_EMAIL_UNKNOWN_ACCOUNTS = True
    client.post("/accounts/password/reset/", {"email": "nobody@example.com"}, HTTP_HOST=HOST)
    (message,) = mailoutbox
    assert_branded(message, "/accounts/signup/")
