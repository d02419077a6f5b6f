"""NetworkPolicies against the call graph of docs/CONFIG.md's Services table.

A small evaluator of NetworkPolicy semantics (same namespace, matchLabels selectors, named and
numbered ports) decides, for every pair of pods, whether a connection is allowed; the answer must
be exactly "the callee is in the caller's calls column".
"""

from __future__ import annotations

import pytest

from conftest import SERVICES, callers_of, matrix_render

WITH_POLICIES = ["defaults", "everything", "external-db-url", "partial"]


def selects(selector: dict, labels: dict) -> bool:
    if "matchExpressions" in selector:
        raise NotImplementedError("matchExpressions")
    return selector.get("matchLabels", {}).items() <= labels.items()


def peer_matches(peer: dict, labels: dict, same_namespace: bool = True) -> bool:
    if "ipBlock" in peer:
        return False  # pods are not matched by ipBlock rules in this model
    if "namespaceSelector" in peer:
        ns_ok = True  # {} or any selector: we assume the test namespace matches only if empty
        if peer["namespaceSelector"] != {}:
            ns_ok = False
        if not ns_ok:
            return False
    elif not same_namespace:
        return False
    return selects(peer.get("podSelector", {}), labels)


def port_matches(rule_ports: list | None, port: int, port_name: str | None, protocol: str = "TCP") -> bool:
    if not rule_ports:
        return True
    for p in rule_ports:
        if p.get("protocol", "TCP") != protocol:
            continue
        if "port" not in p or p["port"] == port or (port_name and p["port"] == port_name):
            return True
    return False


def policies_for(r, labels: dict, direction: str) -> list[dict]:
    return [
        np
        for np in r.of_kind("NetworkPolicy")
        if selects(np["spec"]["podSelector"], labels) and direction in np["spec"]["policyTypes"]
    ]


def ingress_allowed(r, src: dict, dst: dict, port: int, port_name: str | None) -> bool:
    pols = policies_for(r, dst, "Ingress")
    if not pols:
        return True
    for np in pols:
        for rule in np["spec"].get("ingress", []) or []:
            froms = rule.get("from")
            if (not froms or any(peer_matches(f, src) for f in froms)) and port_matches(rule.get("ports"), port, port_name):
                return True
    return False


def egress_allowed(r, src: dict, dst: dict | None, port: int, protocol: str = "TCP") -> bool:
    """dst None: an address outside the cluster's pods (DNS server, external API)."""
    pols = policies_for(r, src, "Egress")
    if not pols:
        return True
    for np in pols:
        for rule in np["spec"].get("egress", []) or []:
            tos = rule.get("to")
            if tos and (dst is None or not any(peer_matches(t, dst) for t in tos)):
                continue
            if port_matches(rule.get("ports"), port, None, protocol):
                return True
    return False


def pod_labels(r, name: str) -> dict:
    return r.get("Deployment", r.fullname(name))["spec"]["template"]["metadata"]["labels"]


def connect(r, src: str, dst: str) -> bool:
    svc = SERVICES[dst]
    src_l, dst_l = pod_labels(r, src), pod_labels(r, dst)
    name = "http" if svc.http else "grpc"
    return egress_allowed(r, src_l, dst_l, svc.port) and ingress_allowed(r, src_l, dst_l, svc.port, name)


def test_call_graph_parsed():
    assert set(SERVICES) == {"cursos", "chatbot", "cpar", "notificacoes", "insights", "midia", "gateway"}
    assert set(SERVICES["gateway"].calls) == set(SERVICES) - {"gateway"}


@pytest.mark.parametrize("label", WITH_POLICIES)
def test_every_enabled_service_has_a_policy(label):
    r = matrix_render(label)
    for name in SERVICES:
        np = r.get("NetworkPolicy", r.fullname(name))
        assert (np is not None) == r.enabled(name)
        if np:
            assert np["spec"]["policyTypes"] == ["Ingress", "Egress"]


@pytest.mark.parametrize("label", WITH_POLICIES)
def test_connections_follow_the_call_graph(label):
    r = matrix_render(label)
    enabled = [n for n in SERVICES if r.enabled(n)]
    wrong = []
    for src in enabled:
        for dst in enabled:
            if src == dst:
                continue
            want = dst in SERVICES[src].calls
            if connect(r, src, dst) != want:
                wrong.append(f"{src} -> {dst}: {'blocked' if want else 'allowed'}")
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize("label", WITH_POLICIES)
def test_ingress_rules_name_exactly_the_callers(label):
    r = matrix_render(label)
    for name, svc in SERVICES.items():
        if svc.http or not r.enabled(name):
            continue
        np = r.get("NetworkPolicy", r.fullname(name))
        [grpc_rule] = [rule for rule in np["spec"]["ingress"] if any(p["port"] == "grpc" for p in rule["ports"])]
        named = {
            f["podSelector"]["matchLabels"]["app.kubernetes.io/name"]
            for f in grpc_rule["from"]
            if f["podSelector"]["matchLabels"].get("app.kubernetes.io/component") != "test"
        }
        assert named == callers_of(name)
        for f in grpc_rule["from"]:
            assert "namespaceSelector" not in f and f["podSelector"]["matchLabels"]["app.kubernetes.io/instance"] == r.release


def test_gateway_open_to_anyone_and_nothing_else_is():
    r = matrix_render("defaults")
    outsider = {"app": "somewhere-else"}
    gw = pod_labels(r, "gateway")
    assert ingress_allowed(r, outsider, gw, 8080, "http")
    assert not ingress_allowed(r, outsider, gw, 9080, "metrics")
    for svc in SERVICES.values():
        if svc.http:
            continue
        dst = pod_labels(r, svc.name)
        assert not ingress_allowed(r, outsider, dst, svc.port, "grpc"), svc.name


def test_prometheus_scrapes_metrics_ports_only():
    r = matrix_render("defaults")
    prometheus = {"app.kubernetes.io/name": "prometheus"}
    for svc in SERVICES.values():
        dst = pod_labels(r, svc.name)
        assert ingress_allowed(r, prometheus, dst, svc.metrics_port, "metrics"), svc.name
        if not svc.http:
            assert not ingress_allowed(r, prometheus, dst, svc.port, "grpc"), svc.name


def test_helm_test_pods_reach_every_service():
    r = matrix_render("defaults")
    for pod in r.of_kind("Pod"):
        name = pod["metadata"]["name"].removeprefix("aula-").removesuffix("-test")
        svc = SERVICES[name]
        port_name = "http" if svc.http else "grpc"
        assert ingress_allowed(r, pod["metadata"]["labels"], pod_labels(r, name), svc.port, port_name)
        assert not policies_for(r, pod["metadata"]["labels"], "Egress"), "test pods are not confined"


@pytest.mark.parametrize("label", WITH_POLICIES)
def test_egress(label):
    r = matrix_render(label)
    otel = r.merged["otel"]["endpoint"]
    otel_port = 443 if otel.startswith("https://") else 4317
    for name, svc in SERVICES.items():
        if not r.enabled(name):
            continue
        src = pod_labels(r, name)
        assert egress_allowed(r, src, None, 53, "UDP") and egress_allowed(r, src, None, 53, "TCP"), name
        assert egress_allowed(r, src, None, 443) == (name == "chatbot" or bool(otel and otel_port == 443)), name
        assert egress_allowed(r, src, None, 4317) == bool(otel and otel_port == 4317), name
        assert not egress_allowed(r, src, None, 80), name
        db_port = r.merged["database"]["port"]
        external_db = bool(r.merged["database"]["url"] or r.merged["database"]["existingSecret"]) and not r.merged["postgresql"]["enabled"]
        assert egress_allowed(r, src, None, db_port) == (external_db and svc.stateful), name
        if r.merged["postgresql"]["enabled"]:
            pg = r.get("StatefulSet", r.fullname("postgresql"))["spec"]["template"]["metadata"]["labels"]
            assert egress_allowed(r, src, pg, 5432) == svc.stateful, name
            assert ingress_allowed(r, src, pg, 5432, "postgresql") == svc.stateful, name


def test_postgresql_admits_only_stateful_services():
    r = matrix_render("everything")
    pg = r.get("StatefulSet", "aula-postgresql")["spec"]["template"]["metadata"]["labels"]
    assert not ingress_allowed(r, {"app": "x"}, pg, 5432, "postgresql")
    assert not egress_allowed(r, pg, None, 443)


def test_no_policies_when_disabled():
    assert not matrix_render("external-db-secret-no-netpol").of_kind("NetworkPolicy")
