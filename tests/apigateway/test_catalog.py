import asyncio
import json

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command

from apigateway import catalog
from apigateway.models import CatalogModel, fallbacks_problem


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


@pytest.mark.django_db(transaction=True)
def test_the_snapshot_sees_an_edit_after_the_refresh_interval(settings):
    catalog.catalog_load_defaults()
    settings.GATEWAY_CATALOG_REFRESH_SECONDS = 0.05
    snap = catalog.CatalogSnapshot()

    async def scenario():
        first = await snap.get()
        assert first["gpt-4o"].upstream_model == "gpt-4o"
        await asyncio.to_thread(
            lambda: CatalogModel.objects.filter(public_id="gpt-4o").update(enabled=False)
        )
        for _ in range(50):
            await asyncio.sleep(0.05)
            if "gpt-4o" not in await snap.get():
                return True
        return False

    assert asyncio.run(scenario())


def test_catalog_json_is_valid_json():
    json.loads(catalog.DEFAULTS_FILE.read_text())


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
