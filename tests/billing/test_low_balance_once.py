"""Two beats (a rolling update, or a second scheduler started by mistake) fire the
low-balance task at the same moment: each organization's owners are mailed once."""

from __future__ import annotations

import threading
import time

import pytest
from django.core import mail
from django.core.mail.backends import locmem
from django.db import connection

from billing.alerts import low_balance_alerts
from billing.models import BalanceAlert
from billing.services import credits_grant
from tests.billing.test_periodic_jobs import charge


class SlowMailBackend(locmem.EmailBackend):
    """The test outbox, with a send that takes a while as an SMTP server's does, so that
    two runs of the task overlap while mailing."""

    def send_messages(self, messages):
        time.sleep(1.0)
        return super().send_messages(messages)


def run_concurrently(task, times: int) -> list[BaseException]:
    start = threading.Barrier(times)
    failures: list[BaseException] = []

    def run() -> None:
        start.wait()
        try:
            task()
        except BaseException as failure:
            failures.append(failure)
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(times)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return failures


@pytest.mark.django_db(transaction=True)
def test_two_runs_at_once_mail_each_organization_once(organization, settings):
    settings.LOW_BALANCE_USD = 5
    settings.EMAIL_BACKEND = f"{__name__}.SlowMailBackend"
    credits_grant(organization=organization, amount_nanos=10 * 10**9, reference="grant:a")
    charge(organization, "u1", 8 * 10**9)

    assert run_concurrently(low_balance_alerts, 2) == []

    assert len(mail.outbox) == 1
    assert BalanceAlert.objects.filter(organization=organization).count() == 1
    assert low_balance_alerts() == 0 and len(mail.outbox) == 1


@pytest.mark.django_db(transaction=True)
def test_a_mail_that_could_not_be_sent_is_tried_again(organization, settings):
    settings.LOW_BALANCE_USD = 5
    settings.EMAIL_BACKEND = "tests.billing.test_low_balance_once.RefusingMailBackend"
    credits_grant(organization=organization, amount_nanos=10 * 10**9, reference="grant:a")
    charge(organization, "u1", 8 * 10**9)
    with pytest.raises(ConnectionRefusedError):
        low_balance_alerts()
    assert not BalanceAlert.objects.exists()  # not marked as told
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    assert low_balance_alerts() == 1 and len(mail.outbox) == 1


class RefusingMailBackend(locmem.EmailBackend):
    """An SMTP server that is down."""

    def send_messages(self, messages):
        raise ConnectionRefusedError("smtp is down")
