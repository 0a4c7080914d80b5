"""Every page (tests/e2e/pages.py) in a real Chromium at a phone's, a tablet's and a laptop's
width, with realistic data (many keys, long model names, a long email): no sideways scroll,
tables that fit, legible charts, WCAG 2 A/AA by axe-core, form fields whose boundary has 3:1
contrast; the dashboard's sidebar is a menu on narrow screens. Screenshots of every page at
every width are kept as test-artifacts/e2e/<page>-<width>.png."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from allauth.account.forms import default_token_generator
from allauth.account.models import EmailAddress, EmailConfirmationHMAC
from allauth.account.utils import user_pk_to_url_str
from allauth.mfa.recovery_codes.internal.auth import RecoveryCodes
from allauth.mfa.totp.internal.auth import (
    TOTP,
    format_hotp_value,
    generate_totp_secret,
    hotp_value,
    yield_hotp_counters_from_time,
)
from django.utils import timezone
from playwright.sync_api import BrowserContext, expect

from accounts.models import Membership, Role, User
from accounts.services import (
    api_key_create,
    api_key_revoke,
    management_token_create,
    organization_create,
)
from billing.money import usd_to_nanos
from billing.services import credits_grant
from tests.e2e.browser import ARTIFACTS, chromium, log_in
from tests.e2e.layout_checks import layout_problems
from tests.e2e.pages import ANONYMOUS, OWNER, PAGES, TOTP_LOGIN, TOTP_USER, WIDTHS
from tests.usage.conftest import make_record, roll_up

PASSWORD = "a-long-passphrase-42"
OWNER_EMAIL = "augusta.ada.king.countess.of.lovelace@analytical-engines.example.com"
TOTP_EMAIL = "grace.hopper@example.com"
HEIGHTS = {390: 844, 768: 1024, 1280: 900}
MENU_BELOW = 900  # the sidebar is a menu below this width (static/css/app.css)
LONG_MODELS = [
    "anthropic/claude-3-5-sonnet-20241022-extended-thinking",
    "gemini-1.5-flash-8b-exp-0924",
    "gpt-4o-mini-2024-07-18",
    "meta-llama/Meta-Llama-3.1-405B-Instruct-Turbo",
]


def verified_user(email: str) -> User:
    user = User.objects.create_user(email=email, password=PASSWORD)
    EmailAddress.objects.create(user=user, email=email, verified=True, primary=True)
    return user


def seed() -> dict[str, str]:
    """A busy organization, a user with TOTP, and the links that mails would carry."""
    owner = verified_user(OWNER_EMAIL)
    organization = organization_create(name="Analytical Engines Research & Production", owner=owner)
    keys = [
        api_key_create(organization=organization, name=name).api_key
        for name in ("production", "batch jobs overnight", "staging", "a colleague's laptop")
    ]
    api_key_revoke(api_key=api_key_create(organization=organization, name="old").api_key)
    now = timezone.now()
    for index in range(60):
        make_record(
            organization,
            keys[index % len(keys)],
            model=LONG_MODELS[index % len(LONG_MODELS)],
            status=429 if index % 11 == 0 else 200,
            error_code="rate_limit_exceeded" if index % 11 == 0 else "",
            prompt_tokens=12_345 + index,
            completion_tokens=2_345,
            cost_nanos=(index % 7 + 1) * 1_234_567,
            created_at=now - timedelta(hours=index * 7 % 300, minutes=index),
        )
    roll_up()
    for number in range(3):
        credits_grant(
            organization=organization,
            amount_nanos=usd_to_nanos(25),
            reference=f"grant:{number}",
            description="Starting credit granted by the operator for an evaluation",
        )
    for email in ("charles.babbage.difference.engine@analytical-engines.example.com", "m@x.io"):
        Membership.objects.create(
            organization=organization, user=verified_user(email), role=Role.MEMBER
        )
    management_token_create(
        user=owner, organization=organization, name="deploy pipeline on the build server"
    )

    totp_user = verified_user(TOTP_EMAIL)
    secret = generate_totp_secret()
    TOTP.activate(totp_user, secret)
    RecoveryCodes.activate(totp_user)

    newcomer = User.objects.create_user(email="newcomer@example.com", password=PASSWORD)
    address = EmailAddress.objects.create(user=newcomer, email=newcomer.email, primary=True)
    return {
        "key_id": str(keys[0].pk),
        "organization_id": str(organization.pk),
        "secret": secret,
        "reset_path": f"/accounts/password/reset/key/{user_pk_to_url_str(owner)}-"
        f"{default_token_generator.make_token(owner)}/",
        "confirm_path": f"/accounts/confirm-email/{EmailConfirmationHMAC.create(address).key}/",
    }


def totp_code(secret: str) -> str:
    return format_hotp_value(hotp_value(secret, next(yield_hotp_counters_from_time())))


def log_in_context(context: BrowserContext, base: str, email: str) -> None:
    """Signs the context's visitor in, on a page of its own."""
    page = context.new_page()
    log_in(page, base, email, PASSWORD)
    page.close()


@pytest.mark.parametrize("width", WIDTHS)
def test_every_page_fits_reads_and_passes_axe(app_verifying, width):
    data = seed()
    problems: list[str] = []
    with chromium() as browser:
        viewport = {"width": width, "height": HEIGHTS[width]}
        contexts = {
            visitor: browser.new_context(viewport=viewport, bypass_csp=True)
            for visitor in (ANONYMOUS, OWNER, TOTP_USER, TOTP_LOGIN)
        }
        log_in_context(contexts[OWNER], app_verifying, OWNER_EMAIL)
        log_in_context(contexts[TOTP_LOGIN], app_verifying, TOTP_EMAIL)  # stops at the code
        log_in_context(contexts[TOTP_USER], app_verifying, TOTP_EMAIL)
        page = contexts[TOTP_USER].new_page()
        page.goto(f"{app_verifying}/accounts/2fa/authenticate/")
        page.fill("input[name=code]", totp_code(data["secret"]))
        page.click("main button[type=submit]")
        expect(page).not_to_have_url(re.compile("/authenticate/"))
        page.close()

        for entry in PAGES:
            page = contexts[entry.visitor].new_page()
            response = page.goto(app_verifying + entry.path.format(**data))
            assert response is not None and response.ok, f"{entry.name}: {response}"
            if "/reauthenticate/" in page.url and entry.name != "reauthenticate":
                page.fill("input[name=password]", PASSWORD)
                page.click("main button[type=submit]")
                expect(page).not_to_have_url(re.compile("/reauthenticate/"))
            if entry.visitor in (OWNER, TOTP_USER):  # still signed in
                expect(page.get_by_role("button", name="Log out")).to_be_visible()
            page.screenshot(path=ARTIFACTS / f"{entry.name}-{width}.png", full_page=True)
            problems += [f"{entry.name} at {width}px: {p}" for p in layout_problems(page)]
            page.close()
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("width", WIDTHS)
def test_the_sidebar_is_a_menu_on_narrow_screens_and_tables_keep_columns_on_wide(
    app_verifying, width
):
    seed()
    with chromium() as browser:
        context = browser.new_context(viewport={"width": width, "height": HEIGHTS[width]})
        log_in_context(context, app_verifying, OWNER_EMAIL)
        page = context.new_page()
        page.goto(f"{app_verifying}/keys/")
        usage_link = page.get_by_role("link", name="Usage", exact=True)
        heading = page.get_by_role("heading", name="API keys", level=1)
        toggle = page.get_by_role("button", name="Menu")
        if width < MENU_BELOW:
            expect(toggle).to_be_visible()
            expect(toggle).to_have_attribute("aria-expanded", "false")
            expect(usage_link).to_be_hidden()
            assert heading.bounding_box()["y"] < 300, "the page starts below a block"
            toggle.click()
            expect(toggle).to_have_attribute("aria-expanded", "true")
            expect(usage_link).to_be_visible()
            page.screenshot(path=ARTIFACTS / f"menu-open-{width}.png")
            usage_link.click()
            expect(page).to_have_url(re.compile("/usage/$"))
        else:
            expect(toggle).to_be_hidden()
            expect(usage_link).to_be_visible()
            assert heading.bounding_box()["y"] < 200
            # Wide, the request table keeps its columns, Cost included, on screen.
            page.goto(f"{app_verifying}/usage/")
            table = page.locator("table.requests")
            expect(table).not_to_have_attribute("data-stacked", "")
            cost = table.get_by_role("columnheader", name="Cost")
            assert cost.bounding_box()["x"] + cost.bounding_box()["width"] <= width
            page.screenshot(path=ARTIFACTS / f"usage-columns-{width}.png")
        if width == 390:  # and a phone stacks it, one card per call
            page.goto(f"{app_verifying}/usage/")
            expect(page.locator("table.requests")).to_have_attribute("data-stacked", "")
            first = page.locator("table.requests tbody tr").first
            expect(first.locator("td[data-label=Cost]")).to_be_visible()
