"""The usage page's URLs: the page and its CSV export (the live feed's WebSocket route is in
usage/routing.py, the operator's /metrics in nexeon/urls.py)."""

from django.urls import path

from usage import views

urlpatterns = [
    path("usage/", views.usage_page, name="usage"),
    path("usage/requests.csv", views.usage_requests_csv, name="usage_requests_csv"),
]
