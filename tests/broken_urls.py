"""A URLconf with a view that fails, for the 500 page's test; the studio's own URLs besides."""

from django.http import HttpRequest, HttpResponse
from django.urls import include, path


def boom(request: HttpRequest) -> HttpResponse:
    raise RuntimeError("A bug, on purpose")


urlpatterns = [path("boom/", boom), path("", include("studio.urls"))]
