"""apigateway/server.py builds on uvicorn's httptools protocol, which is not uvicorn's public
API: it subclasses HttpToolsProtocol, reads its attributes, calls its private
`_start_asgi_task`, and puts its own exchange where uvicorn expects a RequestResponseCycle.
pyproject.toml pins uvicorn exactly; these tests make an upgrade fail loudly, each message
naming the internal that changed, so that server.py is re-read against the new code before
the pin moves.

What server.py reads is found in server.py's own code (every `self.x`, `self.parser.x`,
`self.flow.x`, `self.server_state.x`), so a new use is checked without editing this file.
"""

from __future__ import annotations

import ast
import hashlib
import inspect
import re
import textwrap
import tomllib
from importlib.metadata import version
from pathlib import Path

import httptools
from uvicorn.protocols.http import flow_control, httptools_impl
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle
from uvicorn.server import ServerState

from apigateway import server
from apigateway.server import GatewayExchange, GatewayHttpProtocol

ROOT = Path(__file__).resolve().parents[2]
UPGRADE_ADVICE = (
    "server.py's GatewayHttpProtocol and GatewayExchange depend on it: read the new uvicorn "
    "code against them, adapt them, then update tests/apigateway/test_uvicorn_internals.py."
)

# SHA-256 (16 hex digits) of the source of every function of the two uvicorn classes that
# server.py stands in for or subclasses (uvicorn 0.54.0). GatewayExchange mirrors
# RequestResponseCycle's send/receive/run_asgi and GatewayHttpProtocol.on_headers_complete
# mirrors uvicorn's, so a change there, even a fix, must be looked at.
FINGERPRINTS = {
    "HttpToolsProtocol.__init__": "264f2f06759670d4",
    "HttpToolsProtocol._get_upgrade": "a71e9b242ebb5b0f",
    "HttpToolsProtocol._should_upgrade": "ae8ade68aa39944a",
    "HttpToolsProtocol._should_upgrade_to_ws": "bfed40b58a2b67f8",
    "HttpToolsProtocol._start_asgi_task": "2ab8b185c1a9b25b",
    "HttpToolsProtocol._unset_keepalive_if_required": "58f4ffce604d92dd",
    "HttpToolsProtocol._unsupported_upgrade_warning": "a5d94889e343914e",
    "HttpToolsProtocol.connection_lost": "21bb5222b35990e7",
    "HttpToolsProtocol.connection_made": "ba1915817ccf6c1b",
    "HttpToolsProtocol.data_received": "02c2572f1df55907",
    "HttpToolsProtocol.eof_received": "cf1db74cbefe2709",
    "HttpToolsProtocol.handle_websocket_upgrade": "f5384e926c8c43c6",
    "HttpToolsProtocol.on_body": "415b4cef19fba083",
    "HttpToolsProtocol.on_header": "374f1e380c062750",
    "HttpToolsProtocol.on_headers_complete": "7e259152e5aade71",
    "HttpToolsProtocol.on_message_begin": "0efab6f9456c4987",
    "HttpToolsProtocol.on_message_complete": "377f9122ee6f3ab8",
    "HttpToolsProtocol.on_response_complete": "5684fd801d0683ac",
    "HttpToolsProtocol.on_url": "4670fe11c5fd5028",
    "HttpToolsProtocol.pause_writing": "0d1d5ff822175905",
    "HttpToolsProtocol.resume_writing": "89f3ffd1fdaf75fc",
    "HttpToolsProtocol.send_400_response": "0b0d3ace8d263788",
    "HttpToolsProtocol.shutdown": "4822ef10fa982b12",
    "HttpToolsProtocol.timeout_keep_alive_handler": "2127de00e7f6b118",
    "RequestResponseCycle.__init__": "459bebd3022b64c2",
    "RequestResponseCycle.receive": "817bd782de41bd0a",
    "RequestResponseCycle.run_asgi": "c3a6430de81255c9",
    "RequestResponseCycle.send": "cfc84491029529db",
    "RequestResponseCycle.send_500_response": "4032dec73e7eec34",
}


def fingerprints(*classes: type) -> dict[str, str]:
    """name -> SHA-256 of its source (16 hex digits), for each function these classes define."""
    found = {}
    for cls in classes:
        for name, member in vars(cls).items():
            if inspect.isfunction(member):
                source = textwrap.dedent(inspect.getsource(member))
                digest = hashlib.sha256(source.encode()).hexdigest()[:16]
                found[f"{cls.__name__}.{name}"] = digest
    return found


def changes(expected: dict[str, str], found: dict[str, str]) -> list[str]:
    """One line per function that changed, appeared or went away."""
    lines = []
    for name in sorted(expected.keys() | found.keys()):
        if name not in expected:
            lines.append(f"{name}: new in uvicorn")
        elif name not in found:
            lines.append(f"{name}: gone from uvicorn")
        elif expected[name] != found[name]:
            lines.append(f"{name}: changed")
    return lines


def class_ast(cls: type) -> ast.ClassDef:
    tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    node = tree.body[0]
    assert isinstance(node, ast.ClassDef)
    return node


def attributes_read(cls: type, on: str) -> set[str]:
    """Names `x` of `<on>.x` in a class of ours, where <on> is a dotted path like
    self.parser (called or not)."""
    names = set()
    for node in ast.walk(class_ast(cls)):
        if isinstance(node, ast.Attribute) and ast.unparse(node.value) == on:
            names.add(node.attr)
    return names


def attributes_assigned_to_self(cls: type) -> set[str]:
    """Names `x` of every `self.x = ...` (or `self.x: T = ...`) in a class's methods."""
    names = set()
    for node in ast.walk(class_ast(cls)):
        targets = (
            node.targets
            if isinstance(node, ast.Assign)
            else [node.target]
            if isinstance(node, ast.AnnAssign | ast.AugAssign)
            else []
        )
        for target in targets:
            for sub in ast.walk(target):
                if isinstance(sub, ast.Attribute) and ast.unparse(sub.value) == "self":
                    names.add(sub.attr)
    return names


def test_uvicorn_is_the_version_pinned_in_pyproject_and_the_locks():
    dependencies = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    pins = [d for d in dependencies if re.match(r"uvicorn\b", d)]
    assert len(pins) == 1 and re.fullmatch(r"uvicorn==\d+(\.\d+)+", pins[0]), (
        f"pyproject.toml must pin uvicorn exactly (uvicorn==X.Y.Z), not {pins}: {UPGRADE_ADVICE}"
    )
    pinned = pins[0].partition("==")[2]
    assert version("uvicorn") == pinned, (
        f"uvicorn {version('uvicorn')} is installed, pyproject.toml pins {pinned}"
    )
    for lock in ("requirements.lock", "requirements-dev.lock"):
        assert f"\nuvicorn=={pinned} " in (ROOT / lock).read_text(), f"{lock} is not re-pinned"


def test_the_uvicorn_code_server_py_stands_in_for_is_unchanged():
    changed = changes(FINGERPRINTS, fingerprints(HttpToolsProtocol, RequestResponseCycle))
    assert not changed, f"uvicorn {version('uvicorn')} changed: {changed}. {UPGRADE_ADVICE}"


def test_a_change_in_uvicorn_is_named():
    """The check above on a uvicorn that is not the pinned one: each difference is named."""

    class HttpToolsProtocol:
        def on_headers_complete(self):
            return "changed"

        def on_trailers(self):
            return "new"

    expected = {
        "HttpToolsProtocol.on_headers_complete": FINGERPRINTS[
            "HttpToolsProtocol.on_headers_complete"
        ],
        "HttpToolsProtocol.on_body": FINGERPRINTS["HttpToolsProtocol.on_body"],
    }
    assert changes(expected, fingerprints(HttpToolsProtocol)) == [
        "HttpToolsProtocol.on_body: gone from uvicorn",
        "HttpToolsProtocol.on_headers_complete: changed",
        "HttpToolsProtocol.on_trailers: new in uvicorn",
    ]


def test_the_methods_server_py_overrides_or_calls_keep_their_signatures():
    expected = {
        "__init__": ["self", "config", "server_state", "app_state", "_loop"],
        "connection_lost": ["self", "exc"],
        "on_headers_complete": ["self"],
        "on_response_complete": ["self"],
        "_start_asgi_task": ["self", "cycle", "app"],
    }
    for name, parameters in expected.items():
        method = getattr(HttpToolsProtocol, name, None)
        assert method is not None, f"HttpToolsProtocol.{name} is gone. {UPGRADE_ADVICE}"
        found = list(inspect.signature(method).parameters)
        assert found == parameters, (
            f"HttpToolsProtocol.{name} now takes {found}, not {parameters}. {UPGRADE_ADVICE}"
        )
    assert inspect.iscoroutinefunction(flow_control.FlowControl.drain)


def test_the_protocol_still_has_every_attribute_server_py_reads():
    ours = set(vars(GatewayHttpProtocol)) | attributes_assigned_to_self(GatewayHttpProtocol)
    read = attributes_read(GatewayHttpProtocol, "self") - ours
    theirs = attributes_assigned_to_self(HttpToolsProtocol) | set(dir(HttpToolsProtocol))
    assert read, "server.py's protocol reads nothing of uvicorn's? The AST walk is wrong."
    missing = sorted(read - theirs)
    assert not missing, f"HttpToolsProtocol no longer has {missing}. {UPGRADE_ADVICE}"


def test_the_parser_flow_control_and_server_state_have_what_server_py_uses():
    uses = {
        "httptools.HttpRequestParser": (
            attributes_read(GatewayHttpProtocol, "parser"),
            set(dir(httptools.HttpRequestParser)),
        ),
        "FlowControl": (
            attributes_read(GatewayHttpProtocol, "self.flow")
            | attributes_read(GatewayExchange, "self.flow"),
            set(dir(flow_control.FlowControl))
            | attributes_assigned_to_self(flow_control.FlowControl),
        ),
        "ServerState": (
            attributes_read(GatewayHttpProtocol, "self.server_state"),
            set(dir(ServerState)) | attributes_assigned_to_self(ServerState),
        ),
    }
    for owner, (used, there) in uses.items():
        assert used, f"server.py uses nothing of {owner}? The AST walk is wrong."
        missing = sorted(used - there)
        assert not missing, f"uvicorn's {owner} no longer has {missing}. {UPGRADE_ADVICE}"


def test_the_exchange_has_every_cycle_attribute_uvicorns_protocol_touches():
    """GatewayExchange sits in `self.cycle` (and the pipeline), where uvicorn's own code
    reads and writes a RequestResponseCycle's attributes."""
    touched = attributes_read(HttpToolsProtocol, "self.cycle") | attributes_read(
        HttpToolsProtocol, "cycle"
    )
    assert touched, "uvicorn's protocol touches no cycle attribute? The AST walk is wrong."
    ours = set(GatewayExchange.__slots__) | set(dir(GatewayExchange))
    missing = sorted(touched - ours)
    assert not missing, (
        f"uvicorn's HttpToolsProtocol now uses cycle.{missing}, which GatewayExchange lacks. "
        f"{UPGRADE_ADVICE}"
    )


def test_status_lines_are_still_a_table_of_whole_status_lines():
    assert server.STATUS_LINE is httptools_impl.STATUS_LINE
    assert set(httptools_impl.STATUS_LINE) >= set(range(100, 600)), UPGRADE_ADVICE
    assert httptools_impl.STATUS_LINE[200] == b"HTTP/1.1 200 OK\r\n", UPGRADE_ADVICE
    assert httptools_impl.STATUS_LINE[429] == b"HTTP/1.1 429 Too Many Requests\r\n"
