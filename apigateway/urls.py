"""The apigateway app's Django URLs: the public models page. /v1 is not here: nexeon.asgi
and apigateway.server hand it to the gateway's own ASGI app (apigateway.app)."""

from django.urls import path

from apigateway import views

urlpatterns = [
    path("models/", views.models_page, name="models"),
]
