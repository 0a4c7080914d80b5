from django.db import migrations


def load_defaults(apps, schema_editor):
    from apigateway.catalog import catalog_load_defaults

    catalog_load_defaults(model=apps.get_model("apigateway", "CatalogModel"))


class Migration(migrations.Migration):
    dependencies = [("apigateway", "0001_catalog")]
    operations = [migrations.RunPython(load_defaults, migrations.RunPython.noop)]
