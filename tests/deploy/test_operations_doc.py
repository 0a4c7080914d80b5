"""docs/operations.md's commands: each one that can run without a Docker engine or a
cluster is run by a test exactly as printed; the others are listed here, so that a new
command cannot appear in the document untested by accident."""

from __future__ import annotations

import subprocess

import pytest
import yaml

from tests.deploy.docs import fenced_commands
from tests.support import PROJECT_DIR

pytestmark = pytest.mark.deploy

DOCUMENT = "docs/operations.md"
RUN_HERE = {
    # tests/deploy/test_process_commands.py
    "make migrate",
    "make run",
    "make worker",
    "make beat",
    # below
    "kubectl kustomize deploy/k8s",
    # tests/deploy/test_backups_and_upgrades.py
    'pg_dump --format=custom --file=nexeon.dump "$DATABASE_URL"',
    'pg_restore --clean --if-exists --no-owner --dbname="$DATABASE_URL" nexeon.dump',
}
NEED_AN_ENGINE_OR_A_CLUSTER = {
    "docker compose config --quiet",
    "docker compose up -d",
    "kubectl delete job nexeon-migrate --namespace nexeon --ignore-not-found",
    "kubectl apply -k deploy/k8s",
    "kubectl wait job/nexeon-migrate --namespace nexeon --for=condition=complete --timeout=10m",
    "kubectl rollout status deployment/nexeon-web --namespace nexeon",
}


def test_every_printed_command_is_run_here_or_needs_what_this_machine_lacks():
    printed = fenced_commands(DOCUMENT)
    assert len(printed) == len(set(printed))
    assert set(printed) == RUN_HERE | NEED_AN_ENGINE_OR_A_CLUSTER


def test_the_printed_kustomize_command_renders_the_manifests():
    (command,) = [c for c in fenced_commands(DOCUMENT, "Kubernetes") if "kustomize" in c]
    done = subprocess.run(
        command, shell=True, cwd=PROJECT_DIR, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    kinds = {doc["kind"] for doc in yaml.safe_load_all(done.stdout) if doc}
    assert {"Deployment", "Job", "ConfigMap", "Secret", "Service"} <= kinds


def test_the_documented_files_and_variables_exist():
    text = (PROJECT_DIR / DOCUMENT).read_text()
    for path in ("deploy/k8s/config.yaml", "deploy/k8s/secret.yaml", "docker-compose.yml"):
        assert path.split("/")[-1] in text and (PROJECT_DIR / path).exists()
    settings_text = (PROJECT_DIR / "nexeon" / "settings.py").read_text()
    for variable in (
        "FORWARDED_ALLOW_IPS",
        "DATABASE_TRANSACTION_POOLING",
        "REDIS_EVICTION_CHECK",
        "CACHE_REDIS_URL",
        "CELERY_BROKER_URL",
        "BEHIND_TLS_PROXY",
        "GATEWAY_SHUTDOWN_SETTLE_SECONDS",
    ):
        assert f"`{variable}" in text and variable in settings_text, variable
