"""What docs/CONFIG.md promises, read from its tables: the single source of names and ports."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CONFIG_MD = REPO / "docs" / "CONFIG.md"
OBS = REPO / "observability"


@dataclass(frozen=True)
class Service:
    name: str
    grpc_service: str | None  # e.g. services.CursosService; None for the gateway
    port: int  # gRPC port, or HTTP port for the gateway
    metrics_port: int
    calls: tuple[str, ...] = field(default=())


def _table(lines: list[str], header_prefix: str) -> list[list[str]]:
    rows: list[list[str]] = []
    inside = False
    for line in lines:
        if line.startswith(header_prefix):
            inside = True
            continue
        if inside:
            if not line.startswith("|"):
                break
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if all(set(c) <= {"-", ":"} for c in cells):
                continue
            rows.append(cells)
    if not rows:
        raise AssertionError(f"table starting {header_prefix!r} not found in {CONFIG_MD}")
    return rows


def services() -> list[Service]:
    out = []
    for name, grpc, port, mport, calls in (r[:5] for r in _table(CONFIG_MD.read_text().splitlines(), "| name | grpc service")):
        out.append(
            Service(
                name=name,
                grpc_service=None if grpc.startswith("(") else grpc,
                port=int(port),
                metrics_port=int(mport),
                calls=tuple(c.strip() for c in calls.split(",") if c.strip()),
            )
        )
    return out


def grpc_services() -> list[Service]:
    return [s for s in services() if s.grpc_service]


@dataclass(frozen=True)
class Metric:
    name: str
    histogram: bool
    emitted_by: str


def metrics() -> list[Metric]:
    """Every metric name of the Metrics table. A histogram is listed under its base name."""
    out = []
    for cells in _table(CONFIG_MD.read_text().splitlines(), "| metric | type"):
        names = re.findall(r"`([a-zA-Z_:][a-zA-Z0-9_:]*)`", cells[0])
        kind = cells[1]
        for n in names:
            # "as above" (the grpc_client_* row) copies the server row: the *_seconds one is the histogram.
            histogram = "histogram" in kind or (kind == "as above" and n.endswith("_seconds"))
            out.append(Metric(n, histogram, cells[3] if len(cells) > 3 else ""))
    return out


def metric_series_names() -> set[str]:
    """Every series name the services may expose: histograms as _bucket, _sum and _count."""
    names = set()
    for m in metrics():
        if m.histogram:
            names |= {m.name + "_bucket", m.name + "_sum", m.name + "_count"}
        else:
            names.add(m.name)
    return names


# Series Prometheus itself produces, which rules and dashboards may use as well.
PROMETHEUS_STANDARD = {
    "up",
    "scrape_duration_seconds",
    "scrape_samples_scraped",
    "scrape_samples_post_metric_relabeling",
    "scrape_series_added",
    "ALERTS",
    "ALERTS_FOR_STATE",
}
