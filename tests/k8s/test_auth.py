"""End-user authentication (docs/AUTH.md): auth.* turns AULA_AUTH=jwt on in every service and
the gateway, with the key set from a URL or a ConfigMap; a configuration that cannot work fails
the install naming what to set; NOTES.txt warns while it is off."""

from __future__ import annotations

import json

import kubernetes_validate.utils as kv
import pytest

from conftest import KUBE_VERSIONS, SERVICES, render, strip_meta

JWKS = json.dumps({"keys": [{"kty": "OKP", "crv": "Ed25519", "x": "AAAA", "kid": "k1"}]})
BASE = {"issuer": "https://id.example.com/realms/aula", "audience": "aula"}


def envs(r):
    for name in SERVICES:
        dep = r.get("Deployment", r.fullname(name))
        if dep is None:
            continue
        pod = dep["spec"]["template"]["spec"]
        c = pod["containers"][0]
        yield name, pod, c, {e["name"]: e.get("value") for e in c["env"]}


def test_off_by_default_and_notes_warn():
    r = render()
    for _, _, _, env in envs(r):
        assert "AULA_AUTH" not in env
    assert "end-user authentication is off" in r.notes


def test_an_inline_key_set_is_a_configmap_every_pod_reads():
    r = render({"auth": {"enabled": True, "jwks": JWKS, "trustNetwork": True, **BASE}})
    cm = r.get("ConfigMap", f"{r.release}-auth-jwks")
    assert json.loads(cm["data"]["jwks.json"]) == json.loads(JWKS)
    seen = 0
    for name, pod, c, env in envs(r):
        seen += 1
        assert env["AULA_AUTH"] == "jwt", name
        assert env["AULA_JWT_JWKS"] == "/etc/aula/auth/jwks.json", name
        assert env["AULA_JWT_ISSUER"] == BASE["issuer"], name
        assert env["AULA_JWT_AUDIENCE"] == "aula", name
        assert env["AULA_AUTH_TRUST_NETWORK"] == "1", name
        mounts = {m["name"]: m for m in c["volumeMounts"]}
        assert mounts["auth-jwks"]["mountPath"] == "/etc/aula/auth", name
        volumes = {v["name"]: v for v in pod["volumes"]}
        assert volumes["auth-jwks"]["configMap"]["name"] == f"{r.release}-auth-jwks", name
    assert seen == len(SERVICES)
    assert "end-user authentication is off" not in r.notes


def test_a_provider_url_with_mtls():
    r = render(
        {
            "tls": {"enabled": True},
            "auth": {"enabled": True, "jwksUrl": "https://id.example.com/certs", **BASE},
        }
    )
    assert r.get("ConfigMap", f"{r.release}-auth-jwks") is None
    for name, _, _, env in envs(r):
        assert env["AULA_JWT_JWKS"] == "https://id.example.com/certs", name
        assert "AULA_AUTH_TRUST_NETWORK" not in env, name


@pytest.mark.parametrize(
    "auth, message",
    [
        ({"jwks": JWKS, "trustNetwork": True}, "set auth.issuer and auth.audience"),
        ({"trustNetwork": True, **BASE}, "exactly one of auth.jwksUrl"),
        (
            {"jwks": JWKS, "jwksUrl": "https://id.example.com/certs", "trustNetwork": True, **BASE},
            "exactly one of auth.jwksUrl",
        ),
        ({"jwks": JWKS, **BASE}, "auth.trustNetwork"),
    ],
)
def test_what_cannot_work_fails_naming_what_to_set(auth, message):
    with pytest.raises(Exception) as e:
        render({"auth": {"enabled": True, **auth}})
    assert message in str(e.value)


# A CA certificate as `--set-file auth.jwksCa=ca.crt` passes it: several lines, final newline.
CA_PEM = (
    "-----BEGIN CERTIFICATE-----\n"
    "MIIBfTCCASOgAwIBAgIUYXVsYS10ZXN0LWNhLW5vdC1yZWFsMAoGCCqGSM49BAMC\n"
    "MBQxEjAQBgNVBAMMCWF1bGEgdGVzdDAeFw0yNjAxMDEwMDAwMDBaFw0zNjAxMDEw\n"
    "-----END CERTIFICATE-----\n"
)
IN_CLUSTER = {
    "enabled": True,
    "jwksUrl": "https://keycloak.auth.svc:8443/realms/aula/protocol/openid-connect/certs",
    "trustNetwork": True,
    **BASE,
}


def test_a_private_ca_for_the_jwks_url_is_mounted_in_every_pod():
    r = render({"auth": {**IN_CLUSTER, "jwksCa": CA_PEM}})
    cm = r.get("ConfigMap", f"{r.release}-auth-jwks-ca")
    assert cm["data"] == {"ca.crt": CA_PEM}, "the PEM byte for byte"
    checksums = set()
    for name, pod, c, env in envs(r):
        assert env["AULA_JWT_JWKS"] == IN_CLUSTER["jwksUrl"], name
        assert env["AULA_JWT_JWKS_CA"] == "/etc/aula/auth-ca/ca.crt", name
        [mount] = [m for m in c["volumeMounts"] if m["name"] == "auth-jwks-ca"]
        assert mount == {"name": "auth-jwks-ca", "mountPath": "/etc/aula/auth-ca", "readOnly": True}, name
        [vol] = [v for v in pod["volumes"] if v["name"] == "auth-jwks-ca"]
        assert vol["configMap"]["name"] == f"{r.release}-auth-jwks-ca", name
        dep = r.get("Deployment", r.fullname(name))
        checksums.add(dep["spec"]["template"]["metadata"]["annotations"]["checksum/auth-jwks-ca"])
    # Read at start only: another CA changes the pod template, so the pods restart with it.
    other = render({"auth": {**IN_CLUSTER, "jwksCa": CA_PEM.replace("MIIB", "MIIC")}})
    dep = other.get("Deployment", other.fullname("cursos"))
    assert len(checksums) == 1
    assert dep["spec"]["template"]["metadata"]["annotations"]["checksum/auth-jwks-ca"] not in checksums


@pytest.mark.parametrize("kube_version", KUBE_VERSIONS)
def test_the_ca_objects_validate_strict(kube_version):
    r = render({"auth": {**IN_CLUSTER, "jwksCa": CA_PEM}})
    for obj in r.objects:
        if obj["kind"] in ("ConfigMap", "Deployment"):
            kv.validate(strip_meta(obj), kube_version, strict=True)


def test_without_a_ca_the_public_roots_verify_the_jwks_url():
    r = render({"auth": IN_CLUSTER})
    assert r.get("ConfigMap", f"{r.release}-auth-jwks-ca") is None
    for name, pod, c, env in envs(r):
        assert "AULA_JWT_JWKS_CA" not in env, name
        assert not [v for v in pod["volumes"] if v["name"] == "auth-jwks-ca"], name
    # Off, a CA left in the values mounts nothing.
    r = render({"auth": {"enabled": False, "jwksCa": CA_PEM}})
    assert r.get("ConfigMap", f"{r.release}-auth-jwks-ca") is None


@pytest.mark.parametrize(
    "auth, message",
    [
        # An inline key set is fetched from nowhere: a CA for it means a misunderstanding.
        ({"enabled": True, "jwks": JWKS, "trustNetwork": True, "jwksCa": CA_PEM, **BASE}, "auth.jwksCa"),
        # Not a PEM certificate (a path, a key): refused by the schema at install.
        ({**IN_CLUSTER, "jwksCa": "/etc/ssl/my-ca.crt"}, "jwksCa"),
        ({**IN_CLUSTER, "jwksCa": "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"}, "jwksCa"),
    ],
)
def test_a_ca_that_cannot_work_is_refused(auth, message):
    with pytest.raises(Exception) as e:
        render({"auth": auth})
    assert message in str(e.value)
