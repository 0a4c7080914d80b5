"""Every page the layout checks visit (tests/e2e/test_every_page.py): one list, so a new page
is checked at every width by adding one line here.

A path may name a value that the seeded data provides (`{key_id}` of an active key,
`{organization_id}`, `{reset_path}`, `{confirm_path}`: see seed() in test_every_page.py);
`visitor` says who opens it: someone signed out, the owner of a busy organization, a user
with TOTP who has signed in, or that user half-way through signing in (password given, code
asked). A page behind allauth's "confirm access" step is opened after giving the password
again."""

from __future__ import annotations

from dataclasses import dataclass

WIDTHS = (390, 768, 1280)

ANONYMOUS = "anonymous"
OWNER = "owner"
TOTP_USER = "totp-user"
TOTP_LOGIN = "totp-login"


@dataclass(frozen=True)
class Page:
    name: str  # the screenshot is test-artifacts/e2e/<name>-<width>.png
    path: str
    visitor: str


PAGES = [
    Page("home", "/", ANONYMOUS),
    Page("docs", "/docs/", ANONYMOUS),
    Page("models", "/models/", ANONYMOUS),
    Page("sign-in", "/accounts/login/", ANONYMOUS),
    Page("sign-up", "/accounts/signup/", ANONYMOUS),
    Page("password-reset", "/accounts/password/reset/", ANONYMOUS),
    Page("password-reset-done", "/accounts/password/reset/done/", ANONYMOUS),
    Page("password-reset-from-key", "{reset_path}", ANONYMOUS),
    Page("password-reset-from-key-done", "/accounts/password/reset/key/done/", ANONYMOUS),
    Page("verification-sent", "/accounts/confirm-email/", ANONYMOUS),
    Page("confirm-email", "{confirm_path}", ANONYMOUS),
    Page("overview", "/", OWNER),
    Page("keys", "/keys/", OWNER),
    Page("key-edit", "/keys/{key_id}/edit", OWNER),
    Page("usage", "/usage/", OWNER),
    Page("billing", "/billing/", OWNER),
    Page("members", "/members/", OWNER),
    Page("settings", "/settings/", OWNER),
    Page("docs-signed-in", "/docs/", OWNER),
    Page("email-addresses", "/accounts/email/", OWNER),
    Page("password-change", "/accounts/password/change/", OWNER),
    Page("reauthenticate", "/accounts/reauthenticate/", OWNER),
    Page("2fa", "/accounts/2fa/", OWNER),
    Page("2fa-activate", "/accounts/2fa/totp/activate/", OWNER),
    Page("2fa-recovery-codes", "/accounts/2fa/recovery-codes/", TOTP_USER),
    Page("2fa-authenticate", "/accounts/2fa/authenticate/", TOTP_LOGIN),
]
