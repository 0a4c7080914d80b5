from django.urls import path

from apigateway import views

urlpatterns = [
    path("models/", views.models_page, name="models"),
]
