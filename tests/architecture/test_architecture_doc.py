"""docs/architecture.md stays true: every module and folder its map names exists in the
package it is listed under, every file path it cites exists, and every `module.function`
of the call path is a function of the gateway (or a Celery task's name)."""

from __future__ import annotations

import importlib
import re

import pytest

from tests.support import PROJECT_DIR

DOCUMENT = (PROJECT_DIR / "docs" / "architecture.md").read_text()
MAP = DOCUMENT.split("## Map", 1)[1].split("```")[1]
NAMED_IN_MAP = re.compile(r"\b([a-z_]+(?:\.py|\.json|/))")
CITED_PATH = re.compile(r"`((?:[a-z_]+/)+[a-z_]+\.(?:py|lua|json|md))`")
CALL_PATH = DOCUMENT.split("## The path of a call", 1)[1].split("\n## ", 1)[0]
DOTTED = re.compile(r"`([a-z_]+)\.([a-z_]+)`")


def named_in_map() -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    package = ""
    for line in MAP.splitlines():
        head = re.match(r"^([a-z]+)/\s", line)
        if head:
            package = head[1]
            line = line[len(head[0]) :]
        if not (PROJECT_DIR / package / "__init__.py").exists():
            continue  # (templates/, static/: folders, not packages)
        found += [(package, name) for name in NAMED_IN_MAP.findall(line)]
    return found


@pytest.mark.parametrize(("package", "name"), named_in_map())
def test_each_module_the_map_names_exists_where_it_says(package, name):
    assert (PROJECT_DIR / package / name).exists(), f"{package}/{name}"


def test_the_map_lists_every_app():
    packages = {line.split("/")[0] for line in MAP.splitlines() if re.match(r"^[a-z]+/", line)}
    assert {"nexeon", "accounts", "billing", "credit", "apigateway", "usage"} <= packages


@pytest.mark.parametrize("path", sorted(set(CITED_PATH.findall(DOCUMENT))))
def test_each_cited_file_exists(path):
    assert (PROJECT_DIR / path).exists(), path


@pytest.mark.parametrize(
    ("module", "name"),
    sorted({(module, name) for module, name in DOTTED.findall(CALL_PATH) if name != "py"}),
)
def test_each_step_of_the_call_path_is_a_gateway_function_or_a_task(module, name):
    if (PROJECT_DIR / "apigateway" / f"{module}.py").exists():
        found = importlib.import_module(f"apigateway.{module}")
        assert callable(getattr(found, name, None)), f"apigateway.{module}.{name}"
    else:
        from nexeon.celery import app

        app.loader.import_default_modules()
        assert f"{module}.{name}" in app.tasks
