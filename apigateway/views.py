"""The public models page: every catalog model, its prices, capabilities and availability.

No login needed. `?format=json` answers the same list as JSON. The filters work without
JavaScript (a GET form); static/js/models-filter.js filters as one types.
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render

from apigateway.listing import MODE_ORDER, Filters, catalog_listing


def models_page(request: HttpRequest) -> HttpResponse:
    filters = Filters(
        query=request.GET.get("q", "").strip()[:200],
        mode=request.GET.get("mode", "") if request.GET.get("mode") in MODE_ORDER else "",
        available_only=request.GET.get("available") == "1",
    )
    listings = catalog_listing(filters)
    if request.GET.get("format") == "json":
        return JsonResponse({"object": "list", "data": [item.as_json() for item in listings]})
    return render(
        request,
        "models.html",
        {
            "listings": listings,
            "filters": filters,
            "modes": MODE_ORDER,
            "available_count": sum(item.available for item in listings),
            "api_base": request.build_absolute_uri("/v1"),
        },
    )
