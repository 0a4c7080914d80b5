"""The probes answer whatever the Host: a load balancer or Kubernetes' kubelet checks a
process at its own address (`Host: 10.1.2.3:8000`), which ALLOWED_HOSTS rightly does not
list. Placed first in MIDDLEWARE, this answers /healthz and /readyz before anything reads
the Host (CommonMiddleware would answer 400); every other path goes on to the Host check."""

from __future__ import annotations

from collections.abc import Callable

from asgiref.sync import async_to_sync, iscoroutinefunction, markcoroutinefunction, sync_to_async
from django.http import HttpRequest, HttpResponse

from nexeon import health

PROBES: dict[str, Callable] = {"/healthz": health.healthz, "/readyz": health.readyz}


class ProbesAnyHostMiddleware:
    """Calls a probe's view directly (sync or async, whichever the view and the server
    are); the views read nothing of the request but its method."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable) -> None:
        self.get_response = get_response
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest):
        if self.is_async:
            return self._acall(request)
        probe = PROBES.get(request.path_info)
        if probe is None:
            return self.get_response(request)
        return async_to_sync(probe)(request) if iscoroutinefunction(probe) else probe(request)

    async def _acall(self, request: HttpRequest) -> HttpResponse:
        probe = PROBES.get(request.path_info)
        if probe is None:
            return await self.get_response(request)
        if iscoroutinefunction(probe):
            return await probe(request)
        return await sync_to_async(probe)(request)
