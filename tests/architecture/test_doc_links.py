"""The README and docs/ stand on their own in a clone: every relative link names a file in
the repository (never a folder beside it) and every `#anchor` a heading of its target, and
the README stays a short page that points into docs/."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.support import PROJECT_DIR

DOCUMENTS = [PROJECT_DIR / "README.md", *sorted((PROJECT_DIR / "docs").glob("*.md"))]
LINK = re.compile(r"\]\(([^)\s]+)\)")
README_MOST_LINES = 120  # one or two screens


def anchor(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces as hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def anchors(document: Path) -> set[str]:
    return {
        anchor(line.lstrip("#"))
        for line in document.read_text().splitlines()
        if re.match(r"^#{1,6} ", line)
    }


def relative_links() -> list[tuple[str, str]]:
    return [
        (str(document.relative_to(PROJECT_DIR)), target)
        for document in DOCUMENTS
        for target in LINK.findall(document.read_text())
        if not re.match(r"^[a-z]+:", target)  # http:, https:, mailto:
    ]


@pytest.mark.parametrize(("document", "target"), relative_links())
def test_each_relative_link_resolves_inside_the_repository(document, target):
    path, _, fragment = target.partition("#")
    source = PROJECT_DIR / document
    resolved = (source.parent / path).resolve() if path else source
    assert resolved.is_relative_to(PROJECT_DIR), f"{document} links outside: {target}"
    assert resolved.exists(), f"{document}: {target} does not exist"
    if fragment and resolved.suffix == ".md":
        assert fragment in anchors(resolved), f"{document}: no heading for #{fragment}"


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda path: path.name)
def test_no_document_sends_a_reader_outside_the_repository(document):
    """A path above the checkout (such as ../shared/) is not there in a clone."""
    assert "../" not in document.read_text()


def test_the_readme_is_a_short_page_that_points_into_docs():
    readme = (PROJECT_DIR / "README.md").read_text()
    assert len(readme.splitlines()) <= README_MOST_LINES
    linked = {target.split("#")[0] for _, target in relative_links() if _ == "README.md"}
    for page in ("architecture", "configuration", "operations", "api", "performance"):
        assert f"docs/{page}.md" in linked, page
