"""The probes answer whatever the Host: a load balancer or Kubernetes' kubelet checks a
process at its own address (`Host: 10.1.2.3:8000`), which ALLOWED_HOSTS rightly does not
list. Placed first in MIDDLEWARE, this answers /healthz and /readyz before anything reads
the Host (CommonMiddleware would answer 400); every other path is checked as before."""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from nexeon import health

PROBES: dict[str, Callable[[HttpRequest], HttpResponse]] = {
    "/healthz": health.healthz,
    "/readyz": health.readyz,
}


class ProbesAnyHostMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        probe = PROBES.get(request.path_info)
        if probe is not None:
            return probe(request)  # the views read nothing of the request but its method
        return self.get_response(request)
