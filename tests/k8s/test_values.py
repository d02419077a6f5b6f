"""values.schema.json is closed and typed; template guards reject unsafe combinations."""

from __future__ import annotations

import json

import pytest

import helm_python as helm

from conftest import CHART_DIR, SERVICES, chart, render

REJECTED = {
    "unknown top-level key": {"replicaCount": 3},
    "unknown key in image": {"image": {"repository": "aula/cursos"}},
    "unknown service": {"services": {"frontend": {"enabled": True}}},
    "unknown key in a service": {"services": {"cursos": {"replica": 2}}},
    "replicas as a string": {"services": {"cursos": {"replicas": "two"}}},
    "enabled as a string": {"services": {"midia": {"enabled": "yes"}}},
    "negative replicas": {"services": {"cpar": {"replicas": -1}}},
    "env value as an object": {"services": {"chatbot": {"env": {"RUST_LOG": {"level": "debug"}}}}},
    "env name invalid": {"services": {"chatbot": {"env": {"RUST-LOG": "debug"}}}},
    "tolerations as an object": {"services": {"insights": {"tolerations": {"key": "x"}}}},
    "nodeSelector as a list": {"services": {"gateway": {"nodeSelector": ["linux"]}}},
    "resources unknown key": {"services": {"cursos": {"resources": {"request": {"cpu": "1"}}}}},
    "networkPolicy.enabled as a string": {"networkPolicy": {"enabled": "true"}},
    "pullPolicy not an enum value": {"image": {"pullPolicy": "Sometimes"}},
    "registry as a number": {"image": {"registry": 5}},
    "autoscaling unknown key": {"autoscaling": {"enabled": True, "targetMemory": 80}},
    "cpu target above 100": {"autoscaling": {"targetCPUUtilizationPercentage": 150}},
    "serviceMonitor.interval as a number": {"serviceMonitor": {"interval": 30}},
    "prometheusRule unknown key": {"prometheusRule": {"enabled": True, "rules": []}},
    "dashboards.enabled as a number": {"dashboards": {"enabled": 1}},
    "gemini.apiKey as a number": {"gemini": {"apiKey": 12345}},
    "gemini unknown key": {"gemini": {"model": "gemini-pro"}},
    "postgresql.enabled as a string": {"postgresql": {"enabled": "false"}},
    "database.url not postgres": {"database": {"url": "mysql://db/aula"}},
    "database unknown key": {"database": {"host": "db"}},
    "otel.endpoint without a scheme": {"otel": {"endpoint": "otel-collector:4317"}},
    "ingress.hosts as a string": {"ingress": {"enabled": True, "hosts": "aula.example.com"}},
    "shutdown.dnsRefreshSeconds above 30": {"shutdown": {"dnsRefreshSeconds": 60}},
    "grpc.reflection as a string": {"grpc": {"reflection": "off"}},
    "grpc.maxInFlight zero": {"grpc": {"maxInFlight": 0}},
    "grpc unknown key": {"grpc": {"maxStreams": 10}},
    "flags state ON": {"flags": {"fault.cursos.unavailable": {"state": "ON", "variants": {"on": True}, "defaultVariant": "on"}}},
    "flags without defaultVariant": {"flags": {"fault.cursos.unavailable": {"state": "ENABLED", "variants": {"on": True}}}},
    "flags as a list": {"flags": ["fault.cursos.unavailable"]},
}


def test_schema_is_closed_everywhere():
    schema = json.loads((CHART_DIR / "values.schema.json").read_text())

    def walk(node, path):
        if isinstance(node, dict):
            if node.get("type") == "object" and "properties" in node:
                assert node.get("additionalProperties") is False, path
            for k, v in node.items():
                walk(v, f"{path}.{k}")
        elif isinstance(node, list):
            for i, v in enumerate(node):
                walk(v, f"{path}[{i}]")

    walk(schema, "$")
    assert schema["additionalProperties"] is False
    assert set(schema["properties"]["services"]["properties"]) == set(SERVICES)
    service = schema["definitions"]["service"]
    assert set(service["properties"]) == {"enabled", "replicas", "resources", "env", "nodeSelector", "tolerations", "affinity"}


def test_defaults_pass_the_schema():
    chart().validate_schema(chart().values)


@pytest.mark.parametrize("values", REJECTED.values(), ids=REJECTED.keys())
def test_schema_rejects(values):
    with pytest.raises(helm.HelmValuesError):
        chart().validate_schema(chart().merge_values(values))
    # ... and so does an install (render), not only the explicit check.
    with pytest.raises(helm.HelmError):
        render(values)


GUARDS = {
    "replicas without a shared database": ({"services": {"cursos": {"replicas": 2}}}, "needs a shared database"),
    "autoscaling without a shared database": ({"autoscaling": {"enabled": True}}, "needs a shared database"),
    "preStop shorter than DNS refresh": ({"shutdown": {"preStopSleepSeconds": 5, "dnsRefreshSeconds": 10}}, "re-resolve"),
    "two gemini sources": ({"gemini": {"apiKey": "k", "existingSecret": "s"}}, "not both"),
    "bundled and external database": ({"postgresql": {"enabled": True}, "database": {"url": "postgres://x/y"}}, "bundles a database"),
    "ingress without the gateway": ({"ingress": {"enabled": True}, "services": {"gateway": {"enabled": False}}}, "enable services.gateway"),
    "min above max replicas": (
        {"autoscaling": {"enabled": True, "minReplicas": 5, "maxReplicas": 2}, "postgresql": {"enabled": True}},
        "minReplicas",
    ),
}


@pytest.mark.parametrize("values,message", GUARDS.values(), ids=GUARDS.keys())
def test_guards(values, message):
    with pytest.raises(helm.HelmRenderError, match=message):
        render(values)


def test_gateway_scales_without_a_database():
    r = render({"services": {"gateway": {"replicas": 4}}})
    assert r.get("Deployment", "aula-gateway")["spec"]["replicas"] == 4


def test_long_release_name_rejected():
    with pytest.raises(helm.HelmRenderError, match="longer than 41"):
        render({}, release="a" * 42)
    r = render({}, release="a" * 41)
    assert all(len(o["metadata"]["name"]) <= 63 for o in r.objects)


def _env(r, service: str) -> dict:
    container = r.get("Deployment", f"aula-{service}")["spec"]["template"]["spec"]["containers"][0]
    return {e["name"]: e.get("value") for e in container["env"]}


def test_demo_data_is_off_unless_asked_and_reaches_only_stateful_services():
    default = render({})
    assert all("AULA_DEMO_DATA" not in _env(default, s) for s in SERVICES)
    r = render({"demoData": True})
    for name in SERVICES:
        stateful = "AULA_DATA_DIR" in _env(r, name)  # SQLite on /data: it has storage
        assert _env(r, name).get("AULA_DEMO_DATA") == ("1" if stateful else None), name


def test_grpc_limits_reach_every_grpc_service_and_env_overrides_them():
    default = render({})
    for name in ("cursos", "notificacoes"):
        assert _env(default, name)["AULA_REFLECTION"] == "on"
        assert _env(default, name)["AULA_MAX_IN_FLIGHT"] == "256"
    assert "AULA_REFLECTION" not in _env(default, "gateway")
    r = render({"grpc": {"reflection": False, "maxInFlight": 64}, "services": {"cursos": {"env": {"AULA_MAX_IN_FLIGHT": "512"}}}})
    assert _env(r, "midia")["AULA_REFLECTION"] == "off"
    assert _env(r, "midia")["AULA_MAX_IN_FLIGHT"] == "64"
    assert _env(r, "cursos")["AULA_MAX_IN_FLIGHT"] == "512"
