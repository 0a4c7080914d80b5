"""The credit core: every piece of money state that changes on a call — balances, holds,
request and token windows, monthly spend counters, admission leases and the usage queue.

It has one interface (`store.CreditStore`) with two implementations, Redis
(`redis_store`) for production and process memory (`memory_store`) for the embedded
default, checked against each other on generated schedules. Its Redis key names are in
`keys` (sharded by organization, so that each script touches one Redis Cluster slot), its
Lua scripts in `lua/`; `cluster` routes the hot path's commands over a Redis Cluster. It
imports nothing of the project's apps: the gateway calls it on the hot path, billing (the
ledger's one writer) tells it about credits booked, and the usage pipeline consumes its
queue.
"""
