"""nexeon.loops and apigateway.ids: what they save (a system call per use) must not
cost correctness: the right loop after a loop ends or a fork, ids that never repeat, even
in a forked child. The loop tests run on the finder this Python uses and on the remembering
one (3.11's), whichever Python runs them."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from apigateway import ids
from nexeon.loops import ASKS_GETPID, remembered_running_loop, running_loop, spawn

BOTH_FINDERS = pytest.mark.parametrize(
    "find", [running_loop, remembered_running_loop], ids=["this-python", "remembered"]
)


@BOTH_FINDERS
def test_running_loop_is_the_loop_running_this_code_each_time(find):
    async def seen():
        return find(), find(), asyncio.get_running_loop()

    first = asyncio.run(seen())
    second = asyncio.run(seen())  # a new loop: the remembered one is not running any more
    assert first[0] is first[1] is first[2]
    assert second[0] is second[1] is second[2]
    assert second[0] is not first[0]


@BOTH_FINDERS
def test_running_loop_outside_a_loop_fails_as_asyncio_does(find):
    async def remember():
        find()

    asyncio.run(remember())  # (a loop was remembered, and has stopped)
    with pytest.raises(RuntimeError):
        find()


def test_spawn_runs_the_coroutine_as_a_task_on_the_running_loop():
    async def main():
        task = spawn(asyncio.sleep(0, result="done"))
        assert isinstance(task, asyncio.Task) and task.get_loop() is running_loop()
        return await task

    assert asyncio.run(main()) == "done"


# Python 3.12+ warns on a fork while other threads run (the suite's fake servers): the child
# here runs only its own loop and writes a file, taking no lock another thread could hold.
FORK_AMID_THREADS = pytest.mark.filterwarnings(
    "ignore:This process .* is multi-threaded, use of fork:DeprecationWarning"
)


def run_in_a_forked_child(check) -> int:
    """Fork from inside a running loop (the case asyncio's getpid() check exists for) and
    return the child's exit code: 0 if `check()` was true there."""

    async def parent() -> int:
        remembered_running_loop()  # remembered here, in the parent
        pid = os.fork()
        if pid == 0:  # the child: its copy of the parent's loop still says it runs
            try:
                code = 0 if check() else 1
            except BaseException:
                code = 2
            os._exit(code)
        _, status = os.waitpid(pid, 0)  # noqa: ASYNC222  (nothing else runs on this loop)
        return os.waitstatus_to_exitcode(status)

    return asyncio.run(parent())


@FORK_AMID_THREADS
@BOTH_FINDERS
def test_a_forked_child_running_its_own_loop_is_not_given_its_parents(find):
    def own_loop_seen() -> bool:
        async def child():
            return find() is asyncio.get_running_loop()

        return asyncio.new_event_loop().run_until_complete(child())

    assert run_in_a_forked_child(own_loop_seen) == 0


def test_a_thread_running_its_own_loop_is_not_given_another_threads():
    """Each thread remembers its own loop: two loops running at once in two threads."""
    both_running = threading.Barrier(2)
    seen: dict[str, bool] = {}

    def in_a_thread(name: str) -> None:
        async def main():
            remembered_running_loop()
            await asyncio.to_thread(both_running.wait, 10)
            seen[name] = remembered_running_loop() is asyncio.get_running_loop()

        asyncio.run(main())

    threads = [threading.Thread(target=in_a_thread, args=(n,)) for n in ("a", "b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(20)
    assert seen == {"a": True, "b": True}


ROOT = Path(__file__).resolve().parents[2]
GETPID_COUNT = textwrap.dedent(
    """
    import asyncio, os, sys
    from nexeon.loops import running_loop

    find = running_loop if sys.argv[1] == "running_loop" else asyncio.get_running_loop

    async def main():
        find()
        os.getppid()  # strace's marker: count from here
        for _ in range(1000):
            find()
        os.getppid()

    asyncio.run(main())
    """
)


def getpid_calls(finder: str, tmp_path) -> int:
    """How many getpid() system calls 1,000 calls of `finder` make, as strace counts them."""
    trace = tmp_path / f"{finder}.strace"
    subprocess.run(
        [
            "strace",
            "-e",
            "trace=getpid,getppid",
            "-o",
            str(trace),
            sys.executable,
            "-c",
            GETPID_COUNT,
            finder,
        ],
        check=True,
        timeout=60,
        cwd=ROOT,
    )
    lines = trace.read_text().splitlines()
    markers = [i for i, line in enumerate(lines) if line.startswith("getppid(")]
    return sum(line.startswith("getpid(") for line in lines[markers[0] : markers[1]])


def test_running_loop_makes_no_system_call_on_this_python(tmp_path):
    """The premise, checked on the Python that runs the tests: asyncio's own finder asks
    getpid() each time exactly where nexeon.loops says it does, and running_loop never."""
    assert getpid_calls("running_loop", tmp_path) == 0
    assert (getpid_calls("asyncio", tmp_path) >= 1000) == ASKS_GETPID


def test_ids_have_their_shapes_and_do_not_repeat():
    request_ids = {ids.request_id() for _ in range(10_000)}
    completion_ids = {ids.completion_id() for _ in range(10_000)}
    assert len(request_ids) == len(completion_ids) == 10_000
    assert all(re.fullmatch(r"req_[0-9a-f]{24}", i) for i in request_ids)
    assert all(re.fullmatch(r"chatcmpl-[0-9A-Za-z]{24}", i) for i in completion_ids)


@FORK_AMID_THREADS
def test_a_forked_child_does_not_repeat_its_parents_ids(tmp_path):
    """Without the reseed at fork, parent and child would draw the same sequence."""
    out = tmp_path / "child"

    def child_ids() -> bool:
        out.write_text(" ".join(ids.request_id() for _ in range(3)))
        return True

    assert run_in_a_forked_child(child_ids) == 0
    parents = [ids.request_id() for _ in range(3)]
    assert not set(parents) & set(out.read_text().split())


def test_making_an_id_asks_the_operating_system_nothing(monkeypatch):
    def no(*args):
        raise AssertionError("a system call for randomness")

    monkeypatch.setattr(os, "urandom", no)
    monkeypatch.setattr("secrets.randbits", no)
    ids.request_id()
    ids.completion_id()
