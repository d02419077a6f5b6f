"""k8s/ is the chart rendered with its defaults, never a hand-kept copy."""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import yaml

from conftest import ROOT

spec = importlib.util.spec_from_file_location("render_k8s", ROOT / "scripts" / "render-k8s.py")
render_k8s = importlib.util.module_from_spec(spec)
spec.loader.exec_module(render_k8s)


def test_k8s_equals_a_fresh_render():
    fresh = render_k8s.generate()
    have = render_k8s.current()
    assert sorted(have) == sorted(fresh), "run scripts/render-k8s.sh"
    for name in fresh:
        assert have[name] == fresh[name], f"k8s/{name} is stale: run scripts/render-k8s.sh"


def test_kustomization_lists_every_manifest():
    kustomization = yaml.safe_load((ROOT / "k8s" / "kustomization.yaml").read_text())
    manifests = sorted(p.name for p in (ROOT / "k8s").glob("*.yaml") if p.name != "kustomization.yaml")
    assert kustomization["resources"] == manifests


def test_plain_manifests_have_no_helm_hooks_or_namespace():
    for path in (ROOT / "k8s").glob("*.yaml"):
        if path.name == "kustomization.yaml":
            continue
        for doc in yaml.safe_load_all(path.read_text()):
            meta = doc["metadata"]
            assert "namespace" not in meta, f"{path.name}: {meta['name']}"
            assert "helm.sh/hook" not in (meta.get("annotations") or {})


def test_check_mode_passes():
    out = subprocess.run([sys.executable, ROOT / "scripts" / "render-k8s.py", "--check"], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr


def test_kustomize_builds():
    import shutil

    import pytest

    kubectl = shutil.which("kubectl")
    if not kubectl:
        pytest.skip("kubectl is not installed")
    out = subprocess.run([kubectl, "kustomize", str(ROOT / "k8s")], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    kinds = [d["kind"] for d in yaml.safe_load_all(out.stdout) if d]
    assert kinds.count("Deployment") == 7
