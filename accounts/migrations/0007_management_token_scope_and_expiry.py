"""Management tokens get one organization and an expiry.

Tokens made before acted on every organization of their user and never expired. Each keeps
working, for 90 days from this migration, in its user's personal organization (the one
every user owns), else in the user's oldest membership; a token whose user belongs to no
organization could act on nothing and is deleted. Revoked tokens stay revoked.
"""

from datetime import timedelta

import django.db.models.deletion
from django.db import migrations, models
from django.utils import timezone

KEPT_FOR = timedelta(days=90)


def scope_existing_tokens(apps, schema_editor):
    ManagementToken = apps.get_model("accounts", "ManagementToken")
    Membership = apps.get_model("accounts", "Membership")
    expires_at = timezone.now() + KEPT_FOR
    for token in ManagementToken.objects.filter(organization__isnull=True):
        memberships = Membership.objects.filter(user_id=token.user_id).order_by("created_at", "pk")
        membership = (
            memberships.filter(organization__is_personal=True, role="owner").first()
            or memberships.first()
        )
        if membership is None:
            token.delete()
            continue
        token.organization_id = membership.organization_id
        token.expires_at = expires_at
        token.save(update_fields=["organization", "expires_at"])


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0006_invitation_expiry_and_withdrawal"),
    ]

    operations = [
        migrations.AddField(
            model_name="managementtoken",
            name="organization",
            field=models.ForeignKey(
                null=True,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="management_tokens",
                to="accounts.organization",
            ),
        ),
        migrations.AddField(
            model_name="managementtoken",
            name="expires_at",
            field=models.DateTimeField(null=True),
        ),
        migrations.RunPython(scope_existing_tokens, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="managementtoken",
            name="organization",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.CASCADE,
                related_name="management_tokens",
                to="accounts.organization",
            ),
        ),
        migrations.AlterField(
            model_name="managementtoken",
            name="expires_at",
            field=models.DateTimeField(),
        ),
    ]
