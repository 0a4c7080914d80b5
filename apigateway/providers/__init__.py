"""Provider adapters, one per wire format: `openai` (OpenAI, Azure and the
OpenAI-compatible APIs), `anthropic` and `gemini`, behind the interface in `base`.
`options` holds what differs between providers that share a wire format, `reasoning` the
reasoning and prompt-caching fields every adapter reads. Pure: `apigateway.http` sends
what they build.
"""
