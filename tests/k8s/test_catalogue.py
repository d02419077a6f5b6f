"""The places that repeat services/catalogue.toml by hand, checked against it: the chart's catalog
(helm/aula/templates/_helpers.tpl) and its lists of services (values.yaml, values.schema.json), the
Dockerfile's image stages, scripts/build-images.sh's images and ports (it reads the catalogue: this
checks its reading), the services, ports and gRPC names scripts/e2e-compose.sh checks, the
Prometheus scrape jobs and the job selectors of the rules in observability/prometheus/, and
README.md's services table. (The Grafana dashboards are generated from docs/CONFIG.md's tables,
which test_callers.py holds to the catalogue.)

Each failure says what to write where: add a service to the catalogue, run this file, and it lists
every line still missing."""

from __future__ import annotations

import json
import re
import subprocess
import tomllib

import yaml

from conftest import ROOT

CATALOGUE = tomllib.loads((ROOT / "services" / "catalogue.toml").read_text())["service"]
NAMES = [s["name"] for s in CATALOGUE]
GRPC = [s["name"] for s in CATALOGUE if "grpc" in s]
IMAGES = NAMES + ["aula"]  # every service, then the `aula` CLI


def calls_of(name: str) -> list[str]:
    """The services NAME calls (it is listed under their `callers`), in catalogue order."""
    return [s["name"] for s in CATALOGUE if name in s.get("callers", {})]


# ------------------------------------------------------------------ the chart

CHART = ROOT / "helm" / "aula"


def chart_entry(s: dict) -> dict:
    """A service as the chart's `aula.catalog` writes it (Helm reads no TOML: the chart keeps a copy)."""
    entry = {"port": s["port"], "metricsPort": s["metrics_port"]}
    if "grpc" in s:
        entry["grpcService"] = s["grpc"]
    entry["calls"] = calls_of(s["name"])
    entry["stateful"] = bool(s.get("stateful"))
    entry["http"] = bool(s.get("http"))
    return entry


def chart_catalog_block() -> str:
    lines = []
    for s in CATALOGUE:
        lines.append(f"{s['name']}:")
        for key, value in chart_entry(s).items():
            if isinstance(value, list):
                value = "[" + ", ".join(value) + "]"
            elif isinstance(value, bool):
                value = str(value).lower()
            lines.append(f"  {key}: {value}")
    return "\n".join(lines)


def test_the_charts_catalog_is_the_catalogue():
    """Every field of every service in `aula.catalog` (Deployments, Services, probes, the stateful
    rule, NetworkPolicies and callers are rendered from it), in the catalogue's order; the callees
    compared as a set (the chart only asks `has`)."""
    helpers = (CHART / "templates" / "_helpers.tpl").read_text()
    body = helpers.split('{{- define "aula.catalog" -}}', 1)[1].split("{{- end }}", 1)[0]
    chart = yaml.safe_load(body)

    def comparable(entry: dict) -> dict:
        return {**entry, "calls": sorted(entry.get("calls", []))}

    want = {s["name"]: chart_entry(s) for s in CATALOGUE}
    assert list(chart) == NAMES and all(comparable(chart[n]) == comparable(want[n]) for n in NAMES), (
        'helm/aula/templates/_helpers.tpl: the body of {{- define "aula.catalog" -}} should read\n\n'
        + chart_catalog_block()
        + "\n\nthen scripts/render-k8s.sh for k8s/"
    )


def test_the_charts_values_and_schema_list_every_service():
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert list(values["services"]) == NAMES, (
        f"helm/aula/values.yaml: services should have one entry per service of the catalogue, in its "
        f"order: {NAMES} (copy midia's)"
    )
    schema = json.loads((CHART / "values.schema.json").read_text())
    services = schema["properties"]["services"]
    assert list(services["properties"]) == NAMES and services["required"] == NAMES, (
        "helm/aula/values.schema.json: properties.services should list every service of the "
        f"catalogue, in its order, in `properties` (each {{\"$ref\": \"#/definitions/service\"}}) and "
        f"`required`: {NAMES}"
    )
    enums = [
        path
        for path, node in walk(schema)
        if isinstance(node, dict) and "enum" in node and set(node["enum"]) & set(NAMES)
    ]
    for path in enums:
        node = schema
        for key in path:
            node = node[key]
        assert node["enum"] == NAMES, (
            f"helm/aula/values.schema.json: {'.'.join(map(str, path))}.enum should be the catalogue's "
            f"names, in its order: {NAMES}"
        )


def walk(node, path=()):
    """Every (path, node) of a JSON document."""
    yield path, node
    if isinstance(node, dict):
        for k, v in node.items():
            yield from walk(v, (*path, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from walk(v, (*path, i))


# ------------------------------------------------------------------ Dockerfile


def image_stage(name: str) -> list[str]:
    if name == "aula":
        probe = "--interval=10s --timeout=5s --start-period=10s --retries=3 CMD [\"/aula\", \"status\"]"
    else:
        probe = f'--interval=10s --timeout=3s --start-period=10s --retries=3 CMD ["/{name}", "healthcheck"]'
    return [f"FROM base AS image-{name}", f'ENTRYPOINT ["/{name}"]', f"HEALTHCHECK {probe}"]


def dockerfile_stages() -> dict[str, list[str]]:
    """Each `FROM base AS image-<name>` stage of the Dockerfile: its instructions, comments left out."""
    stages: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in (ROOT / "Dockerfile").read_text().splitlines():
        if line.startswith("FROM "):
            m = re.fullmatch(r"FROM base AS image-(\S+)", line.strip())
            current = stages.setdefault(m.group(1), []) if m else None
        if current is not None and line.strip() and not line.startswith("#"):
            current.append(line.strip())
    return stages


def test_the_dockerfile_has_one_image_stage_per_service_and_the_cli():
    stages = dockerfile_stages()
    missing = [n for n in IMAGES if n not in stages]
    assert not missing, "Dockerfile: add, before `FROM image-${SERVICE} AS image`,\n\n" + "\n\n".join(
        "\n".join(image_stage(n)) for n in missing
    )
    extra = [n for n in stages if n not in IMAGES]
    assert not extra, f"Dockerfile: image-{extra} stages of no service of services/catalogue.toml: remove them"
    assert list(stages) == IMAGES, f"Dockerfile: order the image-<name> stages as the catalogue: {IMAGES}"
    for n in IMAGES:
        assert stages[n] == image_stage(n), f"Dockerfile: the image-{n} stage should read\n\n" + "\n".join(
            image_stage(n)
        )
    assert "FROM image-${SERVICE} AS image" in (ROOT / "Dockerfile").read_text()


# ------------------------------------------------------------------ scripts/build-images.sh


def test_build_images_lists_every_service_of_the_catalogue_and_the_cli():
    out = subprocess.run(
        ["bash", str(ROOT / "scripts" / "build-images.sh"), "--list"],
        capture_output=True, text=True, timeout=30, check=True,
    ).stdout
    listed = [tuple(line.split("\t")) for line in out.splitlines()]
    want = [(s["name"], str(s["port"]), str(s["metrics_port"])) for s in CATALOGUE]
    # The CLI serves everything (`aula up`): its image exposes every port.
    want.append(("aula", " ".join(p for _, p, _ in want), " ".join(m for _, _, m in want)))
    assert listed == want, (
        "scripts/build-images.sh --list should print the catalogue's services, then aula:\n\n"
        + "\n".join("\t".join(w) for w in want)
        + "\n\nit printed\n\n" + out
        + "\nit reads services/catalogue.toml with awk (catalogue()): keep the catalogue's layout "
        "(`key = value`, one a line) or fix catalogue()"
    )


# ------------------------------------------------------------------ scripts/e2e-compose.sh


def e2e_arrays() -> dict[str, object]:
    """The lists of scripts/e2e-compose.sh: `services=(...)` and its `declare -A` maps."""
    text = (ROOT / "scripts" / "e2e-compose.sh").read_text()
    arrays: dict[str, object] = {}
    m = re.search(r"^services=\(([^)]*)\)", text, re.M)
    arrays["services"] = m.group(1).split() if m else None
    for name in ("grpc_port", "metrics_port", "grpc_service"):
        m = re.search(rf"^declare -A {name}=\(([^)]*)\)", text, re.M)
        arrays[name] = dict(re.findall(r"\[([^\]]+)\]=(\S+)", m.group(1))) if m else None
    return arrays


def test_e2e_compose_checks_every_grpc_service_of_the_catalogue():
    grpc = [s for s in CATALOGUE if "grpc" in s]
    want = {
        "services": GRPC,
        "grpc_port": {s["name"]: str(s["port"]) for s in grpc},
        "metrics_port": {s["name"]: str(s["metrics_port"]) for s in grpc},
        "grpc_service": {s["name"]: s["grpc"] for s in grpc},
    }
    got = e2e_arrays()
    assert got == want, "scripts/e2e-compose.sh: its lists should read\n\n" + "\n".join(
        [f"services=({' '.join(GRPC)})"]
        + [
            f"declare -A {name}=(" + " ".join(f"[{n}]={v}" for n, v in want[name].items()) + ")"
            for name in ("grpc_port", "metrics_port", "grpc_service")
        ]
    )


# ------------------------------------------------------------------ Prometheus


def scrape_jobs(config: str) -> dict[str, dict]:
    text = (ROOT / "observability" / "prometheus" / config).read_text()
    return {j["job_name"]: j for j in yaml.safe_load(text)["scrape_configs"]}


def compose_job(s: dict) -> dict:
    """prometheus.yml (compose): every replica, through the compose DNS name."""
    return {
        "job_name": s["name"],
        "dns_sd_configs": [{"names": [s["name"]], "type": "A", "port": s["metrics_port"], "refresh_interval": "15s"}],
    }


def local_job(s: dict) -> dict:
    """prometheus.local.yml: `aula up` on this host."""
    return {"job_name": s["name"], "static_configs": [{"targets": [f"127.0.0.1:{s['metrics_port']}"]}]}


def as_yaml(jobs: list[dict]) -> str:
    return yaml.safe_dump(jobs, sort_keys=False, default_flow_style=None)


def test_prometheus_scrapes_every_service_as_a_job_named_after_it():
    problems = []
    for config, job in (("prometheus.yml", compose_job), ("prometheus.local.yml", local_job)):
        jobs = scrape_jobs(config)
        where = f"observability/prometheus/{config}"
        missing = [s for s in CATALOGUE if s["name"] not in jobs]
        if missing:
            problems.append(f"{where}: add to scrape_configs\n\n" + as_yaml([job(s) for s in missing]))
        extra = sorted(set(jobs) - set(NAMES) - {"prometheus"})
        if extra:
            problems.append(f"{where}: jobs {extra} scrape no service of services/catalogue.toml: remove them")
        for s in CATALOGUE:
            if s["name"] in jobs and jobs[s["name"]] != job(s):
                problems.append(f"{where}: the job {s['name']} should read\n\n" + as_yaml([job(s)]))
        if not missing and not extra and [n for n in jobs if n != "prometheus"] != NAMES:
            problems.append(f"{where}: order the jobs as the catalogue: {NAMES}")
    assert not problems, "\n".join(problems)


def test_prometheus_rules_select_the_catalogue_jobs():
    """The hand-written rules select Aula's jobs by name (a shared Prometheus scrapes other
    applications too): each `job=~` lists every service or every gRPC service, each `job=` names one,
    and AulaServiceNoTargets watches every service."""
    everyone, grpc = "|".join(NAMES), "|".join(GRPC)
    problems = []
    for f in sorted((ROOT / "observability" / "prometheus" / "rules").glob("*.yml")):
        text, where = f.read_text(), f"observability/prometheus/rules/{f.name}"
        for m in re.finditer(r'job\s*=~\s*"([^"]*)"', text):
            if m.group(1) not in (everyone, grpc):
                line = text.count("\n", 0, m.start()) + 1
                problems.append(
                    f'{where}:{line}: job=~"{m.group(1)}" should be job=~"{everyone}" (every service) '
                    f'or job=~"{grpc}" (the gRPC services)'
                )
        for m in re.finditer(r'job\s*=\s*"([^"]*)"', text):
            if m.group(1) not in NAMES:
                line = text.count("\n", 0, m.start()) + 1
                problems.append(f'{where}:{line}: job="{m.group(1)}" is no service of services/catalogue.toml')
    alerts = (ROOT / "observability" / "prometheus" / "rules" / "alerts.yml").read_text()
    watched = re.findall(r'absent\(up\{job="([^"]*)"\}\)', alerts)
    if watched != NAMES:
        problems.append(
            "observability/prometheus/rules/alerts.yml: AulaServiceNoTargets' expr should read\n\n"
            + " or ".join(f'absent(up{{job="{n}"}})' for n in NAMES)
        )
    assert not problems, "\n".join(problems)


# ------------------------------------------------------------------ README.md

NUMBERS = "zero one two three four five six seven eight nine ten eleven twelve".split()


def readme_row(s: dict) -> str:
    calls = calls_of(s["name"])
    cell = f"all {NUMBERS[len(GRPC)]}" if calls == GRPC and len(GRPC) < len(NUMBERS) else ", ".join(calls)
    return f"| {s['name']} | {s['port']} | {s['metrics_port']} | {s['summary']} | {cell} |".replace("|  |", "| |")


def test_readme_services_table_is_the_catalogue():
    header = "| service | port | metrics | what it owns | calls |"
    lines = (ROOT / "README.md").read_text().splitlines()
    assert header in lines, f"README.md: its services table starts with {header!r}"
    start = lines.index(header) + 2
    rows = []
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        rows.append(line.strip())
    want = [readme_row(s) for s in CATALOGUE]
    assert rows == want, "README.md: the services table should read\n\n" + "\n".join(
        [header, "|---|---|---|---|---|", *want]
    )
