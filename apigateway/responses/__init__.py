"""OpenAI's Responses API (`POST /v1/responses`), served statelessly.

`request` checks a Responses request and translates it to the chat body every call is
sized, reserved and settled by; `answer` turns chat answers and chunks back into a
Response and its streaming events; `passthrough` relays the Responses API of providers
that have it; `surface` ties them to the relay.
"""
