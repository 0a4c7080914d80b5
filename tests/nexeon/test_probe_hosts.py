"""Kubernetes' kubelet probes a pod at its IP and sends that IP as Host: /healthz and
/readyz answer whatever the Host, while every other page still refuses unknown hosts."""

import httpx
import pytest
from asgiref.sync import async_to_sync
from django.http import JsonResponse
from django.test import AsyncClient, Client
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from nexeon import probes
from tests.support import manage_env, serving_nexeon, test_database_url

POD_HOSTS = ["10.1.2.3", "10.1.2.3:8000", "[fd00::1]:8000"]


@pytest.mark.django_db
@pytest.mark.parametrize("host", POD_HOSTS)
@pytest.mark.parametrize("path", ["/healthz", "/readyz"])
def test_probes_answer_a_pod_address_as_host(client, path, host):
    response = client.get(path, HTTP_HOST=host)
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "ok"
    assert "no-store" in response["Cache-Control"]


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/accounts/login/", "/healthz/", "/readyzz", "/admin/"])
def test_other_paths_still_refuse_an_unknown_host(client, path):
    assert client.get(path, HTTP_HOST="10.1.2.3").status_code == 400


@pytest.mark.django_db
def test_probes_still_refuse_writes_from_any_host(client):
    assert client.post("/healthz", HTTP_HOST="10.1.2.3").status_code == 405


def test_a_served_process_answers_the_kubelets_probe(transactional_db, redis_client):
    env = manage_env(DATABASE_URL=test_database_url(), DEBUG="0", ALLOWED_HOSTS="nexeon.example")
    with serving_nexeon(env) as (url, _process):
        for path in ("/healthz", "/readyz"):
            answer = httpx.get(f"{url}{path}", headers={"Host": "10.1.2.3:8000"}, timeout=10)
            assert answer.status_code == 200, answer.text
        page = httpx.get(f"{url}/accounts/login/", headers={"Host": "10.1.2.3:8000"})
        assert page.status_code == 400


@never_cache
@require_GET
async def async_probe(request):
    return JsonResponse({"status": "ok", "async": True})


@pytest.mark.django_db
@pytest.mark.parametrize("mode", ["sync", "async"])
def test_a_probe_view_that_is_async_is_awaited_on_either_server(mode, monkeypatch):
    """/readyz may well be an async view (a Redis check on the serving loop)."""
    monkeypatch.setitem(probes.PROBES, "/readyz", async_probe)
    if mode == "sync":
        response = Client().get("/readyz", HTTP_HOST="10.1.2.3")
    else:
        response = async_to_sync(AsyncClient().get)("/readyz", HTTP_HOST="10.1.2.3")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "async": True}
