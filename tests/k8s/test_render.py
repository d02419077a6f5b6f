"""Lint, render the values matrix, and validate every object against the Kubernetes schemas."""

from __future__ import annotations

import functools

import pytest

import helm_python as helm
import kubernetes_validate.utils as kv

from conftest import CHART_DIR, KUBE_VERSIONS, MATRIX, SERVICES, matrix_render, strip_meta

# kubernetes-validate re-reads its (large) definitions file on every call: keep it in memory.
kv.schema_contents = functools.lru_cache(maxsize=None)(kv.schema_contents)

# Prometheus Operator kinds have no schema in kubernetes-validate: checked by hand below.
CUSTOM_KINDS = {("monitoring.coreos.com/v1", "ServiceMonitor"), ("monitoring.coreos.com/v1", "PrometheusRule")}


@pytest.mark.parametrize("kube_version", [None, *[f"v{v}.0" for v in KUBE_VERSIONS]])
def test_lint_strict(kube_version):
    report = helm.lint(CHART_DIR, strict=True, kube_version=kube_version)
    problems = [m for m in report["messages"] if m["severity"] >= 2]
    assert not report["errors"] and not problems, report


@pytest.mark.parametrize("label", [l for l in MATRIX if l != "defaults"])
def test_lint_with_values(label):
    values, _ = MATRIX[label]
    report = helm.lint(CHART_DIR, values, strict=True)
    problems = [m for m in report["messages"] if m["severity"] >= 2]
    assert not report["errors"] and not problems, report


def test_defaults_render_every_service(rendered):
    for name in SERVICES:
        assert (rendered.get("Deployment", rendered.fullname(name)) is not None) == rendered.enabled(name), name


def test_object_names_unique(rendered):
    seen = set()
    for o in rendered.objects:
        key = (o["kind"], o["metadata"]["name"])
        assert key not in seen, key
        seen.add(key)


@pytest.mark.parametrize("kube_version", KUBE_VERSIONS)
def test_objects_validate_strict(rendered, kube_version):
    failures = []
    count = 0
    for obj in rendered.objects:
        if (obj["apiVersion"], obj["kind"]) in CUSTOM_KINDS:
            continue
        try:
            kv.validate(strip_meta(obj), kube_version, strict=True)
            count += 1
        except kv.ValidationError as e:
            path = ".".join(str(p) for p in e.path)
            failures.append(f"{obj['kind']}/{obj['metadata']['name']}: {path}: {e.message}")
        except kv.SchemaNotFoundError as e:
            failures.append(e.message)
    assert not failures, "\n".join(failures)
    assert count > 0


def test_custom_resources_well_formed():
    r = matrix_render("everything")
    monitors = r.of_kind("ServiceMonitor")
    assert {m["metadata"]["name"] for m in monitors} == {r.fullname(n) for n in SERVICES}
    for m in monitors:
        assert m["metadata"]["labels"]["release"] == "kube-prometheus-stack"
        assert m["spec"]["jobLabel"] == "app.kubernetes.io/name"
        assert m["spec"]["namespaceSelector"] == {"matchNames": ["aula-test"]}
        [ep] = m["spec"]["endpoints"]
        assert ep["port"] == "metrics" and ep["interval"] == "15s" and ep["path"] == "/metrics"
        # The selector picks exactly one Service carrying the metrics port.
        sel = m["spec"]["selector"]["matchLabels"]
        matching = [
            s
            for s in r.of_kind("Service")
            if sel.items() <= s["metadata"]["labels"].items() and any(p["name"] == "metrics" for p in s["spec"]["ports"])
        ]
        assert len(matching) == 1, m["metadata"]["name"]
        # job = the service's name (docs/CONFIG.md): the Service carries it under jobLabel.
        assert matching[0]["metadata"]["labels"]["app.kubernetes.io/name"] in SERVICES
    [rule] = r.of_kind("PrometheusRule")
    assert rule["spec"]["groups"]
    for g in rule["spec"]["groups"]:
        assert g["name"] and g["rules"]
        for rl in g["rules"]:
            assert ("alert" in rl) != ("record" in rl) and rl["expr"]


def test_defaults_render_no_optional_objects():
    r = matrix_render("defaults")
    kinds = {o["kind"] for o in r.objects}
    # The claims: SQLite on a PersistentVolumeClaim per stateful service (durable by default).
    assert kinds == {"Deployment", "Service", "ServiceAccount", "PodDisruptionBudget", "NetworkPolicy", "Pod", "ConfigMap", "PersistentVolumeClaim"}
    assert not r.of_kind("Secret")
    # The one ConfigMap is the fault flags' (all off), always there for a drill (docs/FLAGS.md).
    assert [c["metadata"]["name"] for c in r.of_kind("ConfigMap")] == [f"{r.release}-flags"]


def test_everything_renders_optional_objects():
    r = matrix_render("everything")
    kinds = {o["kind"] for o in r.objects}
    assert {"HorizontalPodAutoscaler", "ServiceMonitor", "PrometheusRule", "ConfigMap", "Ingress", "StatefulSet", "Secret"} <= kinds


def test_notes_say_how_to_reach_it():
    r = matrix_render("defaults")
    assert "port-forward svc/aula-gateway 8080:8080" in r.notes
    assert "helm test aula" in r.notes
    for name, svc in SERVICES.items():
        assert f"aula-{name}:{svc.port}" in r.notes
    assert "curl https://aula.example.com/cursos" in matrix_render("everything").notes
