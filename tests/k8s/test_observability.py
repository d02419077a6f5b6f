"""One source of truth with observability/: the chart's rules and dashboards are those files."""

from __future__ import annotations

import json
import os
import pathlib
import re

import yaml

from conftest import CHART_DIR, ROOT, matrix_render, render

RULES = ROOT / "observability" / "prometheus" / "rules"
DASHBOARDS = ROOT / "observability" / "grafana" / "dashboards"


def test_files_are_symlinks_into_observability():
    for link, target in (("rules", RULES), ("dashboards", DASHBOARDS)):
        path = CHART_DIR / "files" / link
        assert path.is_symlink(), f"helm/aula/files/{link} must be a symlink, not a copy"
        assert not os.path.isabs(os.readlink(path)), "the link must be relative (works in any clone)"
        assert path.resolve() == target.resolve()


def rule_files() -> list[pathlib.Path]:
    return sorted(p for p in RULES.iterdir() if p.suffix in (".yml", ".yaml"))


def test_prometheus_rule_carries_every_group():
    files = rule_files()
    assert files, "observability/prometheus/rules has no rule file"
    expected = []
    for f in files:
        expected.extend(yaml.safe_load(f.read_text()).get("groups") or [])
    [rule] = matrix_render("everything").of_kind("PrometheusRule")
    assert rule["spec"]["groups"] == expected


def test_dashboard_configmaps_carry_every_dashboard():
    files = sorted(DASHBOARDS.glob("*.json"))
    assert files, "observability/grafana/dashboards has no dashboard"
    maps = [c for c in matrix_render("everything").of_kind("ConfigMap") if c["metadata"]["labels"].get("grafana_dashboard")]
    assert len(maps) == len(files)
    by_key = {}
    for cm in maps:
        assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
        assert len(cm["metadata"]["name"]) <= 63
        [(key, text)] = cm["data"].items()
        by_key[key] = text
    for f in files:
        assert json.loads(by_key[f.name]) == json.loads(f.read_text()), f.name


def test_the_datasource_the_dashboards_name_is_shipped():
    """Every dashboard queries uid aula-prometheus; the chart provisions that uid for the sidecar."""
    r = matrix_render("everything")
    [ds_map] = [c for c in r.of_kind("ConfigMap") if c["metadata"]["labels"].get("grafana_datasource") == "1"]
    [text] = ds_map["data"].values()
    [ds] = yaml.safe_load(text)["datasources"]
    assert ds["type"] == "prometheus" and ds["url"].startswith("http")
    for f in DASHBOARDS.glob("*.json"):
        uids = {m for m in re.findall(r'"uid":\s*"([^"]+)"', f.read_text()) if m.startswith("aula-") and m != "aula-jaeger"}
        uids -= {json.loads(f.read_text())["uid"]}
        assert uids <= {ds["uid"]}, (f.name, uids)
    off = render({"dashboards": {"enabled": True, "datasource": {"create": False}}})
    assert not [c for c in off.of_kind("ConfigMap") if c["metadata"]["labels"].get("grafana_datasource")]


def test_monitoring_objects_off_by_default():
    r = matrix_render("defaults")
    assert not r.of_kind("PrometheusRule") and not r.of_kind("ServiceMonitor")
    # The one ConfigMap by default is the fault flags' (tests/k8s/test_flags.py): no dashboards.
    assert [c["metadata"]["name"] for c in r.of_kind("ConfigMap")] == [f"{r.release}-flags"]


def test_packaged_chart_carries_the_linked_files(tmp_path):
    """`helm package` stores the linked files' content: the archive needs no observability/."""
    import helm_python as helm

    archive = helm.package(CHART_DIR, destination=tmp_path)
    with helm.Chart.load(archive) as packaged:
        names = {f["name"] for f in packaged.files}
        out = packaged.render(values={"prometheusRule": {"enabled": True}, "dashboards": {"enabled": True}}, name="aula")
    assert {f"files/dashboards/{p.name}" for p in DASHBOARDS.glob("*.json")} <= names
    assert {f"files/rules/{p.name}" for p in rule_files()} <= names
    docs = [d for path, text in out.items() if path.endswith(".yaml") for d in yaml.safe_load_all(text) if d]
    assert any(d["kind"] == "PrometheusRule" for d in docs)
