"""Anthropic's Messages API (POST /v1/messages and /v1/messages/count_tokens): passed
through to Anthropic for Claude deployments, translated to and from chat completions for
every other family (surface.py)."""
