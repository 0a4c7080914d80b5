from django.urls import path

from accounts import views

urlpatterns = [
    path("docs/", views.api_docs, name="api_docs"),
    path("keys/", views.keys, name="keys"),
    path("keys/create", views.key_create, name="key_create"),
    path("keys/<int:key_id>/revoke", views.key_revoke, name="key_revoke"),
    path("keys/<int:key_id>/rename", views.key_rename, name="key_rename"),
    path("organizations/switch", views.organization_switch, name="organization_switch"),
]
