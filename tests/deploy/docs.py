"""The shell commands a document prints, so that tests run them exactly as printed."""

from __future__ import annotations

import re

from tests.support import PROJECT_DIR

_FENCE = re.compile(r"^```(?P<info>[^\n]*)\n(?P<body>.*?)^```", re.MULTILINE | re.DOTALL)


def sections(document: str) -> dict[str, str]:
    """A markdown document's text under each `##`/`###` heading (by the heading's text)."""
    found: dict[str, str] = {}
    title = ""
    for line in (PROJECT_DIR / document).read_text().splitlines(keepends=True):
        heading = re.match(r"^#{2,3} (.+)$", line)
        if heading:
            title = heading[1].strip()
            found[title] = ""
        else:
            found[title] = found.get(title, "") + line
    return found


def fenced_commands(document: str, section: str | None = None, info: str = "sh") -> list[str]:
    """Each line of the ```sh blocks (in one section, or in the whole document)."""
    texts = [sections(document)[section]] if section else list(sections(document).values())
    return [
        line
        for text in texts
        for block in _FENCE.finditer(text)
        if block["info"].strip() == info
        for line in block["body"].splitlines()
        if line.strip()
    ]
