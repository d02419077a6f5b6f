"""Policy tests on every rendered pod, for every render of the values matrix."""

from __future__ import annotations

import pytest

from conftest import GRPC_SERVICES, SERVICES, parse_duration, pod_owners


def containers(spec: dict) -> list[dict]:
    return spec.get("initContainers", []) + spec["containers"]


def env_of(container: dict) -> dict[str, dict]:
    return {e["name"]: e for e in container.get("env", [])}


def service_deployments(r):
    for name in SERVICES:
        d = r.get("Deployment", r.fullname(name))
        if r.enabled(name):
            assert d is not None, name
            yield name, d
        else:
            assert d is None, name


def test_restricted_pod_security(rendered):
    owners = pod_owners(rendered)
    assert owners
    for obj, spec in owners:
        where = f"{obj['kind']}/{obj['metadata']['name']}"
        psc = spec.get("securityContext", {})
        assert psc.get("runAsNonRoot") is True, where
        assert psc.get("seccompProfile", {}).get("type") == "RuntimeDefault", where
        assert spec.get("automountServiceAccountToken") is False, where
        assert not spec.get("hostNetwork") and not spec.get("hostPID") and not spec.get("hostIPC"), where
        for c in containers(spec):
            sc = c.get("securityContext", {})
            assert sc.get("runAsNonRoot") is True, where
            assert (sc.get("runAsUser") or psc.get("runAsUser") or 0) > 0, where
            assert sc.get("readOnlyRootFilesystem") is True, where
            assert sc.get("allowPrivilegeEscalation") is False, where
            assert sc.get("privileged") in (None, False), where
            assert sc.get("capabilities", {}).get("drop") == ["ALL"], where
            assert not sc.get("capabilities", {}).get("add"), where
            assert sc.get("seccompProfile", {}).get("type") == "RuntimeDefault", where
        for v in spec.get("volumes", []):
            assert "hostPath" not in v, where


def test_service_pods_run_as_65532(rendered):
    for obj, spec in pod_owners(rendered):
        if obj["kind"] == "StatefulSet":
            continue  # PostgreSQL runs as its image's postgres user
        assert spec["securityContext"]["runAsUser"] == 65532
        for c in containers(spec):
            assert c["securityContext"]["runAsUser"] == 65532


def test_resources_requests_and_memory_limit(rendered):
    for obj, spec in pod_owners(rendered):
        for c in containers(spec):
            res = c.get("resources", {})
            assert {"cpu", "memory"} <= set(res.get("requests", {})), obj["metadata"]["name"]
            assert "memory" in res.get("limits", {}), obj["metadata"]["name"]


def test_images_and_default_command(rendered):
    image = rendered.merged["image"]
    tag = image["tag"] or "0.1.0"
    for name, d in service_deployments(rendered):
        [c] = d["spec"]["template"]["spec"]["containers"]
        assert c["image"] == f"{image['registry']}/aula/{name}:{tag}"
        assert c["imagePullPolicy"] == image["pullPolicy"]
        assert "command" not in c and "args" not in c, "the image's entrypoint is the binary"
        secrets = rendered.merged["imagePullSecrets"]
        assert [s["name"] for s in d["spec"]["template"]["spec"].get("imagePullSecrets", [])] == secrets


def test_probes(rendered):
    for name, d in service_deployments(rendered):
        svc = SERVICES[name]
        [c] = d["spec"]["template"]["spec"]["containers"]
        ports = {p["name"]: p["containerPort"] for p in c["ports"]}
        assert ports["metrics"] == svc.metrics_port
        if svc.http:
            assert ports["http"] == svc.port
            assert c["livenessProbe"]["httpGet"] == {"path": "/livez", "port": "http"}
            assert c["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
            assert c["startupProbe"]["httpGet"]["port"] == "http"
        else:
            assert ports["grpc"] == svc.port
            # Liveness asks about the server, readiness about the service: a draining pod
            # (service NOT_SERVING) leaves rotation without being restarted.
            assert c["livenessProbe"]["grpc"] == {"port": svc.port, "service": ""}
            assert c["readinessProbe"]["grpc"] == {"port": svc.port, "service": svc.grpc_service}
            assert c["startupProbe"]["grpc"]["port"] == svc.port
        start = c["startupProbe"]
        assert start["periodSeconds"] * start["failureThreshold"] >= 30


def test_graceful_shutdown(rendered):
    for name, d in service_deployments(rendered):
        spec = d["spec"]["template"]["spec"]
        [c] = spec["containers"]
        sleep = c["lifecycle"]["preStop"]["sleep"]["seconds"]
        assert "exec" not in c["lifecycle"]["preStop"], "no shell in the image"
        env = env_of(c)
        grace = parse_duration(env["AULA_SHUTDOWN_GRACE"]["value"])
        refresh = parse_duration(env["AULA_DNS_REFRESH"]["value"])
        assert sleep >= refresh, "callers must re-resolve before the pod stops"
        assert spec["terminationGracePeriodSeconds"] >= sleep + grace


def test_topology_spread(rendered):
    for name, d in service_deployments(rendered):
        tsc = d["spec"]["template"]["spec"]["topologySpreadConstraints"]
        keys = {t["topologyKey"] for t in tsc}
        assert {"kubernetes.io/hostname", "topology.kubernetes.io/zone"} <= keys
        labels = d["spec"]["template"]["metadata"]["labels"]
        for t in tsc:
            assert t["labelSelector"]["matchLabels"].items() <= labels.items()


def test_scheduling_values_pass_through(rendered):
    for name, d in service_deployments(rendered):
        spec = d["spec"]["template"]["spec"]
        v = rendered.merged["services"][name]
        assert spec.get("nodeSelector", {}) == v["nodeSelector"]
        assert spec.get("tolerations", []) == v["tolerations"]
        assert spec.get("affinity", {}) == v["affinity"]
        [c] = spec["containers"]
        assert c["resources"] == v["resources"]


def test_env_wiring(rendered):
    r = rendered
    otel = r.merged["otel"]["endpoint"]
    for name, d in service_deployments(r):
        svc = SERVICES[name]
        spec = d["spec"]["template"]["spec"]
        [c] = spec["containers"]
        env = env_of(c)
        names = [e["name"] for e in c["env"]]
        assert len(names) == len(set(names)), f"duplicate env in {name}"
        user = r.merged["services"][name]["env"]
        for k, v in user.items():
            assert env[k]["value"] == str(v), "services.<name>.env wins"
        assert env["OTEL_SERVICE_NAME"]["value"] == name
        # Peers: the headless Service of each callee, for client-side balancing.
        addrs = {k: e["value"] for k, e in env.items() if k.endswith("_ADDR")}
        expected = {f"{p.upper()}_ADDR": f"http://{r.fullname(p)}-headless:{SERVICES[p].port}" for p in svc.calls}
        assert addrs == expected
        for peer in svc.calls:
            if r.enabled(peer):
                h = r.get("Service", f"{r.fullname(peer)}-headless")
                assert h["spec"]["clusterIP"] == "None"
                assert h["spec"]["publishNotReadyAddresses"] is False
                assert SERVICES[peer].port in [p["port"] for p in h["spec"]["ports"]]
        if otel:
            assert env["OTEL_EXPORTER_OTLP_ENDPOINT"]["value"] == otel
        else:
            assert "OTEL_EXPORTER_OTLP_ENDPOINT" not in env
        mounts = {m["mountPath"]: m["name"] for m in c.get("volumeMounts", [])}
        volumes = {v["name"]: v for v in spec.get("volumes", [])}
        if not svc.stateful:
            # No tables (the catalogue's stateful = false): no database, no data directory.
            assert "DATABASE_URL" not in env and "AULA_DATA_DIR" not in env and "/data" not in mounts
        elif r.has_database:
            ref = env["DATABASE_URL"]["valueFrom"]["secretKeyRef"]
            if r.merged["database"]["existingSecret"] and not r.merged["postgresql"]["enabled"]:
                assert ref == {"name": r.merged["database"]["existingSecret"], "key": r.merged["database"]["existingSecretKey"]}
            else:
                secret = r.get("Secret", ref["name"])
                assert secret is not None and ref["key"] in secret["data"]
            assert "AULA_DATA_DIR" not in env and "/data" not in mounts
        else:
            assert "DATABASE_URL" not in env
            assert env["AULA_DATA_DIR"]["value"] == "/data"
            if r.merged["persistence"]["enabled"]:
                claim = volumes[mounts["/data"]]["persistentVolumeClaim"]
                assert claim == {"claimName": f"{r.release}-{name}-data"}
            else:
                assert "emptyDir" in volumes[mounts["/data"]]
        if name == "chatbot" and (r.merged["gemini"]["apiKey"] or r.merged["gemini"]["existingSecret"]):
            path = env["GEMINI_API_KEY_FILE"]["value"]
            mount = next(m for m in c["volumeMounts"] if path.startswith(m["mountPath"] + "/"))
            assert mount["readOnly"] is True
            secret_volume = volumes[mount["name"]]["secret"]
            key = path.rsplit("/", 1)[1]
            assert [i["key"] for i in secret_volume["items"]] == [key]
            if r.merged["gemini"]["existingSecret"]:
                assert secret_volume["secretName"] == r.merged["gemini"]["existingSecret"]
            else:
                assert key in r.get("Secret", secret_volume["secretName"])["data"]
            assert "GEMINI_API_KEY" not in env, "the key travels as a file, never in the environment"
        else:
            assert "GEMINI_API_KEY_FILE" not in env and "GEMINI_API_KEY" not in env


def test_services(rendered):
    r = rendered
    for name in SERVICES:
        svc = SERVICES[name]
        s = r.get("Service", r.fullname(name))
        if not r.enabled(name):
            assert s is None
            continue
        assert s["spec"]["type"] == "ClusterIP"
        ports = {p["name"]: p for p in s["spec"]["ports"]}
        main = ports["http" if svc.http else "grpc"]
        assert main["port"] == svc.port
        assert main["appProtocol"] == ("http" if svc.http else "grpc")
        assert ports["metrics"]["port"] == svc.metrics_port
        pod_labels = r.get("Deployment", r.fullname(name))["spec"]["template"]["metadata"]["labels"]
        assert s["spec"]["selector"].items() <= pod_labels.items()
        headless = r.get("Service", f"{r.fullname(name)}-headless")
        if svc.http:
            assert headless is None, "nothing calls the gateway"
        else:
            assert headless["spec"]["clusterIP"] == "None"
            assert headless["spec"]["publishNotReadyAddresses"] is False
            assert [p["name"] for p in headless["spec"]["ports"]] == ["grpc"], "metrics only on the ClusterIP Service"
        assert s["metadata"]["labels"]["app.kubernetes.io/name"] == name


def test_service_account_pdb_hpa(rendered):
    r = rendered
    autoscaling = r.merged["autoscaling"]
    for name, d in service_deployments(r):
        spec = d["spec"]["template"]["spec"]
        sa = r.get("ServiceAccount", spec["serviceAccountName"])
        assert sa is not None and sa["automountServiceAccountToken"] is False
        pdb = r.get("PodDisruptionBudget", r.fullname(name))
        assert pdb["spec"]["selector"]["matchLabels"] == d["spec"]["selector"]["matchLabels"]
        assert "maxUnavailable" in pdb["spec"]
        hpa = r.get("HorizontalPodAutoscaler", r.fullname(name))
        if autoscaling["enabled"]:
            assert hpa["apiVersion"] == "autoscaling/v2"
            assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": d["metadata"]["name"]}
            assert hpa["spec"]["minReplicas"] == autoscaling["minReplicas"]
            assert hpa["spec"]["maxReplicas"] == autoscaling["maxReplicas"]
            [m] = hpa["spec"]["metrics"]
            assert m["resource"]["target"]["averageUtilization"] == autoscaling["targetCPUUtilizationPercentage"]
            assert "replicas" not in d["spec"], "the HPA owns replicas"
        else:
            assert hpa is None
            assert d["spec"]["replicas"] == r.merged["services"][name]["replicas"]


def test_helm_test_pods(rendered):
    r = rendered
    pods = {p["metadata"]["name"]: p for p in r.of_kind("Pod")}
    expected = {f"{r.fullname(n)}-test" for n in SERVICES if r.enabled(n)}
    assert set(pods) == expected
    for name in SERVICES:
        if not r.enabled(name):
            continue
        pod = pods[f"{r.fullname(name)}-test"]
        assert pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
        assert pod["spec"]["restartPolicy"] == "Never"
        [c] = pod["spec"]["containers"]
        assert c["image"].endswith(f"/aula/{name}:{r.merged['image']['tag'] or '0.1.0'}")
        assert "command" not in c
        assert c["args"] == ["healthcheck", "--addr", f"http://{r.fullname(name)}:{SERVICES[name].port}"]
        assert r.get("Service", r.fullname(name)) is not None
        # Not an endpoint of the service it checks.
        s = r.get("Service", r.fullname(name))
        assert not s["spec"]["selector"].items() <= pod["metadata"]["labels"].items()


def test_postgresql(rendered):
    r = rendered
    sts = r.get("StatefulSet", r.fullname("postgresql"))
    if not r.merged["postgresql"]["enabled"]:
        assert sts is None
        return
    spec = sts["spec"]["template"]["spec"]
    [c] = spec["containers"]
    env = env_of(c)
    secret = r.get("Secret", r.fullname("postgresql"))
    assert env["POSTGRES_PASSWORD"]["valueFrom"]["secretKeyRef"] == {"name": secret["metadata"]["name"], "key": "password"}
    assert {m["mountPath"] for m in c["volumeMounts"]} >= {"/var/lib/postgresql/data", "/var/run/postgresql", "/tmp"}
    assert sts["spec"]["volumeClaimTemplates"][0]["spec"]["resources"]["requests"]["storage"] == r.merged["postgresql"]["persistence"]["size"]
    assert sts["spec"]["serviceName"] == f"{r.fullname('postgresql')}-headless"
    assert r.get("Service", r.fullname("postgresql"))["spec"]["ports"][0]["port"] == 5432


def test_one_database_url_with_escaped_password():
    import base64
    from urllib.parse import urlsplit, unquote

    from conftest import matrix_render

    r = matrix_render("everything")
    secret = r.get("Secret", "aula-postgresql")
    url = base64.b64decode(secret["data"]["url"]).decode()
    parts = urlsplit(url)
    assert parts.scheme == "postgres" and parts.hostname == "aula-postgresql" and parts.port == 5432
    assert unquote(parts.password) == "p@ss word/with:specials"
    assert base64.b64decode(secret["data"]["password"]).decode() == "p@ss word/with:specials"
    # Every stateful service reads the same URL (each keeps its own schema in it).
    refs = {
        str(e["valueFrom"]["secretKeyRef"])
        for d in r.of_kind("Deployment")
        for e in d["spec"]["template"]["spec"]["containers"][0]["env"]
        if e["name"] == "DATABASE_URL"
    }
    assert len(refs) == 1
    assert len([d for d in r.of_kind("Deployment")]) == len(SERVICES)


@pytest.mark.parametrize("svc", GRPC_SERVICES, ids=lambda s: s.name)
def test_generated_password_when_unset(svc):
    from conftest import render

    r = render({"postgresql": {"enabled": True}, "services": {svc.name: {"replicas": 2}}})
    import base64

    pw = base64.b64decode(r.get("Secret", "aula-postgresql")["data"]["password"]).decode()
    assert len(pw) == 32 and pw.isalnum()
    assert r.get("Deployment", r.fullname(svc.name))["spec"]["replicas"] == 2
