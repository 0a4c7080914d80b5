"""Every page under the strict Content-Security-Policy, in a real Chromium: the header is
there, nothing is refused (no inline script, style or handler left, the live feed's
WebSocket allowed), and what the static scripts do still works (the organization switcher,
the copy button, Redoc, the live feed)."""

from __future__ import annotations

from playwright.sync_api import expect

from accounts.models import User
from accounts.services import api_key_create, organization_create
from tests.e2e.browser import ARTIFACTS, chromium_page, log_in

PASSWORD = "a-long-passphrase-42"

# Each violation the page reports, with what was refused and where; reported from the
# page's own event, which the policy cannot silence, through a binding Python receives.
WATCH_VIOLATIONS = """
document.addEventListener("securitypolicyviolation", (event) => {
  window.reportViolation(
    `${event.violatedDirective} refused ${event.blockedURI || "inline"} at ` +
    `${event.sourceFile || document.location.href}:${event.lineNumber}`
  );
});
"""

SIGNED_OUT_PAGES = [
    "/",
    "/models/",
    "/docs/",
    "/accounts/login/",
    "/accounts/signup/",
    "/accounts/password/reset/",
]
SIGNED_IN_PAGES = [
    "/",
    "/keys/",
    "/usage/",
    "/billing/",
    "/members/",
    "/settings/",
    "/models/",
    "/docs/",
    "/api/docs/",
    "/accounts/2fa/",
    "/accounts/2fa/totp/activate/",
    "/accounts/password/change/",
    "/accounts/email/",
    "/admin/",
    "/admin/accounts/user/",
    "/admin/accounts/organization/",
]


def test_no_page_breaks_the_content_security_policy(app):
    owner = User.objects.create_user(
        email="ada@example.com", password=PASSWORD, is_staff=True, is_superuser=True
    )
    acme = organization_create(name="Acme", owner=owner)
    organization_create(name="Side project", owner=owner)
    api_key_create(organization=acme, name="production", created_by=owner)
    change_user = f"/admin/accounts/user/{owner.pk}/change/"

    violations: list[str] = []
    with chromium_page(1280, 900) as page:
        page.context.expose_function("reportViolation", lambda text: violations.append(text))
        page.context.add_init_script(WATCH_VIOLATIONS)
        page.on(
            "console",
            lambda message: (
                "Content Security Policy" in message.text
                and violations.append(f"console: {message.text}")
            ),
        )

        def visit(path: str) -> None:
            answer = page.goto(f"{app}{path}")
            assert answer is not None and answer.status == 200, (path, answer and answer.status)
            policy = answer.headers.get("content-security-policy", "")
            assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy, path
            page.wait_for_load_state("networkidle")

        for path in SIGNED_OUT_PAGES:
            visit(path)
        log_in(page, app, owner.email, PASSWORD)
        for path in [*SIGNED_IN_PAGES, change_user]:
            visit(path)
            if path == "/api/docs/":  # Redoc started by the static script
                expect(page.get_by_text("NeXeonAI management API").first).to_be_visible()
                page.screenshot(path=ARTIFACTS / "csp-api-docs.png")
            if path == "/usage/":  # the live feed's WebSocket is allowed
                expect(page.locator("#live-status")).to_contain_text("Connected")

        # The organization switcher submits on change from its static script.
        page.goto(f"{app}/keys/")
        page.select_option("#organization", label="Side project")
        expect(page.locator("#organization option:checked")).to_have_text("Side project")
        expect(page.get_by_text("No keys yet.")).to_be_visible()

        # A new management token, shown in the POST's own answer.
        page.goto(f"{app}/settings/")
        page.fill("#id_name", "ci")
        page.click("text=Create token")
        expect(page.get_by_test_id("new-token")).to_contain_text("nex-mt-")
        page.screenshot(path=ARTIFACTS / "csp-settings-new-token.png")
    # One refusal is the policy at work: Redoc's sidebar asks for its maker's logo from
    # their CDN (it hides the image when that fails); nothing leaves for a third party.
    redoc_logo = [v for v in violations if "https://cdn.redoc.ly/redoc/logo-mini.svg" in v]
    assert all("img-src" in v or "Loading the image" in v for v in redoc_logo), redoc_logo
    assert [v for v in violations if v not in redoc_logo] == []
