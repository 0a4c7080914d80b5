"""The dashboard's routes for API keys, the organization switcher, settings (organizations,
management tokens), members and invitations, and the public API docs page."""

from django.urls import path

from accounts import member_views, settings_views, views

urlpatterns = [
    path("docs/", views.api_docs, name="api_docs"),
    path("keys/", views.keys, name="keys"),
    path("keys/create", views.key_create, name="key_create"),
    path("keys/<int:key_id>/revoke", views.key_revoke, name="key_revoke"),
    path("keys/<int:key_id>/rename", views.key_rename, name="key_rename"),
    path("keys/<int:key_id>/edit", views.key_edit, name="key_edit"),
    path("organizations/switch", views.organization_switch, name="organization_switch"),
    path("settings/", settings_views.settings_page, name="settings"),
    path(
        "settings/organizations/create",
        settings_views.organization_create,
        name="organization_create",
    ),
    path(
        "settings/organizations/rename",
        settings_views.organization_rename,
        name="organization_rename",
    ),
    path("settings/tokens/create", settings_views.token_create, name="token_create"),
    path("settings/tokens/<int:token_id>/revoke", settings_views.token_revoke, name="token_revoke"),
    path("members/", member_views.members, name="members"),
    path("members/invite", member_views.member_invite, name="member_invite"),
    path("members/<int:membership_id>/role", member_views.member_role, name="member_role"),
    path("members/<int:membership_id>/remove", member_views.member_remove, name="member_remove"),
    path(
        "members/invitations/<int:invitation_id>/withdraw",
        member_views.invitation_withdraw,
        name="invitation_withdraw",
    ),
    path("invitations/<str:token>/", member_views.invitation_accept, name="invitation_accept"),
]
