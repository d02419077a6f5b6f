"""A real Prometheus scraping `aula up` under traffic: every target is up, every rule evaluates,
every dashboard query runs and returns data, and the services export what docs/CONFIG.md lists."""

from __future__ import annotations

import json
import re

import pytest
import yaml

import contract
from promql import expand

pytestmark = pytest.mark.live

OBS = contract.OBS
SERVICES = contract.services()
GRPC_JOBS = [s.name for s in contract.grpc_services()]
CALLERS = [s.name for s in SERVICES if s.calls]
CANONICAL_CODES = {
    "OK", "Canceled", "Unknown", "InvalidArgument", "DeadlineExceeded", "NotFound", "AlreadyExists",
    "PermissionDenied", "ResourceExhausted", "FailedPrecondition", "Aborted", "OutOfRange",
    "Unimplemented", "Internal", "Unavailable", "DataLoss", "Unauthenticated",
}
# Counted only when something goes wrong (a delivery to notificacoes failing); a quiet, healthy
# platform may not have the series yet. Every other metric of docs/CONFIG.md must be there.
# Counted only when their event happens (a failed delivery, a dead letter, a connection a failed
# transaction left unusable, an injected fault): absent from a healthy stack with no flags on.
EVENT_ONLY = {
    "aula_outbox_delivery_failures_total",
    "aula_outbox_dead_letters_total",
    "aula_db_connections_discarded_total",
    "aula_fault_injected_total",
}
# Exported only with AULA_AUTH=jwt; the stack here runs without end-user auth. Tested where it is on:
# services/runtime/src/auth/tests.rs.
AUTH_ONLY = {"aula_auth_failures_total"}
# Exported only with mutual TLS on; the stack here is plaintext. Tested where TLS is on:
# services/runtime/src/tls/tests.rs.
TLS_ONLY = {"aula_tls_handshake_failures_total", "aula_authz_denied_total", "aula_tls_certificate_expiry_seconds"}


def dashboard_queries():
    """(id, expr, instant) for every target of every panel; $service expanded to every service."""
    out = []
    for path in sorted((OBS / "grafana" / "dashboards").glob("*.json")):
        d = json.loads(path.read_text())
        variables = [v["name"] for v in d["templating"]["list"]]
        bindings = [{"service": s.name} for s in SERVICES] if "service" in variables else [{}]
        for panel in d["panels"]:
            for t in panel.get("targets", []):
                for b in bindings:
                    suffix = f"[{b['service']}]" if b else ""
                    out.append(
                        pytest.param(
                            expand(t["expr"], b),
                            bool(t.get("instant")),
                            id=f"{path.stem}/{panel['title']}/{t['refId']}{suffix}",
                        )
                    )
    return out


def test_every_target_up(stack):
    active = stack.prometheus.get("/api/v1/targets", state="active")["activeTargets"]
    jobs = {t["labels"]["job"]: t["health"] for t in active}
    assert jobs == {**{s.name: "up" for s in SERVICES}, "prometheus": "up"}


def test_every_rule_loads_and_evaluates(stack):
    groups = stack.prometheus.get("/api/v1/rules")["groups"]
    loaded = {(g["name"], r["name"]): r for g in groups for r in g["rules"]}
    expected = {
        (g["name"], r.get("record") or r.get("alert"))
        for f in sorted((OBS / "prometheus" / "rules").glob("*.yml"))
        for g in yaml.safe_load(f.read_text())["groups"]
        for r in g["rules"]
    }
    assert set(loaded) == expected
    broken = {k: (r["health"], r.get("lastError")) for k, r in loaded.items() if r["health"] != "ok" or r.get("lastError")}
    assert broken == {}


def test_no_alert_fires_on_a_healthy_platform(stack):
    firing = [a for a in stack.prometheus.get("/api/v1/alerts")["alerts"] if a["state"] == "firing"]
    assert firing == []


def test_recording_rules_have_every_service(stack):
    q = stack.prometheus.query

    def jobs(expr):
        return {s["metric"].get("job") for s in q(expr)}

    assert jobs("job:grpc_server_requests:rate5m") == set(GRPC_JOBS)
    assert jobs("job:grpc_server_error_ratio:rate5m") == set(GRPC_JOBS)
    assert jobs("job:grpc_server_handling_seconds:p99_rate5m") == set(GRPC_JOBS)
    # The SLO reads the le="0.1" bucket: it exists, and every service had SLO-eligible calls.
    assert jobs("job:grpc_server_slow_requests:ratio_rate5m") == set(GRPC_JOBS)
    edges = {(s["metric"]["job"], s["metric"]["grpc_service"]) for s in q("job_grpc_service:grpc_client_requests:rate5m")}
    by_name = {s.name: s.grpc_service for s in SERVICES}
    for caller in ("cursos", "chatbot", "cpar"):
        for callee in next(s for s in SERVICES if s.name == caller).calls:
            assert (caller, by_name[callee]) in edges, f"{caller} -> {callee} not seen client side"


@pytest.mark.parametrize("expr, instant", dashboard_queries())
def test_dashboard_query_returns_data(stack, expr, instant):
    p = stack.prometheus
    result = p.query(expr) if instant else p.query_range(expr)
    assert result, f"no data: {expr}"


def test_service_variable_lists_every_service(stack):
    d = json.loads((OBS / "grafana" / "dashboards" / "service.json").read_text())
    (var,) = d["templating"]["list"]
    selector, label = re.fullmatch(r"label_values\((.*),\s*(\w+)\)", var["definition"]).groups()
    values = set(stack.prometheus.get("/api/v1/label/" + label + "/values", **{"match[]": selector}))
    assert values == {s.name for s in SERVICES}


def _present(stack) -> set[tuple[str, str]]:
    """(series name, job) of every series the Aula jobs export."""
    jobs = "|".join(s.name for s in SERVICES)
    result = stack.prometheus.query(f'group by (__name__, job) ({{job=~"{jobs}"}})')
    return {(r["metric"]["__name__"], r["metric"]["job"]) for r in result}


def _expected_jobs(emitted_by: str) -> set[str] | None:
    """Who must export a metric, from the "emitted by" column; None: some job, unspecified."""
    e = emitted_by.strip().lower()
    if e == "all":
        return {s.name for s in SERVICES}
    if e == "every grpc service":
        return set(GRPC_JOBS)
    if e.startswith("every caller"):
        return set(CALLERS)
    names = {n.strip() for n in e.split(",")}
    if names <= {s.name for s in SERVICES}:
        return names
    return None  # e.g. "stateful services"


def test_services_export_the_contract_metrics(stack):
    present = _present(stack)
    names = {n for n, _ in present}
    missing = {}
    for m in contract.metrics():
        if m.name in EVENT_ONLY | TLS_ONLY | AUTH_ONLY:
            continue
        series = m.name + "_count" if m.histogram else m.name
        want = _expected_jobs(m.emitted_by)
        if want is None:
            if series not in names:
                missing[series] = "no job"
            continue
        lacking = sorted(j for j in want if (series, j) not in present)
        if lacking:
            missing[series] = lacking
    assert missing == {}, "metrics of docs/CONFIG.md not exported (after traffic)"


def test_grpc_codes_are_canonical(stack):
    codes = set(stack.prometheus.get("/api/v1/label/grpc_code/values"))
    assert codes and codes <= CANONICAL_CODES
    # The traffic had answers that are errors: they are counted with their code.
    q = stack.prometheus.query
    assert q('sum(grpc_server_handled_total{job="cursos", grpc_code="InvalidArgument"}) > 0')
    assert q('sum(grpc_server_handled_total{job="cursos", grpc_code="NotFound"}) > 0')


def test_gemini_outcomes_are_counted(stack):
    assert stack.gemini_requests, "the chatbot never called the (fake) Gemini at GEMINI_BASE_URL"
    # Every outcome's series exists from start-up at 0 (registered handles): count the ones seen.
    outcomes = {r["metric"]["outcome"] for r in stack.prometheus.query("aula_gemini_requests_total > 0")}
    assert "ok" in outcomes and outcomes - {"ok"}, outcomes
