"""The REST API's routes, under /api/: organizations, their members, keys and usage; the
OpenAPI schema and its reference page."""

from django.urls import path
from drf_spectacular.views import SpectacularAPIView

from accounts.api import views
from accounts.api.redoc import RedocPage

urlpatterns = [
    path("organizations/", views.OrganizationList.as_view(), name="api-organizations"),
    path("organizations/<int:organization_id>/members/", views.MemberList.as_view()),
    path("organizations/<int:organization_id>/keys/", views.KeyList.as_view()),
    path("organizations/<int:organization_id>/keys/<int:key_id>/", views.KeyDetail.as_view()),
    path(
        "organizations/<int:organization_id>/keys/<int:key_id>/revoke/",
        views.KeyRevoke.as_view(),
    ),
    path("organizations/<int:organization_id>/usage/", views.Usage.as_view()),
    path("schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("docs/", RedocPage.as_view(url_name="api-schema"), name="api-docs"),
]
