"""Dependencies are chosen, not declared: every runtime dependency in pyproject.toml is imported by
the product (or is a documented runtime need of one that is), and every import is declared."""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
#: distribution name → import name, where they differ
IMPORT_NAME = {"pydantic-settings": "pydantic_settings", "paho-mqtt": "paho", "prometheus-client": "prometheus_client",
               "argon2-cffi": "argon2"}  # fmt: skip
#: needed at run time by a library we import, never imported by our code (the reason is the test)
INDIRECT = {
    "itsdangerous": "starlette.middleware.sessions signs the board's session cookies with it",
    "python-multipart": "starlette parses the board's sign-in form with it",
}


def declared() -> list[str]:
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    return [re.split(r"[<>=!~\[ ;]", d, maxsplit=1)[0].lower() for d in deps]


def imported() -> set[str]:
    found: set[str] = set()
    for pkg in PACKAGES:
        for path in (ROOT / pkg).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if isinstance(node, ast.Import):
                    found |= {a.name.split(".")[0] for a in node.names}
                elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                    found.add(node.module.split(".")[0])
    return found


def test_every_declared_dependency_is_used() -> None:
    used = imported()
    unused = [d for d in declared() if IMPORT_NAME.get(d, d) not in used and d not in INDIRECT]
    assert not unused, f"declared in pyproject.toml but imported by no product module: {unused}"


def test_indirect_dependencies_are_really_needed() -> None:
    import starlette.formparsers as fp
    import starlette.middleware.sessions as sessions

    assert "itsdangerous" in sessions.__dict__ and fp.parse_options_header is not None


def test_every_third_party_import_is_declared() -> None:
    ours = set(PACKAGES) | {"tests"}
    names = {IMPORT_NAME.get(d, d).replace("-", "_") for d in declared()}
    third = {m for m in imported() - ours if m not in sys.stdlib_module_names and m != "__future__"}
    undeclared = sorted(third - names)
    assert not undeclared, f"imported but not declared as dependencies: {undeclared}"
