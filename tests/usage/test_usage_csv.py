"""/usage/requests.csv: the page's filters, exact dollars, formula-safe text, one
organization only, bounded."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime

from accounts.services import api_key_create
from tests.usage.conftest import make_record
from usage import export


def rows(response) -> list[list[str]]:
    assert response.status_code == 200
    assert response["content-type"] == "text/csv; charset=utf-8"
    assert response["content-disposition"].startswith('attachment; filename="nexeon-requests-')
    return list(csv.reader(io.StringIO(response.content.decode())))


def test_csv_has_exact_amounts_and_every_column(client, owner, organization, prod_key):
    at = datetime(2026, 11, 20, 10, 0, 1, tzinfo=UTC)
    record = make_record(
        organization,
        prod_key,
        created_at=at,
        cost_nanos=123_456_789,
        cached_tokens=3,
        streamed=True,
        ttfb_ms=None,
        duration_ms=1234.56,
    )
    make_record(
        organization,
        prod_key,
        created_at=datetime(2026, 11, 19, tzinfo=UTC),
        cost_nanos=2_500_000_000,
        status=502,
        error_code="upstream_error",
    )
    client.force_login(owner)
    header, first, second = rows(client.get("/usage/requests.csv"))
    assert header == export.HEADER
    assert first == [
        "2026-11-20T10:00:01+00:00",
        record.request_id,
        "prod",
        prod_key.prefix,
        "gpt-4o",
        "openai",
        "chat",
        "200",
        "",
        "10",
        "5",
        "3",
        "0.123456789",
        "",
        "1234.6",
        "true",
        "false",
    ]
    assert second[7:9] == ["502", "upstream_error"] and second[12] == "2.50"


def test_csv_follows_the_filters_and_shows_one_organization(
    client, owner, organization, prod_key, dev_key, outsider, other_organization, other_key
):
    ok = make_record(organization, prod_key)
    failed = make_record(organization, dev_key, status=429)
    theirs = make_record(other_organization, other_key, status=429)
    client.force_login(owner)
    ids = [row[1] for row in rows(client.get("/usage/requests.csv"))[1:]]
    assert ids == [failed.request_id, ok.request_id]
    ids = [row[1] for row in rows(client.get("/usage/requests.csv?status=error"))[1:]]
    assert ids == [failed.request_id]
    ids = [row[1] for row in rows(client.get(f"/usage/requests.csv?key={prod_key.pk}"))[1:]]
    assert ids == [ok.request_id]
    # Another tenant's key id is not a filter here: it is dropped, their rows never appear.
    ids = [row[1] for row in rows(client.get(f"/usage/requests.csv?key={other_key.pk}"))[1:]]
    assert theirs.request_id not in ids
    client.force_login(outsider)
    ids = [row[1] for row in rows(client.get("/usage/requests.csv"))[1:]]
    assert ids == [theirs.request_id]


def test_csv_text_cannot_run_as_a_spreadsheet_formula(client, owner, organization):
    key = api_key_create(organization=organization, name='=HYPERLINK("http://x")').api_key
    make_record(organization, key, model="@SUM(A1)", provider="+evil", error_code="-1")
    client.force_login(owner)
    _, row = rows(client.get("/usage/requests.csv"))
    assert row[2] == '\'=HYPERLINK("http://x")'
    assert (row[4], row[5], row[8]) == ("'@SUM(A1)", "'+evil", "'-1")


def test_csv_is_bounded(client, owner, organization, prod_key, monkeypatch):
    monkeypatch.setattr(export, "MAX_ROWS", 3)
    for _ in range(5):
        make_record(organization, prod_key)
    client.force_login(owner)
    response = client.get("/usage/requests.csv")
    assert len(rows(response)) == 1 + 3
    assert response["X-Row-Limit-Reached"] == "1"
    monkeypatch.setattr(export, "MAX_ROWS", 5)
    assert "X-Row-Limit-Reached" not in client.get("/usage/requests.csv")
