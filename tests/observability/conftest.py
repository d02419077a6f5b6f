"""Fixtures of the live tests: `aula up` on its contract ports, traffic, and a real Prometheus on a
free 127.0.0.1 port scraping it with observability/prometheus/prometheus.local.yml and its rules."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import pytest
import requests
import yaml

import contract

AULA_BIN = Path(os.environ.get("AULA_BIN", str(contract.REPO / "target" / "debug" / "aula")))
STARTUP_TIMEOUT = 90.0


def wait_for(what: str, check, timeout: float, interval: float = 0.25):
    """Polls `check` until it returns a true value; fails naming `what` (and the last error)."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            value = check()
            if value:
                return value
        except Exception as e:  # noqa: BLE001 - reported when the wait gives up
            last = e
        time.sleep(interval)
    pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}" + (f" (last error: {last!r})" if last else ""))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_in_use(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


class Process:
    """A child in its own process group, stopped with SIGTERM (then SIGKILL) to that group only."""

    def __init__(self, name: str, argv: list[str], log: Path, env: dict | None = None, cwd: Path | None = None):
        self.name, self.log = name, log
        self._out = open(log, "wb")
        self.proc = subprocess.Popen(
            argv, stdout=self._out, stderr=subprocess.STDOUT, env=env, cwd=cwd, start_new_session=True
        )

    def alive(self) -> bool:
        return self.proc.poll() is None

    def check_alive(self) -> bool:
        if not self.alive():
            pytest.fail(f"{self.name} exited with {self.proc.returncode}:\n{tail(self.log)}")
        return True

    def stop(self, grace: float = 15.0) -> None:
        if self.alive():
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(grace)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.proc.wait(5)
        self._out.close()


@dataclass
class Prometheus:
    url: str
    started: float = field(default_factory=time.time)

    def get(self, path: str, **params) -> dict:
        r = requests.get(self.url + path, params=params, timeout=15)
        body = r.json()
        assert body.get("status") == "success", f"{path} {params}: {body}"
        return body["data"]

    def query(self, expr: str) -> list[dict]:
        return self.get("/api/v1/query", query=expr)["result"]

    def query_range(self, expr: str, seconds: int = 60, step: int = 5) -> list[dict]:
        end = time.time()
        return self.get("/api/v1/query_range", query=expr, start=end - seconds, end=end, step=step)["result"]


def _ts(value: str) -> float:
    # Prometheus reports RFC 3339 with nanoseconds; Python parses microseconds.
    value = value.replace("Z", "+00:00")
    if "." in value:
        head, rest = value.split(".", 1)
        digits = "".join(c for c in rest if c.isdigit())
        value = f"{head}.{digits[:6]}{rest[len(digits):]}"
    return datetime.fromisoformat(value).timestamp()


@dataclass
class Stack:
    prometheus: Prometheus
    traffic: dict
    workdir: Path
    gemini_requests: list
    env: dict


def start_prometheus(work: Path, rules: Path, name: str) -> tuple[Process, Prometheus]:
    """A real Prometheus on a free 127.0.0.1 port, configured as a user would
    (observability/prometheus/prometheus.local.yml) with the rule files in `rules`, and a 1 s scrape
    and evaluation interval. Its files and data go under `work/name`."""
    prometheus_exe = shutil.which("prometheus")
    if not prometheus_exe:
        pytest.fail("prometheus not found: apt-get install -y prometheus (scripts/test-observability.sh does)")
    home = work / name
    home.mkdir(exist_ok=True)
    port = free_port()
    config = yaml.safe_load((contract.OBS / "prometheus" / "prometheus.local.yml").read_text())
    config["global"].update(scrape_interval="1s", scrape_timeout="1s", evaluation_interval="1s")
    config["rule_files"] = [str(rules / "*.yml")]
    for job in config["scrape_configs"]:
        if job["job_name"] == "prometheus":
            job["static_configs"] = [{"targets": [f"127.0.0.1:{port}"]}]
    (home / "prometheus.yml").write_text(yaml.safe_dump(config, sort_keys=False))
    proc = Process(
        name,
        [
            prometheus_exe,
            f"--config.file={home / 'prometheus.yml'}",
            f"--storage.tsdb.path={home / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--log.level=warn",
        ],
        work / f"{name}.log",
    )
    return proc, Prometheus(f"http://127.0.0.1:{port}")


def wait_for_targets(proc: Process, p: Prometheus, services: int) -> None:
    """Waits for Prometheus to answer and every target (the services and itself) to be up."""
    wait_for("Prometheus ready", lambda: proc.check_alive() and requests.get(p.url + "/-/ready", timeout=2).ok, 30)

    def all_targets_up():
        active = p.get("/api/v1/targets", state="active")["activeTargets"]
        return len(active) == services + 1 and all(t["health"] == "up" for t in active)

    wait_for("every target up", all_targets_up, 30)


@pytest.fixture(scope="session")
def stack(tmp_path_factory) -> Stack:
    if not AULA_BIN.exists():
        pytest.fail(f"AULA_BIN={AULA_BIN} does not exist: `cargo build -p aula` first (or set AULA_BIN)")
    if not shutil.which("prometheus"):
        pytest.fail("prometheus not found: apt-get install -y prometheus (scripts/test-observability.sh does)")

    services = contract.services()
    busy = [p for s in services for p in (s.port, s.metrics_port) if port_in_use(p)]
    if busy:
        pytest.fail(f"ports {busy} are taken on 127.0.0.1: is another `aula up` running? The live test needs them.")

    work = tmp_path_factory.mktemp("aula-obs")
    from fake_gemini import FakeGemini
    import traffic

    with FakeGemini() as gemini:
        env = {
            **os.environ,
            "AULA_DATA_DIR": str(work / "data"),
            "RUST_LOG": os.environ.get("RUST_LOG", "info"),
            "GEMINI_API_KEY": "fake-key-for-tests",
            "GEMINI_BASE_URL": gemini.base_url,
            "CPAR_REMINDER_INTERVAL": "1s",
            "CPAR_REMINDER_LEAD": "1h",
        }
        env.pop("OTEL_EXPORTER_OTLP_ENDPOINT", None)
        (work / "data").mkdir()
        aula = Process("aula up", [str(AULA_BIN), "up"], work / "aula.log", env=env, cwd=work)
        prom = None
        try:
            prom, p = start_prometheus(work, contract.OBS / "prometheus" / "rules", "prometheus")

            def metrics_served():
                aula.check_alive()
                for s in services:
                    requests.get(f"http://127.0.0.1:{s.metrics_port}/metrics", timeout=2).raise_for_status()
                return True

            try:
                wait_for("every /metrics of `aula up`", metrics_served, STARTUP_TIMEOUT)
            except BaseException:
                print(tail(aula.log))
                raise
            wait_for_targets(prom, p, len(services))

            # Traffic: the gRPC client, the gateway, and `aula load` when the binary has it.
            codes = traffic.run(work / "stubs", {s.name: s.port for s in services if s.grpc_service})
            gateway = next(s for s in services if s.name == "gateway")
            # The seed's REST routes (each a gRPC call from the gateway), health, and a 404.
            for path in (
                "/cursos", "/cursos/ver_inscricoes_do_usuario/1", "/cursos/consumir_midia_curso/1", "/chatbot",
                "/cpar", "/cpar/notificar_agendamento/1", "/notificacoes", "/insights", "/midia_conteudo",
                "/midia_conteudo/1", "/cursos/ver_inscricoes_do_usuario/abc",
                "/healthz", "/livez", "/readyz", "/no-such-route",
            ):
                try:
                    codes[(f"GET {path}", requests.get(f"http://127.0.0.1:{gateway.port}{path}", timeout=10).status_code)] += 1
                except requests.RequestException as e:
                    codes[(f"GET {path}", type(e).__name__)] += 1
            if subprocess.run([str(AULA_BIN), "load", "--help"], capture_output=True, env=env).returncode == 0:
                load = subprocess.run(
                    [str(AULA_BIN), "load", "--duration", "5s"], capture_output=True, text=True, env=env, timeout=60
                )
                codes[("aula load", "exit %d" % load.returncode)] += 1
            print("traffic:", dict(codes))
            done = time.time()

            # Every target scraped, and every rule group evaluated, after the traffic.
            def scraped_after(t):
                active = p.get("/api/v1/targets", state="active")["activeTargets"]
                return all(_ts(x["lastScrape"]) > t and x["health"] == "up" for x in active)

            wait_for("a scrape of every target after the traffic", lambda: scraped_after(done + 0.5), 20)
            scraped = time.time()
            # cpar sends reminders on its own timer: give it a few intervals to show up.
            try:
                wait_for(
                    "a reminder",
                    lambda: p.query("sum(aula_reminders_sent_total) > 0") and scraped_after(time.time()),
                    10,
                )
            except pytest.fail.Exception:
                pass

            def evaluated_after(t):
                groups = p.get("/api/v1/rules")["groups"]
                return groups and all(_ts(g["lastEvaluation"]) > t for g in groups)

            wait_for("every rule group evaluated after the traffic", lambda: evaluated_after(scraped), 20)
            yield Stack(prometheus=p, traffic=dict(codes), workdir=work, gemini_requests=gemini.requests, env=env)
        finally:
            if prom:
                prom.stop()
            aula.stop()
            print(f"logs: {work}/aula.log {work}/prometheus.log")


# trylast: after pytest's own reordering by fixture scope, which could otherwise undo this.
@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items):
    """The drills (test_drills.py) switch fault flags on in the shared stack: they run last, so the
    tests of a healthy platform never see their failures."""
    items.sort(key=lambda item: item.get_closest_marker("drill") is not None)
