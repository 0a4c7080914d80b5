"""The Django admin of accounts: users, organizations (with the "Grant credits" action),
API keys and invitations.

An operator's password reset revokes the user's management tokens, as allauth's own resets
do; a change to what the gateway caches (a key, an organization's plan or limits) is
announced to it once it commits."""

import uuid
from decimal import Decimal

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.contrib.auth.forms import AdminPasswordChangeForm
from django.db import transaction
from django.template.response import TemplateResponse

from accounts import key_cache
from accounts.models import ApiKey, Invitation, Membership, Organization, User
from accounts.services import management_tokens_revoke_for_user, organization_keys_forget
from billing import money
from billing.services import MAX_OPERATOR_GRANT_USD, operator_credits_grant


class PasswordResetByOperatorForm(AdminPasswordChangeForm):
    """An operator setting a user's password is a reset: the user's tokens end with it, as
    with allauth's change and reset (accounts/adapters.py)."""

    def save(self, commit: bool = True):
        user = super().save(commit=commit)
        management_tokens_revoke_for_user(user=user)
        return user


@admin.register(User)
class UserAdmin(BaseUserAdmin):
    change_password_form = PasswordResetByOperatorForm
    ordering = ("email",)
    list_display = ("email", "is_staff", "is_active", "date_joined")
    search_fields = ("email",)
    fieldsets = (
        (None, {"fields": ("email", "password")}),
        ("Profile", {"fields": ("first_name", "last_name")}),
        ("Permissions", {"fields": ("is_active", "is_staff", "is_superuser", "groups")}),
        ("Dates", {"fields": ("last_login", "date_joined")}),
    )
    add_fieldsets = ((None, {"classes": ("wide",), "fields": ("email", "password1", "password2")}),)


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    raw_id_fields = ("user",)


class GrantCreditsForm(forms.Form):
    amount = forms.DecimalField(
        label="Amount (USD)",
        min_value=Decimal("0.01"),
        max_value=MAX_OPERATOR_GRANT_USD,
        decimal_places=2,
        help_text="Added to each selected organization's balance.",
    )
    note = forms.CharField(
        required=False, max_length=200, help_text="Why (kept in the ledger entry)."
    )


@admin.register(Organization)
class OrganizationAdmin(admin.ModelAdmin):
    list_display = ("name", "slug", "plan", "is_personal", "created_at")
    list_filter = ("plan",)
    search_fields = ("name", "slug")
    inlines = [MembershipInline]
    actions = ["grant_credits"]

    @admin.action(description="Grant credits to the selected organizations", permissions=["change"])
    def grant_credits(self, request, queryset):
        """Asks the amount (and a note), then books one ledger grant per organization that
        names the admin who gave it."""
        form = GrantCreditsForm(request.POST if "apply" in request.POST else None)
        if form.is_valid():
            amount = money.usd_to_nanos(form.cleaned_data["amount"])
            note = form.cleaned_data["note"].strip()
            who = f"Granted by {request.user.email} in the admin" + (f": {note}" if note else "")
            for organization in queryset:
                operator_credits_grant(
                    organization=organization,
                    amount_nanos=amount,
                    granted_by=who,
                    reference=f"grant:admin:{uuid.uuid4()}",
                )
            count = len(queryset)
            self.message_user(
                request,
                f"Granted {money.format_usd(amount)} to {count} organization"
                + ("" if count == 1 else "s")
                + ".",
                messages.SUCCESS,
            )
            return None
        return TemplateResponse(
            request,
            "admin/accounts/organization/grant_credits.html",
            {
                **self.admin_site.each_context(request),
                "title": "Grant credits",
                "form": form,
                "organizations": queryset,
                "opts": self.model._meta,
                "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            },
        )

    def save_model(self, request, obj, form, change) -> None:
        super().save_model(request, obj, form, change)
        if change and {"plan", "rpm_limit", "tpm_limit"} & set(form.changed_data):
            organization_keys_forget(organization=obj)  # the gateway caches the limits


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    list_display = ("name", "prefix", "organization", "created_at", "last_used_at", "revoked_at")
    list_filter = ("revoked_at",)
    search_fields = ("name", "prefix", "organization__name")
    raw_id_fields = ("organization", "created_by")
    # The digest is a secret's fingerprint: operators never edit it by hand.
    readonly_fields = ("prefix", "digest", "created_at", "last_used_at")

    def save_model(self, request, obj, form, change) -> None:
        super().save_model(request, obj, form, change)
        if change:
            digest = obj.digest
            transaction.on_commit(lambda: key_cache.changed(digest))  # the gateway caches it


@admin.register(Invitation)
class InvitationAdmin(admin.ModelAdmin):
    list_display = (
        "email",
        "organization",
        "role",
        "created_at",
        "expires_at",
        "accepted_at",
        "withdrawn_at",
    )
    search_fields = ("email", "organization__name")
    readonly_fields = ("token",)
