from django.urls import path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView

from accounts.api import views

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
    path("docs/", SpectacularRedocView.as_view(url_name="api-schema"), name="api-docs"),
]
