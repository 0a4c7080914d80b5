"""The mail the served app writes to files (EMAIL_URL=filemail://...), read by the e2e tests
for the links a person would click."""

from __future__ import annotations

import re
import time
from pathlib import Path


def confirmation_link(mail_dir: Path, timeout: float = 10) -> str:
    """The email-confirmation link of the first mail that carries one, waiting for it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for mail in mail_dir.glob("*.log") if mail_dir.exists() else []:
            found = re.search(r"https?://\S+/accounts/confirm-email/\S+/", mail.read_text())
            if found:
                return found.group(0)
        time.sleep(0.1)
    raise AssertionError("no confirmation email arrived")
