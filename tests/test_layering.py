"""Keep the arrows of STYLE.md honest: sensor → gateway → rules → alerts / storage → reports.

Each package may import only the packages listed for it; only one module talks to the MQTT
library (plus the embedded demo broker), and only storage/ talks to databases.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
OURS = {"gateway", "rules", "alerts", "storage", "reports", "simulators", "board"}
ALLOWED: dict[str, set[str]] = {
    "rules": {"rules"},
    "alerts": {"alerts", "rules"},
    "storage": {"storage", "rules", "alerts"},
    "reports": {"reports", "storage", "rules", "alerts"},
    "simulators": {"simulators", "rules"},
    "gateway": OURS,
    "board": {"board", "gateway", "rules", "alerts", "storage", "reports"},  # its own process, beside the gateway
}
#: Third-party libraries rules/ may use (STYLE.md: numpy and the standard library).
RULES_THIRD_PARTY = {"numpy"}
MQTT_LIBS = {"paho", "aiomqtt"}
MQTT_MODULES = {"gateway/mqtt.py"}
BROKER_MODULES = {"gateway/broker.py"}


def imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def sources() -> list[Path]:
    return sorted(p for pkg in OURS for p in (ROOT / pkg).rglob("*.py"))


@pytest.mark.parametrize("path", sources(), ids=lambda p: str(p.relative_to(ROOT)))
def test_imports_follow_the_layers(path: Path) -> None:
    rel = path.relative_to(ROOT).as_posix()
    pkg = rel.split("/")[0]
    for name in imports(path):
        top = name.split(".")[0]
        if top in OURS:
            allowed = ALLOWED[pkg] | ({"gateway"} if name == "gateway.codec" and pkg == "simulators" else set())
            assert top in allowed, f"{rel} imports {name}: {pkg}/ may import only {sorted(allowed)}"
        if top in MQTT_LIBS:
            assert rel in MQTT_MODULES, f"{rel} imports {name}: only {MQTT_MODULES} talks to MQTT"
        if top == "amqtt":
            assert rel in BROKER_MODULES, f"{rel} imports amqtt: only the demo broker module may"
        if top == "sqlite3":
            assert pkg == "storage", f"{rel} imports sqlite3: only storage/ talks to databases"
        if top == "influxdb_client":
            assert pkg == "storage", f"{rel} imports influxdb_client: only storage/ talks to InfluxDB"
        if pkg == "rules" and top not in OURS:
            import sys

            assert top in RULES_THIRD_PARTY or top in sys.stdlib_module_names or top == "__future__", (
                f"{rel} imports {name}: rules/ is pure (numpy and the standard library only)"
            )


def test_the_layer_check_sees_every_package() -> None:
    seen = {p.relative_to(ROOT).parts[0] for p in sources()}
    assert seen == OURS
