"""docs/configuration.md names every environment variable the settings read, so that an
operator never has to read settings.py to learn one exists."""

from __future__ import annotations

import ast

from tests.support import PROJECT_DIR

SETTINGS = PROJECT_DIR / "nexeon" / "settings.py"
DOCUMENT = (PROJECT_DIR / "docs" / "configuration.md").read_text()
OWN_READERS = {"database", "flag", "env_decimal"}


def variables_read() -> set[str]:
    """The literal names passed to env.<type>(NAME, ...), read(env.<type>, NAME, ...) and
    nexeon.env's own readers (database, flag, env_decimal)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(SETTINGS.read_text())):
        if not isinstance(node, ast.Call):
            continue
        function = node.func
        reads_env = (
            isinstance(function, ast.Attribute)
            and isinstance(function.value, ast.Name)
            and function.value.id == "env"
        )
        position = 0 if reads_env else None
        if isinstance(function, ast.Name) and function.id == "read":
            position = 1
        elif isinstance(function, ast.Name) and function.id in OWN_READERS:
            position = 0
        if position is None or len(node.args) <= position:
            continue
        name = node.args[position]
        if isinstance(name, ast.Constant) and isinstance(name.value, str):
            found.add(name.value)
    return found


def test_the_settings_read_variables_this_test_can_see():
    assert {"SECRET_KEY", "DATABASE_URL", "REDIS_URL", "GATEWAY_BREAKER_FAILURES"} <= (
        variables_read()
    )


def test_every_variable_the_settings_read_is_documented():
    missing = sorted(name for name in variables_read() if f"`{name}" not in DOCUMENT)
    assert not missing, f"not in docs/configuration.md: {missing}"
