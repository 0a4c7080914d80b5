from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.contrib.auth.forms import AdminPasswordChangeForm
from django.db import transaction

from accounts import key_cache
from accounts.models import ApiKey, Invitation, Membership, Organization, User
from accounts.services import management_tokens_revoke_for_user, organization_keys_forget


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


@admin.register(Organization)
class OrganizationAdmin(admin.ModelAdmin):
    list_display = ("name", "slug", "plan", "is_personal", "created_at")
    list_filter = ("plan",)
    search_fields = ("name", "slug")
    inlines = [MembershipInline]

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
