"""observability/ checked without running anything but promtool and the dashboard generator."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

import contract
from promql import metric_names

OBS = contract.OBS
PROM = OBS / "prometheus"
GRAFANA = OBS / "grafana"
CONFIGS = ["prometheus.yml", "prometheus.local.yml"]


def promtool(*args: str, cwd: Path = PROM) -> subprocess.CompletedProcess:
    exe = shutil.which("promtool")
    if not exe:
        pytest.fail("promtool not found: apt-get install -y prometheus (scripts/test-observability.sh does)")
    return subprocess.run([exe, *args], cwd=cwd, capture_output=True, text=True, timeout=120)


def assert_ok(res: subprocess.CompletedProcess) -> None:
    assert res.returncode == 0, f"{' '.join(res.args)}\n{res.stdout}\n{res.stderr}"


def rule_files() -> list[Path]:
    return sorted((PROM / "rules").glob("*.yml"))


def rules() -> list[dict]:
    return [r for f in rule_files() for g in yaml.safe_load(f.read_text())["groups"] for r in g["rules"]]


def dashboards() -> dict[str, dict]:
    return {p.name: json.loads(p.read_text()) for p in sorted((GRAFANA / "dashboards").glob("*.json"))}


def variable_selector(variable: dict) -> str:
    """The PromQL inside a Grafana `label_values(<selector>, <label>)` variable query."""
    m = re.fullmatch(r"label_values\((.*),\s*(\w+)\)", variable["definition"])
    assert m, variable["definition"]
    return m.group(1)


def targets(dashboard: dict):
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            yield panel, target


# ------------------------------------------------------------------ Prometheus


@pytest.mark.parametrize("config", CONFIGS)
def test_promtool_check_config(config):
    res = promtool("check", "config", config)
    assert_ok(res)
    assert "rule files found" in res.stdout + res.stderr  # the rules were found and checked too


def test_promtool_check_rules():
    files = rule_files()
    assert {f.name for f in files} >= {"recording.yml", "alerts.yml"}
    assert_ok(promtool("check", "rules", *map(str, files)))


def test_promtool_test_rules():
    tests = sorted((PROM / "tests").glob("*.yml"))
    assert tests
    assert_ok(promtool("test", "rules", *map(str, tests)))


def test_every_alert_has_a_unit_test():
    tested = set()
    for f in (PROM / "tests").glob("*.yml"):
        for t in yaml.safe_load(f.read_text())["tests"]:
            tested |= {a["alertname"] for a in t.get("alert_rule_test", []) if a.get("exp_alerts")}
    alerts = {r["alert"] for r in rules() if "alert" in r}
    assert alerts - tested == set(), "alerts never shown firing in prometheus/tests/"


def test_alerts_have_severity_and_summary():
    for r in (r for r in rules() if "alert" in r):
        assert r.get("labels", {}).get("severity") in {"critical", "warning"}, r["alert"]
        assert r.get("annotations", {}).get("summary"), r["alert"]
        assert r.get("annotations", {}).get("description"), r["alert"]


def test_rules_cover_what_the_issue_asks():
    exprs = " ".join(r["expr"] for r in rules())
    alerts = {r["alert"]: r["expr"] for r in rules() if "alert" in r}
    records = {r["record"] for r in rules() if "record" in r}
    assert {"job:grpc_server_requests:rate5m", "job:grpc_server_error_ratio:rate5m"} <= records
    assert any("p99" in r for r in records) and "grpc_server_handling_seconds_bucket" in exprs
    # Multi-window burn rates: a page (1h and 5m) and a ticket (3d and 6h) at least.
    burn = " ".join(e for a, e in alerts.items() if "SLO" in a)
    for window in ("5m", "30m", "1h", "6h", "2h", "1d", "3d"):
        assert f"ratio_rate{window}" in burn, window
    joined = " ".join(alerts.values())
    assert "up{" in joined and "== 0" in joined
    assert "aula_outbox_pending" in joined
    assert "aula_gemini_requests_failed" in joined and 'outcome!="ok"' in exprs
    assert "http_requests_5xx" in joined and 'status=~"5.."' in exprs


def _jobs(config: dict) -> dict[str, dict]:
    return {j["job_name"]: j for j in config["scrape_configs"]}


def test_scrape_configs_follow_the_contract():
    compose = yaml.safe_load((PROM / "prometheus.yml").read_text())
    local = yaml.safe_load((PROM / "prometheus.local.yml").read_text())
    names = {s.name for s in contract.services()}
    assert set(_jobs(compose)) == names | {"prometheus"}
    assert set(_jobs(local)) == names | {"prometheus"}
    assert compose["rule_files"] == local["rule_files"] == ["rules/*.yml"]
    for s in contract.services():
        c, l = _jobs(compose)[s.name], _jobs(local)[s.name]
        # Compose: every replica through DNS, on the service's metrics port.
        assert c["dns_sd_configs"] == [
            {"names": [s.name], "type": "A", "port": s.metrics_port, "refresh_interval": "15s"}
        ], s.name
        assert "static_configs" not in c
        # Local: `aula up` on this host.
        assert l["static_configs"] == [{"targets": [f"127.0.0.1:{s.metrics_port}"]}], s.name
        # Same labels either way: no job adds, drops or renames any.
        for key in ("relabel_configs", "metric_relabel_configs", "honor_labels", "metrics_path", "scheme"):
            assert c.get(key) == l.get(key), (s.name, key)
        assert "labels" not in json.dumps(c["dns_sd_configs"]) and "labels" not in json.dumps(l["static_configs"])


# ------------------------------------------------------------------ PromQL names


def allowed_names() -> set[str]:
    recorded = {r["record"] for r in rules() if "record" in r}
    return contract.metric_series_names() | contract.PROMETHEUS_STANDARD | recorded


def test_rules_read_only_contract_metrics():
    allowed = allowed_names()
    unknown = {}
    for r in rules():
        extra = metric_names(r["expr"]) - allowed
        if extra:
            unknown[r.get("alert") or r.get("record")] = sorted(extra)
    assert unknown == {}, "metric names not in docs/CONFIG.md"


def test_dashboards_read_only_contract_metrics():
    allowed = allowed_names()
    unknown = {}
    for name, d in dashboards().items():
        exprs = [t["expr"] for _, t in targets(d)] + [variable_selector(v) for v in d["templating"]["list"]]
        for e in exprs:
            extra = metric_names(e) - allowed
            if extra:
                unknown[f"{name}: {e}"] = sorted(extra)
    assert unknown == {}, "metric names not in docs/CONFIG.md"


def test_metric_name_lexer():
    assert metric_names(
        'sum by (job) (rate(a_total{code=~"x|y"}[$__rate_interval])) / ignoring (le) b '
        'or histogram_quantile(0.9, sum by (le) (rate(c_bucket[5m]))) >= 1e-3 or vector(0) '
        'and on (job) d offset 5m unless label_replace(e, "x", "$1", "y", "(.*)")'
    ) == {"a_total", "b", "c_bucket", "d", "e"}


# ------------------------------------------------------------------ Grafana


def test_dashboards_regenerate_identically(tmp_path):
    res = subprocess.run(
        [sys.executable, str(GRAFANA / "generate_dashboards.py"), "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=60,
    )
    assert res.returncode == 0, res.stderr
    fresh = {p.name: p.read_text() for p in tmp_path.glob("*.json")}
    committed = {p.name: p.read_text() for p in (GRAFANA / "dashboards").glob("*.json")}
    assert set(committed) == set(fresh), "run observability/grafana/generate_dashboards.py"
    stale = [n for n in fresh if fresh[n] != committed[n]]
    assert stale == [], "stale: run observability/grafana/generate_dashboards.py and commit"


def test_the_five_dashboards():
    ds = dashboards()
    uids = [d["uid"] for d in ds.values()]
    assert len(set(uids)) == len(uids)
    assert set(uids) == {"aula-overview", "aula-service", "aula-interservice", "aula-chatbot", "aula-business"}
    service = next(d for d in ds.values() if d["uid"] == "aula-service")
    (var,) = service["templating"]["list"]
    assert var["name"] == "service" and "job" in var["definition"]
    assert all('job="$service"' in t["expr"] for _, t in targets(service))
    overview = json.dumps(next(d for d in ds.values() if d["uid"] == "aula-overview"))
    for s in contract.services():  # every service is on the overview, even before it has traffic
        assert s.name in overview, s.name
    inter = json.dumps(next(d for d in ds.values() if d["uid"] == "aula-interservice"))
    assert "grpc_client_handled_total" in inter and "grpc_client_handling_seconds_bucket" in inter


def test_every_panel_uses_a_provisioned_datasource():
    prov = yaml.safe_load((GRAFANA / "provisioning" / "datasources" / "datasources.yml").read_text())
    by_uid = {d["uid"]: d for d in prov["datasources"]}
    prom = [d for d in prov["datasources"] if d["type"] == "prometheus"]
    assert len(prom) == 1 and prom[0]["url"] == "http://prometheus:9090"
    jaeger = [d for d in prov["datasources"] if d["type"] == "jaeger"]
    assert len(jaeger) == 1 and jaeger[0]["url"] == "http://jaeger:16686"
    for name, d in dashboards().items():
        for panel in d["panels"]:
            if panel["type"] == "row":
                assert not panel.get("targets")
                continue
            assert panel["datasource"]["uid"] in by_uid, (name, panel["title"])
            assert panel["datasource"]["type"] == by_uid[panel["datasource"]["uid"]]["type"]
            assert panel["targets"], (name, panel["title"])
            for t in panel["targets"]:
                assert t["datasource"] == panel["datasource"], (name, panel["title"])
        for v in d["templating"]["list"]:
            assert v["datasource"]["uid"] in by_uid, (name, v["name"])


def test_dashboard_provider_reads_the_mounted_folder():
    prov = yaml.safe_load((GRAFANA / "provisioning" / "dashboards" / "dashboards.yml").read_text())
    (p,) = prov["providers"]
    assert p["type"] == "file" and p["options"]["path"] == "/var/lib/grafana/dashboards"


def test_panels_fit_the_grid_without_overlapping():
    for name, d in dashboards().items():
        ids = [p["id"] for p in d["panels"]]
        assert len(set(ids)) == len(ids), name
        cells = set()
        for p in d["panels"]:
            g = p["gridPos"]
            assert 0 <= g["x"] and g["x"] + g["w"] <= 24, (name, p["title"])
            for x in range(g["x"], g["x"] + g["w"]):
                for y in range(g["y"], g["y"] + g["h"]):
                    assert (x, y) not in cells, (name, p["title"])
                    cells.add((x, y))


def test_quiet_system_shows_zero():
    """Every panel's query falls back to 0 where it reads a series that may not exist yet."""
    for name, d in dashboards().items():
        for panel, t in targets(d):
            if panel["type"] == "table":
                continue  # tables list what exists
            e = t["expr"]
            assert " or vector(0)" in e or " or 0 * group by (job) (up{" in e, (name, panel["title"], e)


# ------------------------------------------------------------------ OpenTelemetry Collector


def test_otel_collector_config():
    c = yaml.safe_load((OBS / "otel-collector" / "config.yaml").read_text())
    otlp = c["receivers"]["otlp"]["protocols"]
    assert otlp["grpc"]["endpoint"] == "0.0.0.0:4317" and otlp["http"]["endpoint"] == "0.0.0.0:4318"
    assert "batch" in c["processors"]
    jaeger = c["exporters"]["otlp/jaeger"]
    assert jaeger["endpoint"] == "jaeger:4317" and jaeger["tls"]["insecure"] is True
    assert "debug" in c["exporters"]
    (pipeline,) = c["service"]["pipelines"].values()
    assert pipeline["receivers"] == ["otlp"]
    assert pipeline["processors"][-1] == "batch"
    assert set(pipeline["exporters"]) == {"otlp/jaeger", "debug"}
    for kind in ("receivers", "processors", "exporters"):
        for component in pipeline[kind]:
            assert component in c[kind], (kind, component)
    for ext in c["service"].get("extensions", []):
        assert ext in c["extensions"]


# ------------------------------------------------------------------ a shared Prometheus

SHARED_FAMILIES = re.compile(r"^(?:grpc_|http_|process_|up$)")


def unscoped_selectors(expr: str) -> list[str]:
    """Selectors of metrics other applications export too (grpc_*, http_*, process_*, up) that do
    not name a job: in a shared Prometheus they would mix other applications into Aula's numbers."""
    bad = []
    for name in metric_names(expr):
        if not SHARED_FAMILIES.match(name):
            continue
        for m in re.finditer(rf"(?<![\w:]){re.escape(name)}(?![\w:])(\{{[^}}]*\}})?", expr):
            if not m.group(1) or not re.search(r"\bjob\s*=~?\s*\"", m.group(1)):
                bad.append(m.group(0))
    return bad


def test_queries_name_aula_jobs():
    bad = {}
    for r in rules():
        if unscoped_selectors(r["expr"]):
            bad[r.get("alert") or r.get("record")] = unscoped_selectors(r["expr"])
    for name, d in dashboards().items():
        for panel, t in targets(d):
            if unscoped_selectors(t["expr"]):
                bad[f"{name}: {panel['title']}"] = unscoped_selectors(t["expr"])
        for v in d["templating"]["list"]:
            if unscoped_selectors(variable_selector(v)):
                bad[f"{name}: ${v['name']}"] = unscoped_selectors(variable_selector(v))
    assert bad == {}
    # The check itself catches what it should:
    probe = 'sum(rate(grpc_server_handled_total{grpc_code="OK"}[5m])) + up + up{job="cursos"}'
    assert sorted(unscoped_selectors(probe)) == ['grpc_server_handled_total{grpc_code="OK"}', "up"]


def test_no_whole_number_le_matchers():
    """Prometheus 3 (docker-compose.yml runs v3) stores le="1" as le="1.0": a matcher on a whole
    number works on one version and silently matches nothing on the other."""
    exprs = [r["expr"] for r in rules()] + [t["expr"] for d in dashboards().values() for _, t in targets(d)]
    bad = [e for e in exprs if re.search(r'\ble\s*=~?\s*"[0-9]+"', e)]
    assert bad == []
