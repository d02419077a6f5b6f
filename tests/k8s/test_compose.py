"""docker-compose*.yml follow services/catalogue.toml, like the chart does: every service with its
image, ports, peers and healthcheck, and storage only where the catalogue says `stateful` (the
crate declares migrations). A stateless service given a DATABASE_URL, a database in PostgreSQL's
init script or a named data volume is dead configuration that tells a reader it keeps data; the
chatbot had all three until #18's review."""

from __future__ import annotations

import re
import tomllib

import pytest
import yaml

from conftest import ROOT


class _Reset:
    """Compose's `!reset` tag (docker-compose.offline.yml): the key is removed from the base."""


class _Loader(yaml.SafeLoader):
    pass


_Loader.add_constructor("!reset", lambda loader, node: _Reset())


def load(name: str) -> dict:
    return yaml.load((ROOT / name).read_text(), Loader=_Loader)


CATALOGUE = {s["name"]: s for s in tomllib.loads((ROOT / "services" / "catalogue.toml").read_text())["service"]}
NAMES = sorted(CATALOGUE)
STATEFUL = {n for n, s in CATALOGUE.items() if s["stateful"]}
GRPC = [n for n in NAMES if "grpc" in CATALOGUE[n]]
BASE = load("docker-compose.yml")
OFFLINE = load("docker-compose.offline.yml")


def env_of(service: str) -> dict:
    return BASE["services"][service].get("environment") or {}


def data_volume(service: str) -> dict | str | None:
    """The volume mounted at /data in docker-compose.yml (short or long syntax), if any."""
    for v in BASE["services"][service].get("volumes") or []:
        if isinstance(v, str) and v.split(":")[1] == "/data":
            return v
        if isinstance(v, dict) and v.get("target") == "/data":
            return v
    return None


def test_the_variants_name_only_catalogue_services():
    aula = set(NAMES)
    others = {"load", "postgres", "otel-collector", "jaeger", "prometheus", "grafana", "prometheus-host", "grafana-host"}
    assert set(BASE["services"]) == aula | others
    for variant in ("docker-compose.offline.yml", "docker-compose.mtls.yml", "docker-compose.auth.yml"):
        services = set(load(variant)["services"])
        assert aula <= services, f"{variant} leaves out {sorted(aula - services)}"
        assert services <= aula | others, f"{variant} names {sorted(services - aula - others)}"


@pytest.mark.parametrize("name", NAMES)
def test_image_ports_and_healthcheck_follow_the_catalogue(name):
    s, c = BASE["services"][name], CATALOGUE[name]
    assert s["image"] == f"aula/{name}:${{AULA_TAG:-dev}}"
    assert s["build"]["args"] == {"SERVICE": name, "GRPC_PORT": str(c["port"]), "METRICS_PORT": str(c["metrics_port"])}
    # On 127.0.0.1 only, at the catalogue's ports: README's commands work as with `aula up`.
    assert s["ports"] == [f"127.0.0.1:{c['port']}:{c['port']}", f"127.0.0.1:{c['metrics_port']}:{c['metrics_port']}"]
    assert s["healthcheck"]["test"] == ["CMD", f"/{name}", "healthcheck"]
    assert env_of(name)["OTEL_SERVICE_NAME"] == name
    assert OFFLINE["services"][name]["image"] == s["image"]


@pytest.mark.parametrize("name", NAMES)
def test_every_service_reaches_every_grpc_peer_by_name(name):
    env = env_of(name)
    for peer in GRPC:
        assert env[f"{peer.upper()}_ADDR"] == f"http://{peer}:{CATALOGUE[peer]['port']}"


@pytest.mark.parametrize("name", NAMES)
def test_storage_only_where_the_catalogue_says_stateful(name):
    s, env = BASE["services"][name], env_of(name)
    on_postgres = "postgres" in (s.get("depends_on") or {})
    volume = data_volume(name)
    named = isinstance(volume, str) or (isinstance(volume, dict) and "source" in volume)
    if name in STATEFUL:
        assert env["DATABASE_URL"] == f"postgres://aula:${{POSTGRES_PASSWORD:-aula}}@postgres:5432/{name}"
        assert on_postgres, f"{name} keeps its tables in PostgreSQL: it waits for it"
        assert volume is not None, f"{name} keeps SQLite under /data offline: a volume there"
    else:
        assert "DATABASE_URL" not in env, f"{name} owns no table (no migrations): no DATABASE_URL"
        assert not on_postgres, f"{name} never opens a database: it does not wait for PostgreSQL"
        assert not named, f"{name} keeps nothing: no named data volume ({volume})"


def test_postgres_creates_a_database_per_stateful_service_only():
    script = BASE["configs"]["postgres-databases"]["content"]
    created = set(re.findall(r"CREATE DATABASE (\w+) OWNER aula;", script))
    assert created == STATEFUL


def test_named_data_volumes_belong_to_stateful_services():
    data = {v.removesuffix("-data") for v in BASE["volumes"] if v.removesuffix("-data") in CATALOGUE}
    assert data <= STATEFUL, f"data volumes of stateless services: {sorted(data - STATEFUL)}"


@pytest.mark.parametrize("name", NAMES)
def test_offline_resets_exactly_the_database_settings_the_base_has(name):
    # Offline there is no PostgreSQL: each DATABASE_URL and each wait for it must be reset, and
    # resetting one the base does not set would only hide that the two files disagree.
    s = OFFLINE["services"][name]
    env = s.get("environment") or {}
    assert isinstance(env.get("DATABASE_URL"), _Reset) == ("DATABASE_URL" in env_of(name))
    resets_pg = isinstance((s.get("depends_on") or {}).get("postgres"), _Reset)
    assert resets_pg == ("postgres" in (BASE["services"][name].get("depends_on") or {}))
