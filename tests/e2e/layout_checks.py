"""The layout checks (layout_checks.js, and axe-core from tests/node) run in a page."""

from __future__ import annotations

from pathlib import Path

from playwright.sync_api import Page

from tests.support import PROJECT_DIR

AXE_SCRIPT = PROJECT_DIR / "tests" / "node" / "node_modules" / "axe-core" / "axe.min.js"
CHECKS_SCRIPT = Path(__file__).with_name("layout_checks.js")
CHECKS = ("overflow", "fieldBoundaries", "chartText", "axe")


def layout_problems(page: Page) -> list[str]:
    """Every problem the checks find; the page's context must bypass its CSP (the scripts
    are added inline)."""
    page.add_script_tag(path=str(AXE_SCRIPT))
    page.add_script_tag(path=str(CHECKS_SCRIPT))
    return [
        f"{check}: {problem}"
        for check in CHECKS
        for problem in page.evaluate(f"() => window.nexeonLayoutChecks.{check}()")
    ]
