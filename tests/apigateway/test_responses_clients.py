"""The clients that speak the Responses API, against the gateway: the openai-agents SDK (its
default model is the Responses API) and LangChain's ChatOpenAI, with the Responses API and
without it (chat completions)."""

from __future__ import annotations

import asyncio

import pytest
from agents import (
    Agent,
    Runner,
    function_tool,
    set_default_openai_api,
    set_default_openai_client,
    set_tracing_disabled,
)
from langchain_core.messages import HumanMessage, ToolMessage
from langchain_core.tools import tool
from langchain_openai import ChatOpenAI
from openai import AsyncOpenAI

MODELS = ["gpt-4o", "claude-3-5-sonnet", "mistral-large-latest", "gemini-2.5-flash"]


@pytest.fixture
def agents_client(tenant):
    set_tracing_disabled(True)
    set_default_openai_api("responses")
    client = AsyncOpenAI(base_url=f"{tenant.url}/v1", api_key=tenant.key, max_retries=0)
    set_default_openai_client(client, use_for_tracing=False)
    return client


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("streamed", [False, True])
def test_an_agent_calls_a_function_tool_through_the_responses_api(agents_client, model, streamed):
    calls: list[str] = []

    @function_tool
    def get_weather(city: str) -> str:
        """Weather in a city."""
        calls.append(city)
        return "sunny"

    agent = Agent(name="Forecaster", instructions="Use the tool.", model=model, tools=[get_weather])
    question = "What is the weather in Paris?"

    async def run() -> str:
        if not streamed:
            return (await Runner.run(agent, question)).final_output
        result = Runner.run_streamed(agent, question)
        async for _ in result.stream_events():
            pass
        return result.final_output

    assert asyncio.run(run()) == "The tool said: sunny"
    assert calls == ["Paris"]


@tool
def get_weather(city: str) -> str:
    """Weather in a city."""
    return "sunny"


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("responses_api", [True, False])
def test_langchain_chat_openai(tenant, model, responses_api):
    chat = ChatOpenAI(
        model=model,
        base_url=f"{tenant.url}/v1",
        api_key=tenant.key,
        use_responses_api=responses_api,
        max_retries=0,
    )
    answer = chat.invoke("Hello there!")
    assert answer.text == "Echo: Hello there!"
    assert answer.usage_metadata["output_tokens"] == 3
    streamed = "".join(chunk.text for chunk in chat.stream("one two"))
    assert streamed == "Echo: one two"
    with_tools = chat.bind_tools([get_weather])
    question = HumanMessage("What is the weather in Paris?")
    first = with_tools.invoke([question])
    (call,) = first.tool_calls
    assert (call["name"], call["args"]) == ("get_weather", {"city": "Paris"})
    result = ToolMessage("sunny", tool_call_id=call["id"])
    second = with_tools.invoke([question, first, result])
    assert second.text == "The tool said: sunny"
