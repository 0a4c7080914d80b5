"""bench/ stays runnable: every script parses, every name it imports from the project
exists, and the comparison harness runs end to end in seconds (a fake upstream measured
directly and through a second fake standing in for a gateway, streaming only, so no wrk).
`make bench` itself takes minutes and is not part of the suite."""

from __future__ import annotations

import ast
import importlib
import importlib.util
import json
import py_compile
import subprocess
import sys

from tests.support import PROJECT_DIR, free_port

BENCH = PROJECT_DIR / "bench"
PROJECT_PACKAGES = {"accounts", "apigateway", "billing", "credit", "nexeon", "usage"}


def test_every_bench_script_compiles():
    scripts = sorted(BENCH.rglob("*.py"))
    assert len(scripts) >= 5
    for script in scripts:
        py_compile.compile(str(script), doraise=True)
    for shell in sorted(BENCH.rglob("*.sh")):
        subprocess.run(["bash", "-n", str(shell)], check=True)


def test_every_project_name_a_bench_script_imports_exists():
    missing = []
    for script in sorted(BENCH.rglob("*.py")):
        for node in ast.walk(ast.parse(script.read_text(), str(script))):
            if not (isinstance(node, ast.ImportFrom) and node.module and not node.level):
                continue
            if node.module.split(".")[0] not in PROJECT_PACKAGES:
                continue
            module = importlib.import_module(node.module)
            missing += [
                f"{script.relative_to(PROJECT_DIR)}: {node.module}.{alias.name}"
                for alias in node.names
                if not hasattr(module, alias.name)
                and importlib.util.find_spec(f"{node.module}.{alias.name}") is None
            ]
    assert missing == []


def test_compare_harness_runs_and_prints_the_table(tmp_path):
    upstream, target = free_port(), free_port()
    fake = f"{sys.executable} {BENCH / 'compare' / 'fake_upstream.py'} --port {{port}}"
    result = subprocess.run(
        [
            sys.executable,
            str(BENCH / "compare" / "compare.py"),
            "--no-litellm",
            "--workers",
            "1",
            "--latencies",
            "0",
            "--conc",
            "1",
            "--scenarios",
            "stream",
            "--duration",
            "1",
            "--warmup",
            "0",
            "--prime",
            "0",
            "--quiet-wait",
            "0",
            "--upstream-port",
            str(upstream),
            "--target",
            f"http://127.0.0.1:{target}",
            "--target-name",
            "stand-in",
            "--target-cmd",
            fake,
            "--out",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=PROJECT_DIR,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    rows = [line for line in result.stdout.splitlines() if line.startswith("| 0 ms | stream")]
    assert [row.split(" | ")[1] for row in rows] == ["stream-ttft", "stream-total"]
    cells = json.loads((tmp_path / "results.json").read_text())["results"]
    assert sorted(cell["column"] for cell in cells) == ["direct", "stand-in"]
    for cell in cells:  # both really served whole streams, none failed
        assert cell["requests"] > 50 and cell["errors"] == 0, cell
