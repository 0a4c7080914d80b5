"""The usage page in a real Chromium against a real uvicorn: SVG charts drawn from the
rollups, the Live list filled over the WebSocket when the pipeline publishes a call, and a
member removed while watching it told so and sent nothing more."""

import threading
from datetime import timedelta

from django.db import connection
from django.utils import timezone
from playwright.sync_api import expect

from accounts.models import Membership, Role, User
from accounts.services import api_key_create, membership_remove, organization_create
from tests.e2e.browser import ARTIFACTS, chromium_page, log_in
from tests.usage.conftest import make_record, roll_up
from usage.live import publish


def live_row(page, record):
    """The Live list's row for a usage record."""
    return page.locator(f'#live-feed li[data-request-id="{record.request_id}"]')


def test_usage_page_draws_charts_and_shows_live_calls(app):
    owner = User.objects.create_user(email="ada@example.com", password="a-long-passphrase-42")
    organization = organization_create(name="Analytical Engines", owner=owner)
    prod = api_key_create(organization=organization, name="production").api_key
    batch = api_key_create(organization=organization, name="batch jobs").api_key
    now = timezone.now()
    models = ["gpt-4o", "claude-3-5-sonnet", "gemini-1.5-flash", "gpt-4o-mini"]
    for index in range(120):
        make_record(
            organization,
            prod if index % 3 else batch,
            model=models[index % len(models)],
            status=429 if index % 17 == 0 else 200,
            cost_nanos=(index % 7 + 1) * 350_000,
            created_at=now - timedelta(hours=index * 5 % 200, minutes=index),
        )
    roll_up()
    # Written before the browser starts: Playwright's sync API runs an event loop in this
    # thread, where the ORM refuses to run (publish() needs no query for a loaded key).
    live = make_record(organization, prod, model="gpt-4o", cost_nanos=1_234_567)
    with chromium_page(1280, 900) as page:
        log_in(page, app, "ada@example.com", "a-long-passphrase-42")
        page.goto(f"{app}/usage/")
        expect(page.locator("svg#chart-spend rect.bar").first).to_be_visible()
        expect(page.locator("svg#chart-model-spend rect.bar")).to_have_count(4)
        expect(page.locator("#live-status")).to_contain_text("Connected")
        page.screenshot(path=ARTIFACTS / "usage-1-day.png", full_page=True)

        publish([live])  # as the pipeline does after writing a batch
        row = live_row(page, live)
        expect(row).to_contain_text("$0.001234567")
        expect(row).to_contain_text("production")
        page.locator("#live-feed").scroll_into_view_if_needed()
        page.screenshot(path=ARTIFACTS / "usage-2-live.png")

        page.get_by_test_id("granularity-hour").click()
        expect(page.locator("#chart-requests-title")).to_have_text(
            "Requests per hour, last 48 hours"
        )
        page.select_option("#f-status", "error")
        page.click("text=Filter")
        expect(page.locator("table.requests tbody tr")).to_have_count(8)
        page.screenshot(path=ARTIFACTS / "usage-3-hour-errors.png", full_page=True)


def test_a_member_removed_while_watching_is_told_and_gets_nothing_more(app):
    owner = User.objects.create_user(email="ada@example.com", password="a-long-passphrase-42")
    member = User.objects.create_user(email="bob@example.com", password="a-long-passphrase-43")
    organization = organization_create(name="Analytical Engines", owner=owner)
    Membership.objects.create(organization=organization, user=member, role=Role.MEMBER)
    by = Membership.objects.get(user=owner)
    before = make_record(organization, None, model="gpt-4o", cost_nanos=1_000_000)
    after = make_record(organization, None, model="gpt-4o", cost_nanos=2_000_000)

    def in_a_thread(work) -> None:
        # Playwright's sync API runs an event loop in this thread, where the ORM refuses.
        def run() -> None:
            try:
                work()
            finally:
                connection.close()

        thread = threading.Thread(target=run)
        thread.start()
        thread.join(30)

    with chromium_page(1280, 900) as page:
        log_in(page, app, "bob@example.com", "a-long-passphrase-43")
        page.goto(f"{app}/usage/")
        expect(page.locator("#live-status")).to_contain_text("Connected")
        in_a_thread(lambda: publish([before]))
        expect(live_row(page, before)).to_be_visible()
        in_a_thread(
            lambda: membership_remove(
                membership=Membership.objects.get(user=member, organization=organization),
                by=by,
            )
        )
        page.wait_for_timeout(1200)  # what the socket knows is now older than a second
        in_a_thread(lambda: publish([after]))
        expect(page.locator("#live-status")).to_have_text(
            "You are no longer a member of this organization.", timeout=8000
        )
        expect(live_row(page, after)).to_have_count(0)
        page.locator("#live-status").scroll_into_view_if_needed()
        page.screenshot(path=ARTIFACTS / "usage-4-live-removed.png")
