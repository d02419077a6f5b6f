"""Durable by default (#18): without a database each stateful service keeps its SQLite file on a
PersistentVolumeClaim of its own, so `helm install` with no values keeps data across pod restarts;
one pod at a time holds the file (Recreate, one replica); a database, or persistence.enabled=false,
makes no claim. helm/aula/README.md, "Storage", says why this and not the bundled PostgreSQL."""

from __future__ import annotations

import pytest

import helm_python as helm
from conftest import ROOT, SERVICES, STATEFUL, render


def claims(r) -> dict[str, dict]:
    return {o["metadata"]["name"]: o for o in r.of_kind("PersistentVolumeClaim")}


def data_volume(r, name: str) -> dict:
    pod = r.get("Deployment", r.fullname(name))["spec"]["template"]["spec"]
    [c] = pod["containers"]
    mount = next(m for m in c["volumeMounts"] if m["mountPath"] == "/data")
    return next(v for v in pod["volumes"] if v["name"] == mount["name"])


def test_the_chart_and_the_catalogue_agree_on_who_keeps_data():
    # The chart's own catalog (helpers) marks the services that get storage: the catalogue's
    # stateful ones (chatbot and the gateway keep nothing).
    import yaml

    helpers = (ROOT / "helm" / "aula" / "templates" / "_helpers.tpl").read_text()
    body = helpers.split('{{- define "aula.catalog" -}}', 1)[1].split("{{- end }}", 1)[0]
    chart = {name for name, s in yaml.safe_load(body).items() if s["stateful"]}
    assert chart == STATEFUL and STATEFUL <= set(SERVICES)


def test_defaults_keep_each_sqlite_file_on_its_own_claim():
    r = render()
    got = claims(r)
    assert set(got) == {f"aula-{n}-data" for n in STATEFUL}
    for name in sorted(STATEFUL):
        pvc = got[f"aula-{name}-data"]
        assert pvc["spec"]["accessModes"] == ["ReadWriteOnce"]
        assert pvc["spec"]["resources"]["requests"]["storage"] == "1Gi"
        assert "storageClassName" not in pvc["spec"], "the cluster's default StorageClass"
        assert pvc["metadata"]["annotations"] == {"helm.sh/resource-policy": "keep"}, "kept on uninstall"
        assert data_volume(r, name) == {"name": "data", "persistentVolumeClaim": {"claimName": f"aula-{name}-data"}}
        dep = r.get("Deployment", f"aula-{name}")
        env = {e["name"]: e.get("value") for e in dep["spec"]["template"]["spec"]["containers"][0]["env"]}
        assert env["AULA_DATA_DIR"] == "/data"
        # One pod holds the file: one replica, and the old pod is gone before the new one starts.
        assert dep["spec"]["replicas"] == 1
        assert dep["spec"]["strategy"] == {"type": "Recreate"}
    assert "PersistentVolumeClaim" in r.notes and "emptyDir" not in r.notes


def test_stateless_services_roll_and_have_no_claim():
    r = render()
    for name in set(SERVICES) - set(STATEFUL):
        dep = r.get("Deployment", f"aula-{name}")
        assert dep["spec"]["strategy"]["type"] == "RollingUpdate"
        vols = dep["spec"]["template"]["spec"]["volumes"]
        assert not any("persistentVolumeClaim" in v for v in vols)


def test_claim_values():
    r = render({"persistence": {"size": "20Gi", "storageClass": "fast-ssd", "accessMode": "ReadWriteOncePod", "keepOnUninstall": False}})
    for pvc in claims(r).values():
        assert pvc["spec"]["resources"]["requests"]["storage"] == "20Gi"
        assert pvc["spec"]["storageClassName"] == "fast-ssd"
        assert pvc["spec"]["accessModes"] == ["ReadWriteOncePod"]
        assert not pvc["metadata"].get("annotations")


def test_a_disabled_service_has_no_claim():
    r = render({"services": {"midia": {"enabled": False}}})
    assert "aula-midia-data" not in claims(r) and "aula-cursos-data" in claims(r)


@pytest.mark.parametrize(
    "values",
    [{"postgresql": {"enabled": True}}, {"database": {"url": "postgres://aula:x@db:5432/aula"}}],
    ids=["bundled-postgresql", "external-database"],
)
def test_a_database_makes_no_claim_and_rolls(values):
    r = render(values)
    assert not [n for n in claims(r) if n.endswith("-data")]
    for name in sorted(STATEFUL):
        dep = r.get("Deployment", f"aula-{name}")
        assert dep["spec"]["strategy"]["type"] == "RollingUpdate"
        mounts = [m["mountPath"] for m in dep["spec"]["template"]["spec"]["containers"][0]["volumeMounts"]]
        assert "/data" not in mounts


def test_persistence_off_is_an_empty_dir_and_says_so():
    r = render({"persistence": {"enabled": False}})
    assert claims(r) == {}
    for name in sorted(STATEFUL):
        assert "emptyDir" in data_volume(r, name)
        assert r.get("Deployment", f"aula-{name}")["spec"]["strategy"]["type"] == "RollingUpdate"
    assert "emptyDir" in r.notes and "lost" in r.notes


@pytest.mark.parametrize("values", [
    {"services": {"cursos": {"replicas": 2}}},
    {"autoscaling": {"enabled": True}},
])
def test_one_replica_per_sqlite_file_still_enforced(values):
    with pytest.raises(helm.HelmRenderError, match="needs a shared database"):
        render(values)


def test_schema_refuses_a_bad_claim():
    for bad in ({"size": "lots"}, {"accessMode": "ReadOnlyMany"}, {"enabled": "yes"}, {"nope": 1}):
        with pytest.raises(helm.HelmError):
            render({"persistence": bad})


def test_k8s_render_carries_the_claims():
    text = (ROOT / "k8s" / "persistence.yaml").read_text()
    for name in sorted(STATEFUL):
        assert f"name: aula-{name}-data" in text
    assert "persistence.yaml" in (ROOT / "k8s" / "kustomization.yaml").read_text()
