"""docker-compose.yml describes the production stack (validated by `docker compose config`
by hand; no Docker engine runs on CI, so this test checks the structure that matters)."""

import yaml

from tests.support import PROJECT_DIR


def load_compose() -> dict:
    return yaml.safe_load((PROJECT_DIR / "docker-compose.yml").read_text())


def test_the_stack_has_web_worker_beat_postgres_and_redis_with_health_checks():
    services = load_compose()["services"]
    for name in ("web", "worker", "beat", "postgres", "redis"):
        assert "healthcheck" in services[name], name
    assert services["web"]["command"][:2] == ["uvicorn", "nexeon.asgi:application"]
    # Usage events must survive a Redis crash (tests/usage/test_pipeline_faults.py), and
    # the money state must never be evicted (tests/credit/test_redis_roles.py).
    redis = " ".join(services["redis"]["command"])
    assert "--appendfsync always" in redis and "--maxmemory-policy noeviction" in redis
    assert any(arg.startswith("--workers=") for arg in services["web"]["command"])
    assert services["worker"]["command"][:4] == ["celery", "-A", "nexeon", "worker"]
    assert services["beat"]["command"][:4] == ["celery", "-A", "nexeon", "beat"]


def test_data_lives_in_volumes_and_apps_wait_for_healthy_stores():
    compose = load_compose()
    services = compose["services"]
    assert set(compose["volumes"]) == {"postgres-data", "redis-data"}
    assert services["postgres"]["volumes"] == ["postgres-data:/var/lib/postgresql/data"]
    for name in ("web", "worker", "beat"):
        depends = services[name]["depends_on"]
        assert depends["postgres"]["condition"] == "service_healthy"
        assert depends["redis"]["condition"] == "service_healthy"
    assert services["web"]["depends_on"]["migrate"]["condition"] == (
        "service_completed_successfully"
    )


def test_the_apps_run_in_production_mode_against_postgres_and_redis():
    environment = load_compose()["services"]["web"]["environment"]
    assert environment["DEBUG"] == "0"
    assert environment["DATABASE_URL"].startswith("postgres://")
    assert environment["REDIS_URL"].startswith("redis://")
    assert environment["SECRET_KEY"].startswith("${SECRET_KEY:?")
