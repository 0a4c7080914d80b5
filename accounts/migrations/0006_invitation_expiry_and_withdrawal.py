from datetime import timedelta

from django.db import migrations, models

LEGACY_DAYS = 7  # invitations made before expiry existed get the default lifetime


def expire_legacy_invitations(apps, schema_editor):
    Invitation = apps.get_model("accounts", "Invitation")
    for invitation in Invitation.objects.filter(expires_at__isnull=True):
        invitation.expires_at = invitation.created_at + timedelta(days=LEGACY_DAYS)
        invitation.save(update_fields=["expires_at"])


class Migration(migrations.Migration):
    dependencies = [("accounts", "0005_spend_limit_positive")]

    operations = [
        migrations.AddField(
            model_name="invitation",
            name="expires_at",
            field=models.DateTimeField(null=True),
        ),
        migrations.RunPython(expire_legacy_invitations, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="invitation",
            name="expires_at",
            field=models.DateTimeField(),
        ),
        migrations.AddField(
            model_name="invitation",
            name="withdrawn_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddIndex(
            model_name="invitation",
            index=models.Index(
                fields=["organization", "created_at"], name="accounts_in_organiz_e4e7b9_idx"
            ),
        ),
    ]
