"""The /v1 API gateway: the hot path from a caller's key to a provider and back (app.py,
relay.py), with the credit reservation and settlement around each call (quota.py), and the
model catalog it routes by (catalog.py, routing.py). docs/architecture.md maps it.
"""
