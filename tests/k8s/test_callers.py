"""docs/CONFIG.md against services/catalogue.toml, the one list of services and of who calls what.

The services enforce the catalogue per RPC (generated into aula_runtime::spec); the chart's
catalog and NetworkPolicies are tested against CONFIG.md's Services table (test_network.py,
test_render.py); this closes the loop: both CONFIG.md tables are the catalogue's."""

from __future__ import annotations

import tomllib

from conftest import CONFIG_MD, ROOT, SERVICES

CATALOGUE = tomllib.loads((ROOT / "services" / "catalogue.toml").read_text())["service"]


def test_services_table_is_the_catalogue():
    assert list(SERVICES) == [s["name"] for s in CATALOGUE], "same services, same order"
    for s in CATALOGUE:
        row = SERVICES[s["name"]]
        assert row.port == s["port"] and row.metrics_port == s["metrics_port"], s["name"]
        assert row.grpc_service == s.get("grpc"), s["name"]
        calls = {callee["name"] for callee in CATALOGUE if s["name"] in callee.get("callers", {})}
        assert set(row.calls) == calls, f"{s['name']} calls {sorted(calls)} in services/catalogue.toml"


def caller_table() -> set[tuple[str, str, frozenset[str]]]:
    lines = CONFIG_MD.read_text().splitlines()
    start = lines.index("### Who may call what (with client authentication)")
    rows = set()
    for line in lines[start:]:
        if not line.startswith("|"):
            if rows:
                break
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if cells[0] in ("service", "---"):
            continue
        rows.add((cells[0], cells[1], frozenset(c.strip() for c in cells[2].split(","))))
    return rows


def test_caller_table_is_the_catalogue():
    want = set()
    for s in CATALOGUE:
        rpcs: dict[str, set[str]] = {}
        for caller, names in s.get("callers", {}).items():
            for rpc in names:
                rpcs.setdefault(rpc, set()).add(caller)
        want |= {(s["name"], rpc, frozenset(c)) for rpc, c in rpcs.items()}
    assert caller_table() == want
