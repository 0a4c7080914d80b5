"""The circuit breaker and the attempt plan: pure logic, a fake clock, no network."""

from __future__ import annotations

import logging

import pytest

from apigateway.breaker import Breakers
from apigateway.http import AttemptPlan, backoff


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


def test_it_opens_after_the_threshold_of_consecutive_failures_and_rests(clock):
    breakers = Breakers(failures=3, rest_seconds=30, clock=clock)
    for _ in range(2):
        breakers.failure("a")
    breakers.success("a")  # not consecutive: counting starts again
    for _ in range(2):
        breakers.failure("a")
    assert breakers.wait("a") == 0 and breakers.acquire("a")
    breakers.failure("a")
    assert breakers.wait("a") == 30 and not breakers.acquire("a")
    clock.now += 29.5
    assert breakers.wait("a") == pytest.approx(0.5) and not breakers.acquire("a")
    assert breakers.acquire("b"), "deployments rest independently"


def test_after_the_rest_one_trial_goes_through_and_its_failure_rests_it_again(clock):
    breakers = Breakers(failures=1, rest_seconds=10, clock=clock)
    breakers.failure("a")
    clock.now += 10
    assert breakers.acquire("a")  # the trial
    assert not breakers.acquire("a"), "only one trial at a time"
    assert breakers.wait("a") > 0
    breakers.failure("a")
    assert breakers.wait("a") == 10
    clock.now += 10
    assert breakers.acquire("a")
    breakers.success("a")
    assert all(breakers.acquire("a") for _ in range(3)), "closed again"
    breakers.failure("a")
    assert breakers.wait("a") == 10, "a closed breaker counts failures from zero"


def test_a_trial_that_ends_without_an_outcome_frees_the_slot(clock):
    breakers = Breakers(failures=1, rest_seconds=10, clock=clock)
    breakers.failure("a")
    clock.now += 10
    assert breakers.acquire("a")
    breakers.release("a")  # the caller left
    assert breakers.acquire("a")
    # a trial that never reports is given up after another rest period
    clock.now += 10
    assert breakers.acquire("a")


def test_retry_after_is_when_the_first_deployment_wakes(clock):
    breakers = Breakers(failures=1, rest_seconds=30, clock=clock)
    breakers.failure("a")
    clock.now += 20
    breakers.failure("b")
    assert breakers.retry_after(["a", "b"]) == 10
    clock.now += 9.5
    assert breakers.retry_after(["a", "b"]) == 1  # rounded up, never 0


def test_thresholds_come_from_the_settings_at_each_use(clock, settings):
    breakers = Breakers(clock=clock)
    settings.GATEWAY_BREAKER_FAILURES = 2
    settings.GATEWAY_BREAKER_REST_SECONDS = 7
    breakers.failure("a")
    assert breakers.wait("a") == 0
    breakers.failure("a")
    assert breakers.wait("a") == 7


def test_transitions_are_logged_by_deployment_name(clock, caplog):
    caplog.set_level(logging.INFO, logger="apigateway.breaker")
    breakers = Breakers(failures=2, rest_seconds=5, clock=clock)
    breakers.failure("openai/gpt-4o")
    assert not caplog.records
    breakers.failure("openai/gpt-4o")
    clock.now += 5
    breakers.acquire("openai/gpt-4o")
    breakers.failure("openai/gpt-4o")
    clock.now += 5
    breakers.acquire("openai/gpt-4o")
    breakers.success("openai/gpt-4o")
    messages = [record.getMessage() for record in caplog.records]
    assert messages == [
        "deployment openai/gpt-4o: circuit opened after 2 consecutive failures, resting 5s",
        "deployment openai/gpt-4o: half-open, one trial call let through",
        "deployment openai/gpt-4o: failed again, circuit re-opened for 5s",
        "deployment openai/gpt-4o: half-open, one trial call let through",
        "deployment openai/gpt-4o: recovered, circuit closed",
    ]


def steps(plan: AttemptPlan) -> list[tuple[int, float]]:
    found = []
    while (step := plan.next()) is not None:
        found.append(step)
    return found


def test_one_deployment_is_tried_once_and_retried_with_backoff(clock):
    plan = AttemptPlan(["a"], 2, Breakers(failures=99, clock=clock))
    assert steps(plan) == [(0, 0.0), (0, 0.2), (0, 0.4)]


def test_fallbacks_come_at_once_and_the_round_again_waits(clock):
    plan = AttemptPlan(["a", "b", "c"], 2, Breakers(failures=99, clock=clock))
    assert steps(plan) == [(0, 0.0), (1, 0.0), (2, 0.0), (0, 0.2), (1, 0.2)]
    assert steps(AttemptPlan(["a", "b"], 0, Breakers(clock=clock))) == [(0, 0.0), (1, 0.0)]


def test_the_providers_retry_after_is_honoured_up_to_two_seconds(clock):
    plan = AttemptPlan(["a", "b"], 2, Breakers(failures=99, clock=clock))
    assert plan.next() == (0, 0.0)
    plan.answered(0, "1.5")
    assert plan.next() == (1, 0.0)  # switching deployments does not wait
    plan.answered(1, "30")
    assert plan.next() == (0, 1.5)
    assert plan.next() == (1, 2.0)
    assert backoff("garbage", 3) == 0.8
    assert backoff("nan", 1) == backoff("inf", 1) == 2.0 and backoff("-9", 1) == 0.2


def test_resting_and_dropped_deployments_are_passed_over(clock):
    breakers = Breakers(failures=1, rest_seconds=30, clock=clock)
    breakers.failure("b")
    plan = AttemptPlan(["a", "b", "c"], 1, breakers)
    plan.drop(2)
    # b rests and c cannot take the request: a alone, at most 1 + retries times
    assert steps(plan) == [(0, 0.0), (0, 0.2)]


def test_a_deployment_that_opens_during_the_call_is_not_tried_again(clock):
    breakers = Breakers(failures=1, rest_seconds=30, clock=clock)
    plan = AttemptPlan(["a", "b"], 2, breakers)
    assert plan.next() == (0, 0.0)
    breakers.failure("a")
    assert plan.next() == (1, 0.0)
    assert plan.next() == (1, 0.2)


def test_nothing_to_try_when_every_deployment_rests(clock):
    breakers = Breakers(failures=1, rest_seconds=30, clock=clock)
    breakers.failure("a")
    breakers.failure("b")
    assert AttemptPlan(["a", "b"], 2, breakers).next() is None
    clock.now += 30
    assert AttemptPlan(["a", "b"], 2, breakers).next() == (0, 0.0)
