"""The model catalog (apigateway.catalog): the default rows and their loading, and how the
gateway's in-process snapshot learns of an operator's edit, through Redis's change counter
or, for a change made around the ORM, after the max age; fallbacks and deployments checked
on edit. On the test database and the test Redis."""

import asyncio

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command

from apigateway import catalog
from apigateway.models import CatalogModel, fallbacks_problem
from credit import connections as gateway_redis
from credit import keys as credit_keys


def test_the_default_catalog_has_the_promised_models():
    rows = {row["id"]: row for row in catalog.default_rows()}
    for model_id in (
        "gpt-4o",
        "gpt-4o-mini",
        "claude-3-5-sonnet",
        "text-embedding-3-small",
        "dall-e-3",
    ):
        assert model_id in rows
    assert rows["claude-3-5-sonnet"]["upstream_model"] == "claude-3-5-sonnet-20241022"
    assert {row["provider"] for row in rows.values()} >= {"openai", "anthropic", "gemini"}
    for row in rows.values():
        assert set(row) >= {"id", "provider", "upstream_model", "owned_by", "created", "prices"}


@pytest.mark.django_db
def test_migrations_load_the_defaults_and_loading_again_keeps_operator_edits():
    assert CatalogModel.objects.count() == len(catalog.default_rows())
    CatalogModel.objects.filter(public_id="gpt-4o").update(upstream_model="gpt-4o-2024-11-20")
    CatalogModel.objects.filter(public_id="dall-e-3").delete()
    call_command("load_catalog")
    assert CatalogModel.objects.get(public_id="gpt-4o").upstream_model == "gpt-4o-2024-11-20"
    assert CatalogModel.objects.filter(public_id="dall-e-3").exists()
    call_command("load_catalog", "--force")
    assert CatalogModel.objects.get(public_id="gpt-4o").upstream_model == "gpt-4o"


@pytest.fixture
def counted_reads(monkeypatch):
    """How many times the snapshot read the catalog's rows from the database."""
    reads = []
    real = catalog.read_entries

    def read_entries():
        reads.append(1)
        return real()

    monkeypatch.setattr(catalog, "read_entries", read_entries)
    return reads


async def watch(snap: catalog.CatalogSnapshot, seen, seconds: float) -> bool:
    """Ask the snapshot, as requests do, until `seen(entries)` or time runs out."""
    for _ in range(int(seconds / 0.02)):
        if seen(await snap.get()):
            return True
        await asyncio.sleep(0.02)
    return False


def edit(**changes) -> None:
    """An operator's edit of gpt-4o through the ORM (as the admin saves it), committed."""
    row = CatalogModel.objects.get(public_id="gpt-4o")
    for name, value in changes.items():
        setattr(row, name, value)
    row.save()


def disable_gpt_4o_around_the_orm() -> None:
    """A change no signal announces (`QuerySet.update`, as SQL or a bulk edit makes it)."""
    CatalogModel.objects.filter(public_id="gpt-4o").update(enabled=False)


async def sees_a_change_made_around_the_orm(snap: catalog.CatalogSnapshot, seconds: float):
    assert "gpt-4o" in await snap.get()
    await asyncio.to_thread(disable_gpt_4o_around_the_orm)
    return await watch(snap, lambda entries: "gpt-4o" not in entries, seconds)


def checking_snapshot(settings, max_age: float) -> catalog.CatalogSnapshot:
    """The default catalog, and a snapshot that checks for changes every 50 ms."""
    catalog.catalog_load_defaults()
    settings.GATEWAY_CATALOG_REFRESH_SECONDS = 0.05
    settings.GATEWAY_CATALOG_MAX_AGE_SECONDS = max_age
    return catalog.CatalogSnapshot()


@pytest.mark.django_db(transaction=True)
def test_an_edit_reaches_the_snapshot_through_the_change_counter(
    settings, redis_client, counted_reads
):
    snap = checking_snapshot(settings, max_age=3600)
    before = int(redis_client.get(credit_keys.CATALOG_VERSION) or 0)

    async def scenario():
        assert (await snap.get())["gpt-4o"].upstream_model == "gpt-4o"
        # Nothing changed: the snapshot checks the counter, never the database.
        assert not await watch(snap, lambda entries: len(counted_reads) > 1, 0.5)
        await asyncio.to_thread(edit, upstream_model="gpt-4o-2024-11-20")
        assert await watch(snap, lambda e: e["gpt-4o"].upstream_model == "gpt-4o-2024-11-20", 2.5)
        assert len(counted_reads) == 2
        # A change made around the ORM (no signal, so no counter bump) waits for the max age.
        assert not await sees_a_change_made_around_the_orm(snap, 0.5)
        assert len(counted_reads) == 2

    asyncio.run(scenario())
    assert int(redis_client.get(credit_keys.CATALOG_VERSION)) == before + 1


@pytest.mark.django_db(transaction=True)
def test_a_change_made_around_the_orm_is_read_after_the_max_age(settings, redis_client):
    snap = checking_snapshot(settings, max_age=0.3)
    assert asyncio.run(sees_a_change_made_around_the_orm(snap, 2.5))


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("redis_url", ["", "redis://127.0.0.1:1/0"], ids=["embedded", "down"])
def test_without_the_counter_the_rows_are_read_every_interval(
    settings, redis_url, counted_reads, monkeypatch
):
    settings.REDIS_URL = redis_url
    monkeypatch.setattr(gateway_redis, "_fast", {})
    snap = checking_snapshot(settings, max_age=3600)
    assert asyncio.run(sees_a_change_made_around_the_orm(snap, 2.5))
    assert len(counted_reads) >= 2
    edit(enabled=True)  # announced with no Redis to tell: logged, not raised


@pytest.mark.django_db
def test_saving_or_deleting_a_row_bumps_the_counter_once_committed(
    redis_client, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False) as pending:
        edit(upstream_model="gpt-4o-2024-11-20")
    assert len(pending) == 1 and redis_client.get(credit_keys.CATALOG_VERSION) is None  # not yet
    pending[0]()
    with django_capture_on_commit_callbacks(execute=True):
        CatalogModel.objects.get(public_id="dall-e-3").delete()
    assert redis_client.get(credit_keys.CATALOG_VERSION) == b"2"


def test_default_fallbacks_are_well_formed():
    for row in catalog.default_rows():
        assert fallbacks_problem(row.get("fallbacks", [])) is None, row["id"]


@pytest.mark.django_db
def test_fallbacks_are_checked_on_edit_and_a_malformed_value_is_ignored(caplog):
    row = CatalogModel.objects.get(public_id="gpt-4o")
    for bad in ({"provider": "azure"}, [{"provider": ""}], [{"provider": "a", "region": "eu"}]):
        row.fallbacks = bad
        with pytest.raises(ValidationError):
            row.full_clean()
    row.fallbacks = [{"provider": "azure", "upstream_model": "gpt-4o-prod"}, {"provider": "eu"}]
    row.full_clean()
    row.save()
    entry = catalog.read_entries()["gpt-4o"]
    assert entry.fallbacks == (("azure", "gpt-4o-prod"), ("eu", "gpt-4o"))
    CatalogModel.objects.filter(pk=row.pk).update(fallbacks={"provider": "azure"})
    assert catalog.read_entries()["gpt-4o"].fallbacks == ()
    assert "gpt-4o: fallbacks ignored" in caplog.text


@pytest.mark.django_db
def test_fallbacks_are_edited_in_the_admin(admin_client):
    row = CatalogModel.objects.get(public_id="gpt-4o")
    page = admin_client.get(f"/admin/apigateway/catalogmodel/{row.pk}/change/")
    assert page.status_code == 200 and b'name="fallbacks"' in page.content
    assert b'name="deployments"' in page.content


@pytest.mark.django_db
def test_deployments_are_checked_on_edit_and_a_malformed_value_is_ignored(caplog):
    row = CatalogModel.objects.get(public_id="gpt-4o")
    row.deployments = [{"provider": "a", "weight": -2}]
    with pytest.raises(ValidationError):
        row.full_clean()
    row.deployments = [
        {"provider": "openai-eu", "weight": 2},
        {"provider": "azure", "upstream_model": "g"},
    ]
    row.full_clean()
    row.save()
    entry = catalog.read_entries()["gpt-4o"]
    assert entry.deployments == (("openai-eu", "gpt-4o", 2.0), ("azure", "g", 1.0))
    CatalogModel.objects.filter(pk=row.pk).update(deployments=[{"provider": 3}])
    assert catalog.read_entries()["gpt-4o"].deployments == ()
    assert "gpt-4o: deployments ignored" in caplog.text
