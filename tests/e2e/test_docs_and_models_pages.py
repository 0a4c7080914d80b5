"""The docs page and the public models page in a real headless Chromium, at a phone's and a
laptop's width: contents links, example tabs, copy buttons that copy the code, no code
block or page wider than its box; the models page's filter box. Screenshots in
test-artifacts/e2e/."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from apigateway.catalog import catalog_load_defaults
from tests.e2e.browser import ARTIFACTS
from tests.support import manage_env, serving_nexeon, test_database_url

WIDTHS = (390, 1280)
# Code blocks never wider than their box (a long line scrolls inside the block, whose
# overflow is auto): [block, its right edge, its box's right edge].
OVERFLOWING_CODE = """() => {
  const found = [];
  for (const pre of document.querySelectorAll("pre")) {
    if (pre.offsetParent === null) continue;  // a hidden tab
    const box = pre.closest("article, section, main").getBoundingClientRect();
    const own = pre.getBoundingClientRect();
    const scrolls = getComputedStyle(pre).overflowX === "auto";
    if (own.right > box.right + 1 || own.right > innerWidth || !scrolls) {
      found.push([pre.id || pre.textContent.slice(0, 40), own.right, box.right]);
    }
  }
  return found;
}"""
PAGE_OVERFLOW = "() => document.documentElement.scrollWidth - innerWidth"
# Tables that need sideways scrolling to be read (none: on phones they stack).
SCROLLING_TABLES = """() => Array.from(document.querySelectorAll(".docs .table-scroll"))
  .filter((box) => box.scrollWidth > box.clientWidth + 1).length"""


@pytest.fixture
def app_with_openai(transactional_db, redis_client):
    """The app with OpenAI's key set, so that its models are offered and the others not."""
    catalog_load_defaults()
    environment = manage_env(
        DATABASE_URL=test_database_url(), DEBUG="1", OPENAI_API_KEY="sk-e2e-operator"
    )
    with serving_nexeon(environment) as (base, _):
        yield base


def open_page(browser, base: str, width: int) -> Page:
    """A page this wide, in a context of its own whose copy buttons may use the clipboard."""
    context = browser.new_context(viewport={"width": width, "height": 900})
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=base)
    return context.new_page()


@pytest.mark.parametrize("width", WIDTHS)
def test_docs_page_contents_tabs_copy_and_no_overflow(app_with_openai, browser, width):
    page = open_page(browser, app_with_openai, width)
    page.goto(f"{app_with_openai}/docs/")
    expect(page.locator(".docs-toc")).to_be_visible()
    assert page.evaluate(PAGE_OVERFLOW) <= 0
    assert page.evaluate(OVERFLOWING_CODE) == []
    assert page.evaluate(SCROLLING_TABLES) == 0
    # Every code block has a copy button (app.js); each example group has tabs (docs.js).
    blocks = page.locator(".docs pre")
    assert blocks.count() >= 40
    assert page.locator(".docs .code-block > button.copy").count() == blocks.count()
    page.screenshot(path=ARTIFACTS / f"docs-{width}-top.png")
    page.screenshot(path=ARTIFACTS / f"docs-{width}.png", full_page=True)

    chat = page.locator("[data-examples]").filter(has=page.locator("#example-chat-python"))
    chat.get_by_role("tab", name="Python").click()
    expect(page.locator("#example-chat-python")).to_be_visible()
    expect(page.locator("#example-chat-curl")).to_be_hidden()
    # One choice for the whole page.
    expect(page.locator("#example-embeddings-python")).to_be_visible()
    assert page.evaluate(OVERFLOWING_CODE) == []  # the Python tabs too

    chat.locator(".code-block:visible button.copy").click()
    expect(chat.locator("button.copy:visible")).to_have_text("Copied")
    copied = page.evaluate("navigator.clipboard.readText()")
    shown = page.locator("#example-chat-python").inner_text().strip()
    assert copied == shown
    assert copied.startswith("from openai import OpenAI")
    assert f'base_url="{app_with_openai}/v1"' in copied and 'api_key="nex-sk-..."' in copied
    page.screenshot(path=ARTIFACTS / f"docs-{width}-python-copied.png")

    page.locator(".docs-toc").get_by_role("link", name="Errors").click()
    assert page.url.endswith("#errors")
    expect(page.locator("#errors")).to_be_in_viewport()
    expect(page.locator(".error-table td", has_text="503").first).to_be_visible()
    page.screenshot(path=ARTIFACTS / f"docs-{width}-errors.png")


@pytest.mark.parametrize("width", WIDTHS)
def test_models_page_filters_as_one_types_and_shows_unavailable_models(
    app_with_openai, browser, width
):
    page = open_page(browser, app_with_openai, width)
    page.goto(f"{app_with_openai}/")
    page.get_by_role("link", name="Models").first.click()
    expect(page.get_by_role("heading", name="Models", exact=True)).to_be_visible()
    page.wait_for_load_state("load")  # measured once the stylesheet applies, not before
    assert page.evaluate(PAGE_OVERFLOW) <= 0
    cards = page.locator(".model-card:visible")
    total = cards.count()
    assert total >= 20
    gpt = page.locator("#model-gpt-4o")
    expect(gpt.locator(".badge")).to_have_text("Available")
    expect(gpt).to_contain_text("$2.50")
    expect(page.locator("#model-claude-3-5-sonnet .badge")).to_have_text("Unavailable")
    page.screenshot(path=ARTIFACTS / f"models-{width}.png", full_page=True)

    page.get_by_label("Search").fill("claude")
    expect(cards).to_have_count(4)
    expect(page.locator("[data-models-count]")).to_have_text(
        "4 models, 0 available on this server."
    )
    page.get_by_label("Search").fill("")
    page.get_by_label("Available only").check()
    expect(page.locator("#model-claude-3-5-sonnet")).to_be_hidden()
    expect(page.locator("#model-gpt-4o")).to_be_visible()
    assert 0 < cards.count() < total
    page.get_by_label("Kind").select_option("embedding")
    expect(cards).to_have_count(2)
    assert page.evaluate(PAGE_OVERFLOW) <= 0
    page.screenshot(path=ARTIFACTS / f"models-{width}-filtered.png", full_page=True)
