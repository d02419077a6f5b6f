"""The places that repeat services/catalogue.toml by hand, checked against it: the Dockerfile's
image stages, scripts/build-images.sh's images and ports (it reads the catalogue: this checks its
reading), the Prometheus scrape jobs and the job selectors of the rules in observability/prometheus/,
and README.md's services table. (The Grafana dashboards are generated from docs/CONFIG.md's tables,
which test_callers.py holds to the catalogue.)

Each failure says what to write where: add a service to the catalogue, run this file, and it lists
every line still missing."""

from __future__ import annotations

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
