"""End-user authentication (docs/AUTH.md): auth.* turns AULA_AUTH=jwt on in every service and
the gateway, with the key set from a URL or a ConfigMap; a configuration that cannot work fails
the install naming what to set; NOTES.txt warns while it is off."""

from __future__ import annotations

import json

import pytest

from conftest import SERVICES, render

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
