"""The layers import downwards only: the gateway uses the credit core, billing and usage;
usage uses billing and the credit core; billing uses the credit core; the credit core uses
none of them. (Imports inside functions count too.)"""

from __future__ import annotations

import ast
import re
from pathlib import Path

from tests.support import PROJECT_DIR

LAYERS = ("apigateway", "usage", "billing", "credit")  # each may import those after it
KEY_NAME = re.compile(r"""["']nexeon:[a-z]""")  # a Redis key name written out


def imports_of(package: str) -> dict[str, set[str]]:
    """module path -> the layers it imports."""
    found: dict[str, set[str]] = {}
    for path in sorted((PROJECT_DIR / package).rglob("*.py")):
        if "migrations" in path.parts:
            continue
        names: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                names.add(node.module.split(".")[0])
        found[str(Path(path).relative_to(PROJECT_DIR))] = names & set(LAYERS)
    return found


def test_no_layer_imports_one_above_it():
    upward = []
    for rank, package in enumerate(LAYERS):
        above = set(LAYERS[:rank])
        for module, layers in imports_of(package).items():
            upward += [f"{module} imports {layer}" for layer in sorted(layers & above)]
    assert upward == []


def test_only_the_credit_core_names_redis_keys_or_writes_lua():
    """Every key name in credit/keys.py, every script in credit/lua/."""
    offenders = []
    for package in ("apigateway", "usage", "billing", "accounts", "nexeon"):
        for path in (PROJECT_DIR / package).rglob("*.py"):
            text = path.read_text()
            if KEY_NAME.search(text) or "redis.call(" in text:
                offenders.append(str(path.relative_to(PROJECT_DIR)))
    assert offenders == []
