from django.urls import path

from usage import views

urlpatterns = [
    path("usage/", views.usage_page, name="usage"),
    path("usage/requests.csv", views.usage_requests_csv, name="usage_requests_csv"),
]
