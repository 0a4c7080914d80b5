"""The official openai Node SDK parses the gateway's answers too (tests/node/)."""

import json
import os
import subprocess

from tests.support import PROJECT_DIR


def test_the_node_sdk_parses_models_chat_stream_embeddings_and_errors(tenant):
    result = subprocess.run(
        ["node", "sdk_check.mjs"],
        cwd=PROJECT_DIR / "tests" / "node",
        env={**os.environ, "NEXEON_BASE_URL": f"{tenant.url}/v1", "NEXEON_KEY": tenant.key},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert "gpt-4o" in out["models"]
    assert out["chat"] == "Echo: Hello from Node"
    assert out["chat_usage"] == 7
    assert out["stream"] == "Echo: Hello from Node"
    assert (out["stream_ids"], out["stream_usage"]) == (1, 4)
    assert out["embedding_length"] == 4
    assert (out["error_status"], out["error_param"]) == (400, "temperature")
