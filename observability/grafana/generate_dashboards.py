#!/usr/bin/env python3
"""Generate the Grafana dashboards of observability/grafana/dashboards/.

The JSON files there are this script's output, committed so that Grafana can load them as they are;
tests/observability checks that they equal a fresh generation. Change this script, run it, commit
both:

    python3 observability/grafana/generate_dashboards.py            # rewrite the dashboards
    python3 observability/grafana/generate_dashboards.py --out DIR  # write them elsewhere

Services, and who calls whom, are read from the tables of docs/CONFIG.md, the one source of names.

Every query is written so that a quiet system shows 0 rather than "No data": a rate of a counter
nobody has incremented yet, or a quantile of a histogram without observations, falls back to 0
(`or vector(0)`, or 0 for every scraped job of the panel when it is broken down by job). A ratio or
quantile over no traffic (NaN) is dropped by `>= 0` before the fallback applies.

Standard library only.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
CONFIG_MD = REPO / "docs" / "CONFIG.md"
DEFAULT_OUT = HERE / "dashboards"

PROMETHEUS = {"type": "prometheus", "uid": "aula-prometheus"}
JAEGER_UID = "aula-jaeger"

# Codes that mean the service failed, not the caller (as in prometheus/rules/recording.yml).
SERVER_ERROR_CODES = "Unknown|DeadlineExceeded|ResourceExhausted|Internal|Unavailable|DataLoss"
RI = "$__rate_interval"
GATEWAY = 'job="gateway"'
STATUS_5XX = 'status=~"5.."'
ASK_QUESTION = 'job="cursos", grpc_method="AskQuestion"'


# ------------------------------------------------------------------ the contract


def read_services(config_md: Path = CONFIG_MD) -> list[dict]:
    """Rows of the Services table of docs/CONFIG.md: name, grpc service, ports, callees."""
    rows = []
    in_table = False
    for line in config_md.read_text().splitlines():
        if line.startswith("| name | grpc service"):
            in_table = True
            continue
        if in_table:
            if not line.startswith("|"):
                break
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if set(cells[0]) <= {"-"}:
                continue
            name, grpc_service, grpc_port, metrics_port, calls = cells[:5]
            rows.append(
                {
                    "name": name,
                    "grpc": not grpc_service.startswith("("),
                    "metrics_port": int(metrics_port),
                    "calls": [c.strip() for c in calls.split(",") if c.strip()],
                }
            )
    if not rows:
        sys.exit(f"no Services table found in {config_md}")
    return rows


# ------------------------------------------------------------------ PromQL helpers


def q(value: str) -> str:
    """A PromQL string literal."""
    return json.dumps(value)


def regex(names: list[str]) -> str:
    return "|".join(names)


def zero_for(job_matcher: str) -> str:
    """0 for every scraped job matching `job_matcher` (a PromQL label matcher on job)."""
    return f"0 * group by (job) (up{{{job_matcher}}})"


def rate(metric: str, selector: str = "") -> str:
    return f"rate({metric}{{{selector}}}[{RI}])" if selector else f"rate({metric}[{RI}])"


def sel(*parts: str) -> str:
    return ", ".join(p for p in parts if p)


def quantile(q: float, metric: str, by: str, selector: str = "") -> str:
    by_le = f"{by}, le" if by else "le"
    return f"histogram_quantile({q}, sum by ({by_le}) ({rate(metric + '_bucket', selector)})) >= 0"


def ratio(num: str, den: str) -> str:
    """num / den, dropped where den is 0 (NaN), so the caller's fallback shows 0 instead."""
    return f"({num}) / ({den}) >= 0"


# ------------------------------------------------------------------ panels and layout


class Board:
    """Panels laid out left to right on Grafana's 24-column grid, one `row()` after another."""

    def __init__(self, uid: str, title: str, description: str):
        self.uid = uid
        self.title = title
        self.description = description
        self.panels: list[dict] = []
        self.templating: list[dict] = []
        self._x = 0
        self._y = 0
        self._row_h = 0
        self._id = 0

    def _next_id(self) -> int:
        self._id += 1
        return self._id

    def row(self, title: str) -> None:
        self._newline()
        self.panels.append(
            {
                "type": "row",
                "id": self._next_id(),
                "title": title,
                "collapsed": False,
                "gridPos": {"h": 1, "w": 24, "x": 0, "y": self._y},
                "panels": [],
            }
        )
        self._y += 1

    def _newline(self) -> None:
        if self._x:
            self._y += self._row_h
            self._x = 0
            self._row_h = 0

    def _place(self, w: int, h: int) -> dict:
        if self._x + w > 24:
            self._newline()
        pos = {"h": h, "w": w, "x": self._x, "y": self._y}
        self._x += w
        self._row_h = max(self._row_h, h)
        return pos

    def panel(
        self,
        kind: str,
        title: str,
        targets: list[tuple[str, str]],
        *,
        unit: str = "short",
        description: str = "",
        w: int = 12,
        h: int = 8,
        instant: bool = False,
        decimals: int | None = None,
    ) -> None:
        """targets: (expr, legend) pairs."""
        defaults: dict = {"unit": unit}
        if decimals is not None:
            defaults["decimals"] = decimals
        if kind == "timeseries":
            defaults["min"] = 0
            defaults["custom"] = {"drawStyle": "line", "lineWidth": 1, "fillOpacity": 10, "spanNulls": False}
            options = {
                "legend": {"displayMode": "list", "placement": "bottom", "showLegend": True},
                "tooltip": {"mode": "multi", "sort": "desc"},
            }
        elif kind == "stat":
            defaults["color"] = {"mode": "thresholds"}
            defaults["thresholds"] = {"mode": "absolute", "steps": [{"color": "green", "value": None}]}
            options = {
                "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
                "colorMode": "value",
                "graphMode": "area",
                "justifyMode": "auto",
                "textMode": "auto",
            }
        elif kind == "table":
            options = {"showHeader": True}
        else:
            raise ValueError(kind)
        panel = {
            "type": kind,
            "id": self._next_id(),
            "title": title,
            "description": description,
            "datasource": PROMETHEUS,
            "gridPos": self._place(w, h),
            "fieldConfig": {"defaults": defaults, "overrides": []},
            "options": options,
            "targets": [
                {
                    "refId": chr(ord("A") + i),
                    "datasource": PROMETHEUS,
                    "expr": expr,
                    "legendFormat": legend,
                    "range": not (instant or kind == "table"),
                    "instant": instant or kind == "table",
                    **({"format": "table"} if kind == "table" else {}),
                }
                for i, (expr, legend) in enumerate(targets)
            ],
        }
        if kind == "table":
            panel["transformations"] = [{"id": "organize", "options": {"excludeByName": {"Time": True}}}]
        self.panels.append(panel)

    def timeseries(self, title: str, targets: list[tuple[str, str]], **kw) -> None:
        self.panel("timeseries", title, targets, **kw)

    def stat(self, title: str, expr: str, **kw) -> None:
        kw.setdefault("w", 4)
        kw.setdefault("h", 4)
        self.panel("stat", title, [(expr, "")], **kw)

    def table(self, title: str, expr: str, **kw) -> None:
        self.panel("table", title, [(expr, "")], **kw)

    def variable(self, name: str, label: str, query: str) -> None:
        self.templating.append(
            {
                "name": name,
                "label": label,
                "type": "query",
                "datasource": PROMETHEUS,
                "definition": query,
                "query": {"query": query, "refId": "PrometheusVariableQueryEditor-VariableQuery"},
                "refresh": 2,
                "sort": 1,
                "multi": False,
                "includeAll": False,
                "current": {},
                "options": [],
                "hide": 0,
            }
        )

    def json(self) -> dict:
        return {
            "uid": self.uid,
            "title": self.title,
            "description": self.description,
            "tags": ["aula"],
            "editable": False,
            "graphTooltip": 1,
            "refresh": "30s",
            "schemaVersion": 39,
            "version": 1,
            "time": {"from": "now-1h", "to": "now"},
            "timepicker": {},
            "timezone": "browser",
            "links": [
                {
                    "title": "Aula",
                    "type": "dashboards",
                    "tags": ["aula"],
                    "asDropdown": True,
                    "includeVars": False,
                    "keepTime": True,
                },
                {
                    "title": "Traces (Jaeger)",
                    "type": "link",
                    "icon": "external link",
                    "url": "/explore?left=" + json.dumps(
                        {"datasource": JAEGER_UID, "queries": [{"refId": "A", "queryType": "search"}]},
                        separators=(",", ":"),
                    ),
                    "targetBlank": True,
                },
            ],
            "annotations": {"list": []},
            "templating": {"list": self.templating},
            "panels": self.panels,
        }


# ------------------------------------------------------------------ the dashboards


def overview(services: list[dict]) -> Board:
    grpc = [s["name"] for s in services if s["grpc"]]
    everyone = [s["name"] for s in services]
    grpc_jobs = f'job=~"{regex(grpc)}"'
    zero_grpc = zero_for(grpc_jobs)
    zero_all = zero_for(f'job=~"{regex(everyone)}"')
    handled = "grpc_server_handled_total"
    err = f'grpc_code=~"{SERVER_ERROR_CODES}"'

    b = Board("aula-overview", "Aula / Overview", "Every service at a glance: traffic, errors and latency.")
    b.row("Now")
    all_jobs = f'job=~"{regex(everyone)}"'
    b.stat("Targets up", f"sum(up{{{all_jobs}}}) or vector(0)", description="Replicas answering their scrape.")
    b.stat(
        "Targets down",
        f"count(up{{{all_jobs}}} == 0) or vector(0)",
        description="Replicas Prometheus cannot scrape.",
    )
    b.stat("gRPC calls/s", f"sum({rate(handled, grpc_jobs)}) or vector(0)", unit="reqps", decimals=2)
    b.stat(
        "gRPC errors/s",
        f"sum({rate(handled, sel(grpc_jobs, err))}) or vector(0)",
        unit="reqps",
        decimals=2,
        description=f"Calls ended with a server-side code ({SERVER_ERROR_CODES}).",
    )
    b.stat("Gateway requests/s", f"sum({rate('http_requests_total', GATEWAY)}) or vector(0)", unit="reqps", decimals=2)
    b.stat("Alerts firing", 'count(ALERTS{alertstate="firing"}) or vector(0)')

    b.row("gRPC, per service (server side)")
    b.timeseries(
        "Calls/s by service",
        [(f"sum by (job) ({rate(handled, grpc_jobs)}) or {zero_grpc}", "{{job}}")],
        unit="reqps",
    )
    b.timeseries(
        "Error ratio by service",
        [
            (
                ratio(
                    f"sum by (job) ({rate(handled, sel(grpc_jobs, err))}) or {zero_grpc}",
                    f"sum by (job) ({rate(handled, grpc_jobs)})",
                )
                + f" or {zero_grpc}",
                "{{job}}",
            )
        ],
        unit="percentunit",
        description=f"Share of calls ended with a server-side code ({SERVER_ERROR_CODES}).",
    )
    b.timeseries(
        "Duration p50 by service",
        [(f"{quantile(0.5, 'grpc_server_handling_seconds', 'job', grpc_jobs)} or {zero_grpc}", "{{job}}")],
        unit="s",
    )
    b.timeseries(
        "Duration p99 by service",
        [(f"{quantile(0.99, 'grpc_server_handling_seconds', 'job', grpc_jobs)} or {zero_grpc}", "{{job}}")],
        unit="s",
    )
    b.timeseries(
        "Calls/s by code",
        [(f"sum by (job, grpc_code) ({rate(handled, grpc_jobs)}) or {zero_grpc}", "{{job}} {{grpc_code}}")],
        unit="reqps",
        w=24,
    )

    b.row("Gateway (HTTP)")
    gw = 'job="gateway"'
    zero_gw = zero_for(gw)
    b.timeseries(
        "Requests/s by status",
        [(f'sum by (status) ({rate("http_requests_total", gw)}) or {zero_gw}', "{{status}}")],
        unit="reqps",
        w=8,
    )
    b.timeseries(
        "5xx ratio",
        [
            (
                ratio(
                    f"sum({rate('http_requests_total', sel(gw, STATUS_5XX))}) or vector(0)",
                    f'sum({rate("http_requests_total", gw)})',
                )
                + " or vector(0)",
                "5xx",
            )
        ],
        unit="percentunit",
        w=8,
    )
    b.timeseries(
        "Duration p50 / p99",
        [
            (f"{quantile(0.5, 'http_request_duration_seconds', '', gw)} or vector(0)", "p50"),
            (f"{quantile(0.99, 'http_request_duration_seconds', '', gw)} or vector(0)", "p99"),
        ],
        unit="s",
        w=8,
    )

    b.row("Processes")
    b.timeseries(
        "CPU by service",
        [(f"sum by (job) ({rate('process_cpu_seconds_total', all_jobs)}) or {zero_all}", "{{job}}")],
        unit="percentunit",
        w=8,
    )
    b.timeseries(
        "Resident memory by service",
        [(f"sum by (job) (process_resident_memory_bytes{{{all_jobs}}}) or {zero_all}", "{{job}}")],
        unit="bytes",
        w=8,
    )
    b.timeseries(
        "Open file descriptors by service",
        [(f"sum by (job) (process_open_fds{{{all_jobs}}}) or {zero_all}", "{{job}}")],
        w=8,
    )
    b.table("Versions", f"count by (job, version) (aula_build_info{{{all_jobs}}})", w=24, h=6)
    return b


def per_service(services: list[dict]) -> Board:
    job = 'job="$service"'
    zero = zero_for(job)
    handled = "grpc_server_handled_total"
    err = f'grpc_code=~"{SERVER_ERROR_CODES}"'
    hs = "grpc_server_handling_seconds"

    b = Board("aula-service", "Aula / Service", "One service: its calls, latency, peers, process and database pool.")
    everyone = regex([s["name"] for s in services])
    b.variable("service", "service", f'label_values(up{{job=~"{everyone}"}}, job)')

    b.row("$service")
    b.stat("Replicas up", f"sum(up{{{job}}}) or vector(0)")
    b.stat("gRPC calls/s", f"sum({rate(handled, job)}) or vector(0)", unit="reqps", decimals=2)
    b.stat(
        "Error ratio",
        ratio(f"sum({rate(handled, sel(job, err))}) or vector(0)", f"sum({rate(handled, job)})") + " or vector(0)",
        unit="percentunit",
        decimals=2,
    )
    b.stat("Duration p99", f"{quantile(0.99, hs, '', job)} or vector(0)", unit="s")
    b.stat("HTTP requests/s", f'sum({rate("http_requests_total", job)}) or vector(0)', unit="reqps", decimals=2)
    b.stat("Outbox pending", f"sum(aula_outbox_pending{{{job}}}) or vector(0)")

    b.row("gRPC server")
    b.timeseries(
        "Calls/s by method",
        [(f"sum by (grpc_service, grpc_method) ({rate(handled, job)}) or {zero}", "{{grpc_method}}")],
        unit="reqps",
    )
    b.timeseries(
        "Calls/s by code",
        [(f"sum by (grpc_code) ({rate(handled, job)}) or {zero}", "{{grpc_code}}")],
        unit="reqps",
    )
    b.timeseries(
        "Errors/s by method",
        [(f"sum by (grpc_method, grpc_code) ({rate(handled, sel(job, err))}) or {zero}", "{{grpc_method}} {{grpc_code}}")],
        unit="reqps",
        description=f"Server-side codes only ({SERVER_ERROR_CODES}).",
    )
    b.timeseries(
        "Duration p50 / p90 / p99",
        [(f"{quantile(q, hs, '', job)} or vector(0)", f"p{round(q * 100)}") for q in (0.5, 0.9, 0.99)],
        unit="s",
    )
    b.timeseries(
        "Duration p99 by method",
        [(f"{quantile(0.99, hs, 'grpc_method', job)} or {zero}", "{{grpc_method}}")],
        unit="s",
    )
    b.timeseries(
        "Calls in flight and stream messages/s",
        [
            (
                f"sum(grpc_server_started_total{{{job}}}) - sum({handled}{{{job}}}) or vector(0)",
                "in flight",
            ),
            (f"sum({rate('grpc_server_msg_received_total', job)}) or vector(0)", "received/s"),
            (f"sum({rate('grpc_server_msg_sent_total', job)}) or vector(0)", "sent/s"),
        ],
    )

    b.row("Calls to peers (client side)")
    ch = "grpc_client_handled_total"
    b.timeseries(
        "Calls/s to peers by code",
        [(f"sum by (grpc_service, grpc_code) ({rate(ch, job)}) or {zero}", "{{grpc_service}} {{grpc_code}}")],
        unit="reqps",
    )
    b.timeseries(
        "Duration p99 to peers",
        [(f"{quantile(0.99, 'grpc_client_handling_seconds', 'grpc_service', job)} or {zero}", "{{grpc_service}}")],
        unit="s",
    )

    b.row("HTTP (gateway)")
    b.timeseries(
        "Requests/s by route and status",
        [(f'sum by (route, status) ({rate("http_requests_total", job)}) or {zero}', "{{route}} {{status}}")],
        unit="reqps",
    )
    b.timeseries(
        "Duration p99 by route",
        [(f"{quantile(0.99, 'http_request_duration_seconds', 'route', job)} or {zero}", "{{route}}")],
        unit="s",
    )

    b.row("Process and database pool")
    b.timeseries(
        "CPU by replica",
        [(f"sum by (instance) ({rate('process_cpu_seconds_total', job)}) or {zero}", "{{instance}}")],
        unit="percentunit",
        w=8,
    )
    b.timeseries(
        "Resident memory by replica",
        [(f"sum by (instance) (process_resident_memory_bytes{{{job}}}) or {zero}", "{{instance}}")],
        unit="bytes",
        w=8,
    )
    b.timeseries(
        "Open file descriptors by replica",
        [(f"sum by (instance) (process_open_fds{{{job}}}) or {zero}", "{{instance}}")],
        w=8,
    )
    b.timeseries(
        "DB pool connections",
        [
            (f"sum by (state) (aula_db_pool_connections{{{job}}}) or {zero}", "{{state}}"),
            (f"sum(aula_db_pool_max_connections{{{job}}}) or vector(0)", "max"),
        ],
        description="Stateful services only; 0 elsewhere.",
    )
    b.table("Replicas", f"up{{{job}}}")

    b.row("Limits and load shedding")
    b.timeseries(
        "Calls refused at a limit/s by reason",
        [(f"sum by (reason) ({rate('aula_shed_total', job)}) or {zero}", "{{reason}}")],
        unit="reqps",
        description="RESOURCE_EXHAUSTED answered at once: in_flight (AULA_MAX_IN_FLIGHT); "
        "notificacoes also streams_per_user and streams_total.",
    )
    b.timeseries(
        "Calls in flight and connections",
        [
            (f"sum(aula_in_flight_calls{{{job}}}) or vector(0)", "in flight"),
            (f"sum(aula_max_in_flight{{{job}}}) or vector(0)", "in-flight limit"),
            (f"sum(aula_grpc_connections_open{{{job}}}) or vector(0)", "connections"),
        ],
        description="Summed over replicas; the limit is per replica times replicas.",
    )
    return b


def inter_service(services: list[dict]) -> Board:
    callers = [s["name"] for s in services if s["calls"]]
    caller_jobs = f'job=~"{regex(callers)}"'
    zero = zero_for(caller_jobs)
    ch = "grpc_client_handled_total"
    err = f'grpc_code=~"{SERVER_ERROR_CODES}"'
    edges = ", ".join(f"{s['name']} -> {'/'.join(s['calls'])}" for s in services if s["calls"])

    b = Board(
        "aula-interservice",
        "Aula / Inter-service calls",
        f"Calls between services as the caller sees them (job = caller, grpc_service = callee): {edges}.",
    )
    b.row("Caller -> callee")
    b.timeseries(
        "Calls/s",
        [(f"sum by (job, grpc_service) ({rate(ch, caller_jobs)}) or {zero}", "{{job}} -> {{grpc_service}}")],
        unit="reqps",
    )
    b.timeseries(
        "Error ratio",
        [
            (
                ratio(
                    f"sum by (job, grpc_service) ({rate(ch, sel(caller_jobs, err))}) or 0 * sum by (job, grpc_service) ({rate(ch, caller_jobs)})",
                    f"sum by (job, grpc_service) ({rate(ch, caller_jobs)})",
                )
                + f" or {zero}",
                "{{job}} -> {{grpc_service}}",
            )
        ],
        unit="percentunit",
        description=f"Server-side codes ({SERVER_ERROR_CODES}), including a peer that cannot be reached.",
    )
    b.timeseries(
        "Duration p50",
        [(f"{quantile(0.5, 'grpc_client_handling_seconds', 'job, grpc_service', caller_jobs)} or {zero}", "{{job}} -> {{grpc_service}}")],
        unit="s",
    )
    b.timeseries(
        "Duration p99",
        [(f"{quantile(0.99, 'grpc_client_handling_seconds', 'job, grpc_service', caller_jobs)} or {zero}", "{{job}} -> {{grpc_service}}")],
        unit="s",
    )
    b.row("Per method")
    b.timeseries(
        "Calls/s by method and code",
        [
            (
                f"sum by (job, grpc_service, grpc_method, grpc_code) ({rate(ch, caller_jobs)}) or {zero}",
                "{{job}} -> {{grpc_service}}/{{grpc_method}} {{grpc_code}}",
            )
        ],
        unit="reqps",
        w=24,
    )
    b.timeseries(
        "Calls in flight",
        [
            (
                f"sum by (job, grpc_service) (grpc_client_started_total{{{caller_jobs}}})"
                f" - sum by (job, grpc_service) (grpc_client_handled_total{{{caller_jobs}}})"
                f" or {zero}",
                "{{job}} -> {{grpc_service}}",
            )
        ],
        w=24,
    )
    # Mutual TLS (docs/CONFIG.md, "Mutual TLS"): zero everywhere while TLS is off.
    all_jobs = f'job=~"{regex([s["name"] for s in services])}"'
    zero_all = zero_for(all_jobs)
    b.row("Mutual TLS")
    b.timeseries(
        "TLS handshake failures/s",
        [
            (
                f"sum by (job, side, reason) ({rate('aula_tls_handshake_failures_total', all_jobs)}) or {zero_all}",
                "{{job}} {{side}} {{reason}}",
            )
        ],
        unit="reqps",
        description="not_tls: a plaintext client; unknown_ca: a certificate from another CA; "
        "no_client_certificate; expired; wrong_name (a peer address its certificate does not name).",
    )
    b.timeseries(
        "Calls refused by authorization/s",
        [
            (
                f"sum by (job, method) ({rate('aula_authz_denied_total', all_jobs)}) or {zero_all}",
                "{{job}} {{method}}",
            )
        ],
        unit="reqps",
        description="PERMISSION_DENIED: a verified caller the catalogue does not list for the method, "
        "or (AULA_AUTH=jwt) a user asking for another user's data or a staff-only RPC. "
        "AulaAccessDeniedBurst fires above 50 in 5 minutes.",
    )
    b.timeseries(
        "End users: authentication failures/s by reason",
        [
            (
                f"sum by (job, reason) ({rate('aula_auth_failures_total', all_jobs)}) or {zero_all}",
                "{{job}} {{reason}}",
            )
        ],
        unit="reqps",
        description="AULA_AUTH=jwt (docs/AUTH.md): calls refused UNAUTHENTICATED (401 at the gateway): "
        "missing, malformed, expired, not_yet_valid, signature, unknown_key, issuer, audience, "
        "algorithm (none or HMAC), subject (not an id_usuario), keys_unavailable (the JWKS cannot be fetched).",
    )
    b.timeseries(
        "Days until each certificate expires",
        [
            (
                f"min by (job, instance) ((aula_tls_certificate_expiry_seconds{{{all_jobs}}} - time()) / 86400)"
                f" or {zero_all}",
                "{{job}} {{instance}}",
            )
        ],
        unit="d",
        description="AulaCertificateExpiresSoon fires below 7 days; renewed files are picked up within 10 s.",
        w=24,
    )
    return b


def chatbot(services: list[dict]) -> Board:
    zero_cb = zero_for('job="chatbot"')
    g = "aula_gemini_requests_total"
    cb = 'job="chatbot"'
    b = Board(
        "aula-chatbot",
        "Aula / Chatbot and Gemini",
        "Questions, the answer mode (gemini or offline), and Gemini's outcomes, latency and tokens.",
    )
    b.row("Questions")
    b.stat("Questions (range)", "sum(increase(aula_chatbot_questions_total[$__range])) or vector(0)", w=6)
    b.stat(
        "Answered offline",
        ratio(
            f"sum({rate('aula_chatbot_questions_total', 'mode=' + q('offline'))}) or vector(0)",
            f"sum({rate('aula_chatbot_questions_total')})",
        )
        + " or vector(0)",
        unit="percentunit",
        w=6,
    )
    b.stat(
        "Gemini failing",
        ratio(f"sum({rate(g, 'outcome!=' + q('ok'))}) or vector(0)", f"sum({rate(g)})") + " or vector(0)",
        unit="percentunit",
        w=6,
    )
    b.stat(
        "cursos.AskQuestion p99",
        f"{quantile(0.99, 'grpc_server_handling_seconds', '', ASK_QUESTION)} or vector(0)",
        unit="s",
        w=6,
        description="What a user asking a question waits for, end to end.",
    )
    b.timeseries(
        "Questions/s by mode and outcome",
        [(f"sum by (mode, outcome) ({rate('aula_chatbot_questions_total')}) or {zero_cb}", "{{mode}} {{outcome}}")],
        unit="reqps",
    )
    b.timeseries(
        "Chatbot calls/s by method",
        [(f"sum by (grpc_method) ({rate('grpc_server_handled_total', cb)}) or {zero_cb}", "{{grpc_method}}")],
        unit="reqps",
    )
    b.row("Gemini")
    b.timeseries(
        "Requests/s by outcome",
        [(f"sum by (outcome) ({rate(g)}) or {zero_cb}", "{{outcome}}")],
        unit="reqps",
        description="ok, quota, blocked, timeout, unavailable, error, circuit_open.",
    )
    b.timeseries(
        "Duration p50 / p95 / p99",
        [
            (f"{quantile(q, 'aula_gemini_request_duration_seconds', '')} or vector(0)", f"p{round(q * 100)}")
            for q in (0.5, 0.95, 0.99)
        ],
        unit="s",
    )
    b.timeseries(
        "Tokens/s by direction",
        [(f"sum by (direction) ({rate('aula_gemini_tokens_total')}) or {zero_cb}", "{{direction}}")],
    )
    b.timeseries(
        "Chatbot duration p99 by method",
        [(f"{quantile(0.99, 'grpc_server_handling_seconds', 'grpc_method', cb)} or {zero_cb}", "{{grpc_method}}")],
        unit="s",
    )
    return b


def business(services: list[dict]) -> Board:
    outbox = [s for s in ("cursos", "cpar") if any(x["name"] == s for x in services)]
    zero_outbox = zero_for(f'job=~"{regex(outbox)}"')
    b = Board(
        "aula-business",
        "Aula / Business",
        "What the platform does for its users: enrolments, notifications, reminders, questions.",
    )
    b.row("In the selected range")
    b.stat("Enrolments", "sum(increase(aula_enrolments_total[$__range])) or vector(0)", w=4)
    b.stat("Notifications stored", "sum(increase(aula_notifications_stored_total[$__range])) or vector(0)", w=4)
    b.stat("Reminders sent", "sum(increase(aula_reminders_sent_total[$__range])) or vector(0)", w=4)
    b.stat("Questions", "sum(increase(aula_chatbot_questions_total[$__range])) or vector(0)", w=4)
    b.stat("Interactions recorded", "sum(increase(aula_interactions_recorded_total[$__range])) or vector(0)", w=4)
    b.stat(
        "Outbox pending now",
        "sum(aula_outbox_pending) or vector(0)",
        w=4,
        description="Notifications acknowledged to the user, not yet delivered to notificacoes.",
    )
    b.row("Over time")
    b.timeseries(
        "Enrolments/s",
        [(f"sum({rate('aula_enrolments_total')}) or vector(0)", "enrolments")],
        unit="reqps",
    )
    b.timeseries(
        "Notifications stored/s by origin",
        [
            (
                f"sum by (origem) ({rate('aula_notifications_stored_total')}) or {zero_for('job=' + q('notificacoes'))}",
                "{{origem}}",
            )
        ],
        unit="reqps",
    )
    b.timeseries(
        "Outbox pending",
        [(f"sum by (job) (aula_outbox_pending) or {zero_outbox}", "{{job}}")],
    )
    b.timeseries(
        "Outbox deliveries/s",
        [
            (f"sum by (job) ({rate('aula_outbox_delivered_total')}) or {zero_outbox}", "{{job}} delivered"),
            (f"sum by (job) ({rate('aula_outbox_delivery_failures_total')}) or {zero_outbox}", "{{job}} failed"),
        ],
        unit="reqps",
    )
    b.timeseries(
        "Reminders sent/s",
        [(f"sum({rate('aula_reminders_sent_total')}) or vector(0)", "reminders")],
        unit="reqps",
    )
    b.timeseries(
        "Questions and interactions/s",
        [
            (f"sum by (mode) ({rate('aula_chatbot_questions_total')}) or {zero_for('job=' + q('chatbot'))}", "questions {{mode}}"),
            (f"sum({rate('aula_interactions_recorded_total')}) or vector(0)", "interactions recorded"),
        ],
        unit="reqps",
    )
    return b


BOARDS = {
    "overview.json": overview,
    "service.json": per_service,
    "inter-service.json": inter_service,
    "chatbot.json": chatbot,
    "business.json": business,
}


def render(services: list[dict]) -> dict[str, str]:
    """File name -> file content."""
    return {name: json.dumps(make(services).json(), indent=2) + "\n" for name, make in BOARDS.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="directory to write (default: %(default)s)")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    for name, text in render(read_services()).items():
        (args.out / name).write_text(text)
        print(args.out / name)


if __name__ == "__main__":
    main()
