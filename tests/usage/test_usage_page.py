"""The usage page as each persona sees it: charts (accessible SVG with data tables),
breakdowns, filters from the query string, pages, and the live section."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.services import api_key_create
from tests.usage.conftest import make_record, roll_up
from usage import views


def rows_of(html: str) -> list[str]:
    return re.findall(r'data-request-id="([^"]+)"', html)


@pytest.fixture
def calls(organization, prod_key, dev_key, other_organization, other_key):
    now = timezone.now()
    records = {
        "ok": make_record(organization, prod_key, model="gpt-4o", cost_nanos=123_456_789),
        "limited": make_record(
            organization,
            prod_key,
            model="claude-3-5-sonnet",
            status=429,
            cost_nanos=0,
            error_code="rate_limit_exceeded",
            created_at=now - timedelta(minutes=1),
        ),
        "dev": make_record(
            organization,
            dev_key,
            model="gpt-4o-mini",
            streamed=True,
            client_disconnected=True,
            created_at=now - timedelta(minutes=2),
        ),
        "theirs": make_record(other_organization, other_key, model="secret-model"),
    }
    roll_up()
    return records


def test_owner_sees_charts_breakdowns_and_requests_of_this_organization_only(
    client, owner, calls, prod_key
):
    client.force_login(owner)
    response = client.get("/usage/")
    assert response.status_code == 200
    html = response.content.decode()

    assert rows_of(html) == [calls[name].request_id for name in ("ok", "limited", "dev")]
    assert calls["theirs"].request_id not in html and "secret-model" not in html
    # Charts: inline SVG named by <title>, described by <desc>, with a data table fallback.
    for chart in ("spend", "requests", "model-spend", "model-requests", "key-spend"):
        assert f'id="chart-{chart}"' in html
        assert f'aria-labelledby="chart-{chart}-title chart-{chart}-desc"' in html
    assert '<title id="chart-spend-title">Spend per day, last 30 days</title>' in html
    assert "<title>claude-3-5-sonnet: 1 requests</title>" in html
    assert f"<title>prod ({prod_key.prefix}…): $0.123456789</title>" in html
    assert "Data table: by model" in html and "$0.123457" in html  # table rounds to 6 places
    assert 'data-testid="total-spend">$0.12<' in html
    assert "rate_limit_exceeded" in html
    assert '<script src="http' not in html  # no CDN: charts are drawn here


def test_a_member_reads_the_page_too_and_anonymous_visitors_are_sent_to_log_in(
    client, member, calls
):
    assert client.get("/usage/").status_code == 302
    assert client.get("/usage/requests.csv").status_code == 302
    client.force_login(member)
    html = client.get("/usage/").content.decode()
    assert calls["ok"].request_id in html


def test_an_outsider_sees_only_their_own_organization(client, outsider, calls):
    client.force_login(outsider)
    html = client.get("/usage/").content.decode()
    assert rows_of(html) == [calls["theirs"].request_id]
    assert calls["ok"].request_id not in html and "claude-3-5-sonnet" not in html


def test_filters_come_from_the_query_string_and_another_tenants_key_is_refused(
    client, owner, calls, dev_key, other_key
):
    client.force_login(owner)
    assert rows_of(client.get("/usage/?status=error").content.decode()) == [
        calls["limited"].request_id
    ]
    assert rows_of(client.get("/usage/?status=ok&model=gpt-4o-mini").content.decode()) == [
        calls["dev"].request_id
    ]
    assert rows_of(client.get(f"/usage/?key={dev_key.pk}").content.decode()) == [
        calls["dev"].request_id
    ]
    html = client.get(f"/usage/?key={other_key.pk}").content.decode()
    assert 'data-testid="filter-errors"' in html and calls["theirs"].request_id not in html
    html = client.get("/usage/?status=teapot&granularity=hour").content.decode()
    assert 'data-testid="filter-errors"' in html and len(rows_of(html)) == 3
    assert "Requests per hour, last 48 hours" in html
    # The CSV link carries the same filters (and nothing else).
    html = client.get("/usage/?status=error&granularity=month&page=1").content.decode()
    assert 'href="/usage/requests.csv?status=error"' in html
    assert "Spend per month, last 12 months" in html


def test_requests_are_paged_by_50_and_pages_keep_the_filters(client, owner, organization, prod_key):
    now = timezone.now()
    for index in range(60):
        make_record(organization, prod_key, status=500, created_at=now - timedelta(seconds=index))
    make_record(organization, prod_key, status=200)
    client.force_login(owner)
    first = client.get("/usage/?status=error").content.decode()
    assert len(rows_of(first)) == 50 and "Page 1 of 2" in first
    assert "?status=error&amp;page=2#requests" in first
    second = client.get("/usage/?status=error&page=2").content.decode()
    assert len(rows_of(second)) == 10
    assert set(rows_of(first)).isdisjoint(rows_of(second))


def test_pages_stop_at_a_bound_instead_of_counting_everything(
    client, owner, organization, prod_key, monkeypatch
):
    monkeypatch.setattr(views, "PAGED_ROWS", 60)
    for _ in range(70):
        make_record(organization, prod_key)
    client.force_login(owner)
    html = client.get("/usage/?page=2").content.decode()
    assert len(rows_of(html)) == 10 and "Page 2 of 2+" in html


def test_live_section_with_and_without_redis(client, owner, organization, settings):
    """Without Redis (the embedded default) the feed is this process's own."""
    client.force_login(owner)
    for url in (settings.REDIS_URL, ""):
        settings.REDIS_URL = url
        html = client.get("/usage/").content.decode()
        assert f'data-url="/ws/usage/?organization={organization.pk}"' in html
        assert "js/usage-live.js" in html


def test_an_empty_organization_gets_zero_charts(client, owner, organization):
    client.force_login(owner)
    html = client.get("/usage/?granularity=month").content.decode()
    assert html.count("Nothing in this range") >= 4
    assert "No requests." in html


def test_names_are_escaped_in_charts_and_table(client, owner, organization):
    key = api_key_create(organization=organization, name="<b>k</b>").api_key
    make_record(organization, key, model='<script>alert("m")</script>')
    roll_up()
    client.force_login(owner)
    html = client.get("/usage/").content.decode()
    assert "<script>alert" not in html and "<b>k</b>" not in html
    assert "&lt;script&gt;alert(&quot;m&quot;)&lt;/script&gt;" in html
