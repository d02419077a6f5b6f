"""Fault flags (docs/FLAGS.md): one ConfigMap, the `flags` value as a flagd file, mounted as a
directory into every gRPC service with AULA_FLAGS_FILE pointing at it; the gateway has none."""

from __future__ import annotations

import json

from conftest import SERVICES, render

DRILL = {
    "fault.cursos.error_ratio": {
        "state": "ENABLED",
        "variants": {"off": 0, "half": 0.5},
        "defaultVariant": "half",
    }
}


def flags_file(r) -> dict:
    cm = r.get("ConfigMap", f"{r.release}-flags")
    assert cm is not None, "the flags ConfigMap is always rendered"
    return json.loads(cm["data"]["flags.json"])


def test_defaults_are_every_flag_off():
    assert flags_file(render()) == {"flags": {}}


def test_the_flags_value_is_the_file_every_grpc_service_reads():
    r = render({"flags": DRILL})
    assert flags_file(r) == {"flags": DRILL}
    for name, svc in SERVICES.items():
        dep = r.get("Deployment", r.fullname(name))
        if dep is None:
            continue
        pod = dep["spec"]["template"]["spec"]
        container = pod["containers"][0]
        env = {e["name"]: e.get("value") for e in container["env"]}
        mounts = {m["name"]: m for m in container.get("volumeMounts", [])}
        volumes = {v["name"]: v for v in pod.get("volumes", [])}
        if svc.http:
            assert "AULA_FLAGS_FILE" not in env and "flags" not in mounts, name
            continue
        assert env["AULA_FLAGS_FILE"] == "/etc/aula/flags/flags.json", name
        # A directory mount, never subPath: kubelet only refreshes whole-volume mounts.
        assert mounts["flags"]["mountPath"] == "/etc/aula/flags" and "subPath" not in mounts["flags"], name
        assert volumes["flags"]["configMap"]["name"] == f"{r.release}-flags", name
        # Changing flags must not roll the pods (no checksum annotation of the ConfigMap).
        annotations = dep["spec"]["template"]["metadata"].get("annotations") or {}
        assert not any("flags" in k for k in annotations), name
