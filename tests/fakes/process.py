"""A fake provider in a process of its own, so that a test can SIGKILL it mid-call and
start it again on the same port: `python -m tests.fakes.process openai PORT API_KEY`."""

from __future__ import annotations

import subprocess
import sys

import uvicorn

from tests.support import PROJECT_DIR, wait_for_http


def start(family: str, port: int, api_key: str, latency: float = 0.0) -> subprocess.Popen:
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.fakes.process", family, str(port), api_key, str(latency)],
        cwd=PROJECT_DIR,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    wait_for_http(f"http://127.0.0.1:{port}/", process=process)  # any answer will do
    return process


def main() -> None:
    family, port, api_key, latency = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
    if family != "openai":
        raise SystemExit(f"no process runner for {family}")
    from tests.fakes.openai import FakeOpenAI

    fake = FakeOpenAI(api_key=api_key)
    fake.latency = float(latency)
    uvicorn.run(fake, host="127.0.0.1", port=port, log_level="warning", lifespan="off")


if __name__ == "__main__":
    main()
