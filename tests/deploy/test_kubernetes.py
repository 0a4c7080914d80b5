"""deploy/k8s renders with kustomize and every manifest validates, offline, against the
Kubernetes schemas (kubernetes-validate bundles them, strict: unknown fields are errors);
and the manifests say what a deployment of NeXeonAI needs."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from tests.support import PROJECT_DIR

pytestmark = pytest.mark.deploy

K8S = PROJECT_DIR / "deploy" / "k8s"
# An old Kubernetes still in upstream support (raise it as releases age out), and the newest
# schemas bundled.
VERSIONS = ("1.31.0", kubernetes_validate.latest_version() + ".0")


def kustomize(directory: Path) -> list[dict]:
    kubectl = shutil.which("kubectl")
    assert kubectl, "kubectl is needed to render deploy/k8s (kubectl kustomize)"
    rendered = subprocess.run(
        [kubectl, "kustomize", str(directory)], capture_output=True, text=True, timeout=60
    )
    assert rendered.returncode == 0, rendered.stderr
    return [doc for doc in yaml.safe_load_all(rendered.stdout) if doc]


def schema_errors(documents: list[dict]) -> list[str]:
    errors = []
    for document in documents:
        for version in VERSIONS:
            try:
                kubernetes_validate.validate(document, version, strict=True)
            except (
                kubernetes_validate.ValidationError,
                kubernetes_validate.SchemaNotFoundError,
            ) as e:
                name = f"{document['kind']}/{document['metadata']['name']}"
                errors.append(f"{name} (Kubernetes {version}): {e.message}")
    return errors


@pytest.fixture(scope="module")
def manifests() -> list[dict]:
    return kustomize(K8S)


def find(manifests: list[dict], kind: str, name: str) -> dict:
    found = [m for m in manifests if m["kind"] == kind and m["metadata"]["name"] == name]
    assert len(found) == 1, f"{kind}/{name}"
    return found[0]


def test_every_rendered_manifest_validates_against_the_kubernetes_schemas(manifests):
    assert schema_errors(manifests) == []
    kinds = sorted(m["kind"] for m in manifests)
    expected = "Namespace ConfigMap Secret Job Deployment Deployment Deployment Service Ingress"
    assert kinds == sorted([*expected.split(), "PodDisruptionBudget"])


@pytest.mark.parametrize(
    ("find_text", "broken", "message"),
    [
        ("readinessProbe:", "readynessProbe:", "readynessProbe"),  # a misspelt field
        ("replicas: 3", "replicas: three", "'three' is not of type 'integer'"),
        ("path: /readyz", "paths: /readyz", "paths"),
    ],
)
def test_the_validation_catches_a_broken_manifest(tmp_path, find_text, broken, message):
    copy = tmp_path / "k8s"
    shutil.copytree(K8S, copy)
    web = copy / "web.yaml"
    assert find_text in web.read_text()
    web.write_text(web.read_text().replace(find_text, broken, 1))
    errors = schema_errors(kustomize(copy))
    assert errors and all(e.startswith("Deployment/nexeon-web") for e in errors), errors
    assert any(message in e for e in errors), errors


def test_a_kustomization_naming_a_missing_file_does_not_render(tmp_path):
    copy = tmp_path / "k8s"
    shutil.copytree(K8S, copy)
    (copy / "pdb.yaml").unlink()
    rendered = subprocess.run(
        ["kubectl", "kustomize", str(copy)], capture_output=True, text=True, timeout=60
    )
    assert rendered.returncode != 0 and "pdb.yaml" in rendered.stderr


def container(deployment: dict) -> dict:
    containers = deployment["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return containers[0]


def test_web_probes_the_health_endpoints_and_outlives_its_grace_period(manifests):
    web = find(manifests, "Deployment", "nexeon-web")
    config = find(manifests, "ConfigMap", "nexeon-config")["data"]
    assert web["spec"]["replicas"] >= 2
    main = container(web)
    assert main["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert main["livenessProbe"]["httpGet"]["path"] == "/healthz"
    for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
        assert "host" not in main[probe]["httpGet"]  # the pod IP: tests/nexeon/test_probe_hosts
    pre_stop = main["lifecycle"]["preStop"]["exec"]["command"]
    assert pre_stop[0] == "sleep"
    grace = int(config["GATEWAY_GRACE_SECONDS"])
    settle = int(config["GATEWAY_SHUTDOWN_SETTLE_SECONDS"])
    assert "--timeout-graceful-shutdown=$(GATEWAY_GRACE_SECONDS)" in main["command"]
    needed = int(pre_stop[1]) + grace + settle
    assert web["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] > needed


def test_one_beat_replaced_by_recreate_and_several_workers(manifests):
    beat = find(manifests, "Deployment", "nexeon-beat")
    assert beat["spec"]["replicas"] == 1
    assert beat["spec"]["strategy"] == {"type": "Recreate"}
    assert find(manifests, "Deployment", "nexeon-worker")["spec"]["replicas"] >= 2
    job = find(manifests, "Job", "nexeon-migrate")
    migrate = job["spec"]["template"]["spec"]["containers"][0]["command"]
    assert migrate == ["python", "manage.py", "migrate", "--noinput"]


def test_every_pod_runs_as_the_images_non_root_user_with_resources(manifests):
    pods = [m["spec"]["template"]["spec"] for m in manifests if m["kind"] in ("Deployment", "Job")]
    assert len(pods) == 4
    for pod in pods:
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["runAsUser"] == 10001  # the Dockerfile's USER
        for each in pod["containers"]:
            assert each["resources"]["requests"]["memory"] and each["resources"]["limits"]
            assert each["securityContext"]["allowPrivilegeEscalation"] is False
            names = [
                source.get("configMapRef", source.get("secretRef"))["name"]
                for source in each["envFrom"]
            ]
            assert names == ["nexeon-config", "nexeon-secrets"]


def test_the_secret_holds_example_values_only(manifests):
    secret = find(manifests, "Secret", "nexeon-secrets")["stringData"]
    assert {"SECRET_KEY", "DATABASE_URL", "REDIS_URL"} <= set(secret)
    for name, value in secret.items():
        assert value == "" or "replace" in value, name


def _same_variables(command: list[str]) -> list[str]:
    """compose's `${NAME:-default}` and Kubernetes' `$(NAME)` both as `$NAME`."""
    return [re.sub(r"\$\{(\w+)[^}]*\}|\$\((\w+)\)", r"$\1\2", arg) for arg in command]


@pytest.mark.parametrize(
    ("service", "kind", "name"),
    [
        ("web", "Deployment", "nexeon-web"),
        ("worker", "Deployment", "nexeon-worker"),
        ("beat", "Deployment", "nexeon-beat"),
        ("migrate", "Job", "nexeon-migrate"),
    ],
)
def test_the_pods_run_the_commands_the_compose_smoke_test_runs(manifests, service, kind, name):
    """tests/deploy/test_compose_stack.py runs docker-compose.yml's commands as processes;
    the pods run the same ones, so that test covers them too."""
    compose = yaml.safe_load((PROJECT_DIR / "docker-compose.yml").read_text())["services"]
    resource = find(manifests, kind, name)
    pod = container(resource)
    assert _same_variables(pod["command"]) == _same_variables(compose[service]["command"])
