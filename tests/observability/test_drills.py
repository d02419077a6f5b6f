"""Fault drills (docs/FLAGS.md, #19) in the running `aula up` of the live test: each fault flag,
switched on with `aula flags set`, makes the alert docs/FLAGS.md names reach `firing` in a real
Prometheus; with every flag off no alert fires; switched off, they resolve. No restart anywhere.

The shipped rules wait minutes (`for: 5m`, windows of 5 minutes to 3 days). The Prometheus here
loads a copy in which every duration (`for:` and every range) is divided by TIME_SCALE and nothing
else changes: the same expressions and thresholds on a clock 30 times faster (5m -> 10s). The real
windows are tested by promtool (observability/prometheus/tests/alerts_test.yml). The flags run in
parallel, one service each, so the whole drill takes about two minutes."""

from __future__ import annotations

import collections
import re
import subprocess
import threading
import time
from pathlib import Path

import grpc
import pytest
import yaml

import contract
import traffic
from conftest import AULA_BIN, start_prometheus, wait_for, wait_for_targets

pytestmark = [pytest.mark.live, pytest.mark.drill]

TIME_SCALE = 30
# With every flag off, the load runs this long (more than the longest `for:` of an alert the load
# could trip, 10m / 30 = 20 s for AulaGeminiFailing) while no alert may fire.
BASELINE_SECONDS = 25
FIRE_TIMEOUT = 120
RESOLVE_TIMEOUT = 120

# (flag, variant, alerts it must fire as (alertname, labels that must match)). Each on its own
# service, so the drills run at once and each alert is told apart by its job.
DRILLS = [
    ("fault.cursos.error_ratio", "50%", [("AulaHighErrorRatio", {"job": "cursos"})]),
    # error_code names the code error_ratio fails with: a server-side code fires the same alert.
    ("fault.cpar.error_code", "INTERNAL", [("AulaHighErrorRatio", {"job": "cpar"})]),
    ("fault.insights.latency_ms", "500ms", [("AulaLatencySLOBudgetBurnFast", {"job": "insights"})]),
    # cursos calls midia (GetCourseMedia): the caller sees its peer calls fail too.
    (
        "fault.midia.unavailable",
        "on",
        [
            ("AulaHighErrorRatio", {"job": "midia"}),
            ("AulaPeerCallsFailing", {"job": "cursos", "grpc_service": "services.MidiaConteudoService"}),
        ],
    ),
    ("fault.chatbot.gemini_outage", "on", [("AulaGeminiFailing", {"job": "chatbot"})]),
]
# Set with the drills above (error_code alone injects nothing).
ALSO_SET = [("fault.cpar.error_ratio", "50%")]
# Every flag that injects fires the drill alert, labelled with the flag that injected.
DRILL_ALERTS = [
    ("AulaFaultDrillRunning", {"job": job, "flag": flag})
    for job, flag in (
        ("cursos", "fault.cursos.error_ratio"),
        ("cpar", "fault.cpar.error_ratio"),
        ("insights", "fault.insights.latency_ms"),
        ("midia", "fault.midia.unavailable"),
        ("chatbot", "fault.chatbot.gemini_outage"),
    )
]
# Services no flag touches: nothing may fire about them.
UNTOUCHED = {"notificacoes", "gateway"}
# The slow latency burn keeps firing after a latency drill by design: its windows (1 d and 3 d,
# here 48 min and 2.4 h) still hold the slow calls, the error budget they spent stays spent.
STAYS_AFTER_A_LATENCY_DRILL = "AulaLatencySLOBudgetBurnSlow"
# The latency SLO alerts measure the machine too: on this clock 10 s of calls over 100 ms fire the
# fast burn, which a debug build on two shared cores can do by itself. They are held to silence
# only where the latency drill runs (insights), so that its alert is the flag's doing; every other
# alert is held to silence everywhere.
LATENCY_SLO = {"AulaLatencySLOBudgetBurnFast", "AulaLatencySLOBudgetBurnSlow"}
LATENCY_DRILLED = "insights"


def machine_dependent(alert: dict) -> bool:
    labels = alert["labels"]
    return labels["alertname"] in LATENCY_SLO and labels.get("job") != LATENCY_DRILLED

_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}
_DURATION = re.compile(r"(\d+)(ms|[smhdwy])")


def scaled(duration: str) -> str:
    """A Prometheus duration divided by TIME_SCALE, in whole seconds (at least 2 s: two scrapes)."""
    parts = _DURATION.findall(duration)
    assert parts and "".join(n + u for n, u in parts) == duration, f"not a duration: {duration!r}"
    seconds = sum(int(n) * _UNITS[u] for n, u in parts)
    return f"{max(2, round(seconds / TIME_SCALE))}s"


def render_fast_rules(dest: Path) -> None:
    """observability/prometheus/rules/*.yml with every duration divided by TIME_SCALE."""
    dest.mkdir(parents=True, exist_ok=True)
    for path in sorted((contract.OBS / "prometheus" / "rules").glob("*.yml")):
        doc = yaml.safe_load(path.read_text())
        for group in doc["groups"]:
            for rule in group["rules"]:
                expr = re.sub(r"\[(\w+)\]", lambda m: f"[{scaled(m.group(1))}]", rule["expr"])
                # Nothing left on the real clock (a subquery or an offset would need scaling too).
                assert not re.search(r"\[[^\]]*:|\boffset\b", expr), f"scale this too: {expr}"
                rule["expr"] = expr
                if "for" in rule:
                    rule["for"] = scaled(rule["for"])
        (dest / path.name).write_text(yaml.safe_dump(doc, sort_keys=False))


def aula_flags(env: dict, *args: str) -> str:
    """`aula flags ...` on the stack's data directory, as a user would type it."""
    out = subprocess.run(
        [str(AULA_BIN), "flags", "--data-dir", env["AULA_DATA_DIR"], *args],
        capture_output=True, text=True, env=env, timeout=30,
    )
    assert out.returncode == 0, f"aula flags {' '.join(args)}: {out.stderr}"
    return out.stdout


class Load:
    """Calls each service RATE times a second from a background thread, as futures (a delayed
    service does not slow the others), at most MAX_IN_FLIGHT at once; counts the codes."""

    RATE = 5
    MAX_IN_FLIGHT = 300

    def __init__(self, stubs_dir: Path):
        pb, rpc = traffic.stubs(stubs_dir)
        ports = {s.name: s.port for s in contract.grpc_services()}
        self.channels = {n: grpc.insecure_channel(f"127.0.0.1:{p}") for n, p in ports.items()}
        ch = self.channels
        cursos = rpc.CursosServiceStub(ch["cursos"])
        self.calls = [
            ("cursos.GetUserCourses", cursos.GetUserCourses, pb.GetUserCoursesRequest(id_usuario="1")),
            ("cursos.GetCourseMedia", cursos.GetCourseMedia, pb.GetCourseMediaRequest(id_curso="1")),
            ("cpar.ListSchedules", rpc.CPARServiceStub(ch["cpar"]).ListSchedules,
             pb.ListSchedulesRequest(id_usuario="1", page_size=10)),
            ("insights.GetCourseInsights", rpc.InsightsServiceStub(ch["insights"]).GetCourseInsights,
             pb.GetCourseInsightsRequest(id_curso="1")),
            ("midia.GetMedia", rpc.MidiaConteudoServiceStub(ch["midia"]).GetMedia,
             pb.GetCourseMediaRequest(id_curso="1")),
            ("chatbot.ResolveDuvida", rpc.ChatbotServiceStub(ch["chatbot"]).ResolveDuvida,
             pb.ChatbotDuvidaRequest(aula_contexto="Aula 3", duvida="O que e recursao?", id_curso="1")),
            ("notificacoes.ListNotifications", rpc.NotificacoesServiceStub(ch["notificacoes"]).ListNotifications,
             pb.ListNotificationsRequest(id_usuario="1", page_size=10)),
        ]
        self.codes: collections.Counter = collections.Counter()
        self.in_flight = 0
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _done(self, name, fut):
        with self.lock:
            self.in_flight -= 1
            self.codes[(name, fut.code().name)] += 1

    def _run(self):
        tick = 1 / self.RATE
        while not self.stopping.wait(tick):
            for name, method, req in self.calls:
                with self.lock:
                    if self.in_flight >= self.MAX_IN_FLIGHT:
                        continue
                    self.in_flight += 1
                method.future(req, timeout=10).add_done_callback(lambda f, n=name: self._done(n, f))

    def start(self):
        self.thread.start()
        return self

    def stop(self):
        self.stopping.set()
        self.thread.join(5)
        deadline = time.monotonic() + 15
        while self.in_flight and time.monotonic() < deadline:
            time.sleep(0.1)
        for c in self.channels.values():
            c.close()


def alerts(p, states=("pending", "firing")) -> list[dict]:
    return [a for a in p.get("/api/v1/alerts")["alerts"] if a["state"] in states]


def show(alert: dict) -> str:
    labels = ", ".join(f"{k}={v}" for k, v in sorted(alert["labels"].items()) if k not in ("severity",))
    return f"{alert['state']} {{{labels}}}"


def matches(alert: dict, name: str, labels: dict) -> bool:
    return alert["labels"].get("alertname") == name and all(alert["labels"].get(k) == v for k, v in labels.items())


@pytest.fixture(scope="module")
def drill(stack):
    """A second real Prometheus, with the fast copy of the rules, scraping the live stack under a
    steady load; every flag off at the start and at the end."""
    rules = stack.workdir / "fast-rules"
    render_fast_rules(rules)
    aula_flags(stack.env, "clear")
    proc, p = start_prometheus(stack.workdir, rules, "prometheus-drill")
    load = None
    try:
        wait_for_targets(proc, p, len(contract.services()))
        load = Load(stack.workdir / "stubs").start()
        yield p, load
    finally:
        aula_flags(stack.env, "clear")
        if load:
            load.stop()
            print("drill load:", dict(load.codes))
        proc.stop()


def test_fast_rules_load_and_evaluate(drill):
    p, _ = drill
    wait_for("every rule group of the fast rules evaluated", lambda: all(g["lastEvaluation"][:4] != "0001" for g in p.get("/api/v1/rules")["groups"]), 20)
    rules = [r for g in p.get("/api/v1/rules")["groups"] for r in g["rules"]]
    assert rules and [r["name"] for r in rules if r["health"] != "ok" or r.get("lastError")] == []


def test_no_alert_with_every_flag_off(drill):
    p, load = drill
    seen, pending = set(), set()
    deadline = time.monotonic() + BASELINE_SECONDS
    while time.monotonic() < deadline:
        now = alerts(p)
        seen |= {show(a) for a in now if a["state"] == "firing" and not machine_dependent(a)}
        pending |= {show(a) for a in now if a["state"] == "pending"}
        time.sleep(1)
    assert sum(load.codes.values()) > 100, f"too little load: {dict(load.codes)}"
    # Pending is allowed (a busy machine can make a few debug-build calls slower than the SLO's
    # 100 ms for a moment), firing is not.
    print("pending with every flag off:", sorted(pending))
    print("machine-dependent, firing:", sorted(show(a) for a in alerts(p, ("firing",)) if machine_dependent(a)))
    assert seen == set(), "alerts firing with every fault flag off"


@pytest.fixture(scope="module")
def drills_on(drill, stack):
    """Every drill switched on with `aula flags set`; waits until every expected alert fires (or
    FIRE_TIMEOUT); returns the firing alerts and the seconds each expected alert took."""
    p, _ = drill
    for flag, variant in [(f, v) for f, v, _ in DRILLS] + ALSO_SET:
        aula_flags(stack.env, "set", flag, variant)
    listing = aula_flags(stack.env, "list")
    start = time.monotonic()
    expected = [a for _, _, alist in DRILLS for a in alist] + DRILL_ALERTS
    took: dict[tuple, float] = {}
    firing: list[dict] = []
    while time.monotonic() - start < FIRE_TIMEOUT:
        firing = alerts(p, ("firing",))
        for name, labels in expected:
            key = (name, tuple(sorted(labels.items())))
            if key not in took and any(matches(a, name, labels) for a in firing):
                took[key] = time.monotonic() - start
        if len(took) == len(expected):
            break
        time.sleep(1)
    print("flags on:\n" + listing)
    print("fired after (s):", {f"{n}{dict(l)}": round(t) for (n, l), t in took.items()})
    return firing, took


@pytest.mark.parametrize(
    "flag, variant, expected", [pytest.param(*d, id=d[0]) for d in DRILLS]
)
def test_flag_fires_its_alert(drills_on, flag, variant, expected):
    firing, took = drills_on
    missing = [(n, l) for n, l in expected if (n, tuple(sorted(l.items()))) not in took]
    assert missing == [], f"{flag}={variant}: not firing within {FIRE_TIMEOUT}s; firing: {[show(a) for a in firing]}"


def test_each_injecting_flag_fires_the_drill_alert(drills_on):
    firing, took = drills_on
    missing = [l["flag"] for n, l in DRILL_ALERTS if (n, tuple(sorted(l.items()))) not in took]
    assert missing == [], f"AulaFaultDrillRunning not firing for {missing}; firing: {[show(a) for a in firing]}"


def test_error_code_is_the_code_counted(drill, drills_on):
    p, _ = drill
    codes = {r["metric"]["grpc_code"] for r in p.query('sum by (grpc_code) (increase(grpc_server_handled_total{job="cpar"}[30s])) > 0')}
    assert "Internal" in codes and "Unavailable" not in codes, codes


def test_untouched_services_stay_quiet(drills_on):
    firing, _ = drills_on
    noisy = [show(a) for a in firing if a["labels"].get("job") in UNTOUCHED and not machine_dependent(a)]
    assert noisy == []


def test_alerts_resolve_once_every_flag_is_off(drill, drills_on, stack):
    p, load = drill
    aula_flags(stack.env, "clear")
    start = time.monotonic()
    left: list[dict] = []
    while time.monotonic() - start < RESOLVE_TIMEOUT:
        left = [
            a for a in alerts(p, ("firing",))
            if a["labels"]["alertname"] != STAYS_AFTER_A_LATENCY_DRILL and not machine_dependent(a)
        ]
        if not left:
            break
        time.sleep(1)
    assert left == [], f"still firing {RESOLVE_TIMEOUT}s after `aula flags clear`: {[show(a) for a in left]}"
    print(f"every alert resolved {time.monotonic() - start:.0f}s after `aula flags clear`")
    # The load went on all along: the alerts resolved because the calls succeed again.
    before = sum(load.codes.values())
    time.sleep(2)
    assert sum(load.codes.values()) > before
