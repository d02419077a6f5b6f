"""Shared helpers of the chart tests: the chart, renders, and docs/CONFIG.md's Services table.

Everything runs offline with the real Helm library (helm-python-sdk) and kubernetes-validate's
bundled schemas; scripts/test-k8s.sh sets up the venv.
"""

from __future__ import annotations

import copy
import functools
import pathlib
import re
from dataclasses import dataclass

import pytest
import yaml

import helm_python as helm

ROOT = pathlib.Path(__file__).resolve().parents[2]
CHART_DIR = ROOT / "helm" / "aula"
CONFIG_MD = ROOT / "docs" / "CONFIG.md"
RELEASE = "aula"
NAMESPACE = "aula-test"

helm.disable_logging()


@dataclass(frozen=True)
class Service:
    name: str
    grpc_service: str | None  # None: the HTTP gateway
    port: int
    metrics_port: int
    calls: tuple[str, ...]

    @property
    def http(self) -> bool:
        return self.grpc_service is None

    @property
    def stateful(self) -> bool:
        """It owns tables (services/catalogue.toml): SQLite under /data, or DATABASE_URL."""
        return self.name in STATEFUL


def parse_config() -> dict[str, Service]:
    """The Services table of docs/CONFIG.md: the contract the chart must follow."""
    lines = CONFIG_MD.read_text().splitlines()
    start = lines.index("## Services")
    rows = [l for l in lines[start:] if l.startswith("|")]
    services: dict[str, Service] = {}
    for row in rows[2:]:
        cells = [c.strip() for c in row.strip().strip("|").split("|")]
        if len(cells) < 5 or not cells[0]:
            break
        name, grpc, port, metrics, calls = cells[:5]
        services[name] = Service(
            name=name,
            grpc_service=grpc if grpc.startswith("services.") else None,
            port=int(port),
            metrics_port=int(metrics),
            calls=tuple(c.strip() for c in calls.split(",") if c.strip()),
        )
    return services


def parse_stateful() -> set[str]:
    """The services services/catalogue.toml marks stateful (their crates declare migrations)."""
    import tomllib

    catalogue = tomllib.loads((ROOT / "services" / "catalogue.toml").read_text())
    return {s["name"] for s in catalogue["service"] if s.get("stateful")}


STATEFUL = parse_stateful()
SERVICES = parse_config()
GRPC_SERVICES = [s for s in SERVICES.values() if not s.http]


def callers_of(name: str) -> set[str]:
    return {s.name for s in SERVICES.values() if name in s.calls}


@functools.lru_cache(maxsize=1)
def chart() -> helm.Chart:
    return helm.Chart.load(CHART_DIR)


def deep_merge(base: dict, override: dict) -> dict:
    out = copy.deepcopy(base)
    for k, v in override.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = deep_merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


@dataclass
class Render:
    """One render of the chart: its objects and the values that made it."""

    label: str
    values: dict  # the user's values, as passed to the chart
    merged: dict  # defaults coalesced with them
    release: str
    objects: list[dict]
    notes: str

    def of_kind(self, kind: str) -> list[dict]:
        return [o for o in self.objects if o["kind"] == kind]

    def get(self, kind: str, name: str) -> dict | None:
        for o in self.objects:
            if o["kind"] == kind and o["metadata"]["name"] == name:
                return o
        return None

    def fullname(self, service: str) -> str:
        return f"{self.release}-{service}"

    def enabled(self, service: str) -> bool:
        return bool(self.merged["services"][service]["enabled"])

    @property
    def has_database(self) -> bool:
        m = self.merged
        return bool(m["postgresql"]["enabled"] or m["database"]["url"] or m["database"]["existingSecret"])


def render(values: dict | None = None, *, release: str = RELEASE, label: str = "") -> Render:
    values = values or {}
    rendered = chart().render(values=values, name=release, namespace=NAMESPACE, is_install=True)
    objects: list[dict] = []
    notes = ""
    for path in sorted(rendered):
        if path.endswith("NOTES.txt"):
            notes = rendered[path]
            continue
        for doc in yaml.safe_load_all(rendered[path]):
            if doc:
                doc.setdefault("metadata", {}).setdefault("annotations", None)
                doc["_template"] = path
                objects.append(doc)
    merged = deep_merge(chart().values, values)
    return Render(label or "custom", values, merged, release, objects, notes)


def strip_meta(obj: dict) -> dict:
    """The object as Kubernetes would receive it (without the test's bookkeeping)."""
    obj = {k: v for k, v in obj.items() if k != "_template"}
    meta = dict(obj["metadata"])
    if meta.get("annotations") is None:
        meta.pop("annotations", None)
    obj["metadata"] = meta
    return obj


# The values matrix: every render below goes through validation and every policy test.
EVERYTHING = {
    "image": {"registry": "registry.example.com/mirror", "tag": "1.2.3", "pullPolicy": "Always"},
    "imagePullSecrets": ["regcred"],
    "services": {
        name: {
            "replicas": 3,
            "env": {"AULA_PEER_TIMEOUT": "3s", "RUST_LOG": "debug"},
            "nodeSelector": {"kubernetes.io/os": "linux"},
            "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "aula", "effect": "NoSchedule"}],
            "affinity": {
                "nodeAffinity": {
                    "preferredDuringSchedulingIgnoredDuringExecution": [
                        {
                            "weight": 1,
                            "preference": {
                                "matchExpressions": [{"key": "pool", "operator": "In", "values": ["aula"]}]
                            },
                        }
                    ]
                }
            },
            "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"cpu": 1, "memory": "512Mi"}},
        }
        for name in SERVICES
    },
    "autoscaling": {"enabled": True, "minReplicas": 2, "maxReplicas": 8, "targetCPUUtilizationPercentage": 60},
    "networkPolicy": {"enabled": True},
    "serviceMonitor": {"enabled": True, "interval": "15s", "labels": {"release": "kube-prometheus-stack"}},
    "prometheusRule": {"enabled": True, "labels": {"release": "kube-prometheus-stack"}},
    "dashboards": {"enabled": True},
    "gemini": {"apiKey": "test-key-not-real"},
    "postgresql": {"enabled": True, "auth": {"password": "p@ss word/with:specials"}},
    "otel": {"endpoint": "http://otel-collector.observability:4317"},
    "ingress": {
        "enabled": True,
        "className": "nginx",
        "annotations": {"nginx.ingress.kubernetes.io/proxy-body-size": "8m"},
        "hosts": ["aula.example.com"],
        "tls": [{"secretName": "aula-tls", "hosts": ["aula.example.com"]}],
    },
}

MATRIX: dict[str, tuple[dict, str]] = {
    "defaults": ({}, RELEASE),
    "everything": (EVERYTHING, RELEASE),
    "external-db-url": (
        {
            "database": {"url": "postgres://aula:secret@db.example.com:6432/aula?sslmode=require", "port": 6432},
            "gemini": {"existingSecret": "gemini", "existingSecretKey": "key"},
            "otel": {"endpoint": "https://otel.example.com"},
            "services": {"cursos": {"replicas": 2}, "gateway": {"replicas": 1}},
            "logging": {"format": "text", "level": "aula=debug,info"},
        },
        "prod",
    ),
    "external-db-secret-no-netpol": (
        {
            "database": {"existingSecret": "aula-db", "existingSecretKey": "DATABASE_URL"},
            "networkPolicy": {"enabled": False},
            "autoscaling": {"enabled": True},
            "shutdown": {"preStopSleepSeconds": 20, "drainSeconds": 30, "dnsRefreshSeconds": 5},
        },
        "aula",
    ),
    "partial": (
        {
            "services": {"chatbot": {"enabled": False}, "gateway": {"enabled": False}},
            "serviceMonitor": {"enabled": True},
            "postgresql": {"enabled": True},
        },
        "edu",
    ),
}


@functools.lru_cache(maxsize=None)
def matrix_render(label: str) -> Render:
    values, release = MATRIX[label]
    return render(values, release=release, label=label)


@pytest.fixture(params=list(MATRIX), scope="session")
def rendered(request) -> Render:
    return matrix_render(request.param)


KUBE_VERSIONS = ["1.29", "1.30", "1.31", "1.32"]


def pod_owners(r: Render) -> list[tuple[dict, dict]]:
    """(object, pod spec) of every Deployment, StatefulSet and Pod rendered."""
    out = []
    for o in r.objects:
        if o["kind"] in ("Deployment", "StatefulSet"):
            out.append((o, o["spec"]["template"]["spec"]))
        elif o["kind"] == "Pod":
            out.append((o, o["spec"]))
    return out


def parse_duration(text: str) -> float:
    total = 0.0
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}
    for num, unit in re.findall(r"([0-9.]+)(ms|s|m|h)", text):
        total += float(num) * units[unit]
    return total
