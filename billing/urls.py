"""The billing page's routes (buy credits, Stripe Checkout's return pages, the history as
CSV) and Stripe's webhook."""

from django.urls import path

from billing import views

urlpatterns = [
    path("billing/", views.billing_page, name="billing"),
    path("billing/success/", views.checkout_success, name="billing_success"),
    path("billing/cancelled/", views.checkout_cancelled, name="billing_cancelled"),
    path("billing/history.csv", views.history_csv, name="billing_history_csv"),
    path("billing/stripe/webhook/", views.stripe_webhook, name="stripe_webhook"),
]
