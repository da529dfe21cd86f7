"""Conditional answers: a page the browser already holds costs one small query, not a render.

A view names what its answer shows as a cheap *version* (a few columns read in one or two
queries). The decorator turns the version into an ETag and answers 304 Not Modified when the
request's If-None-Match already names it; otherwise the view renders and the ETag goes on the
answer. ``Cache-Control: private, no-cache`` lets the browser keep the answer but makes it ask
each time, so an htmx poll of an unchanged clip is revalidated by the browser's own cache
(the 304 reaches htmx as the cached 200, and the swap changes nothing on screen).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from functools import wraps

from django.http import HttpRequest, HttpResponse
from django.utils.cache import get_conditional_response, patch_cache_control, patch_vary_headers

# What a version function returns: any repr-able value, or None for "render as usual".
Version = Callable[..., object | None]


def etag_for(request: HttpRequest, version: object) -> str:
    # The viewer is part of the version: another login in the same browser sees other
    # rights, and a new CSRF secret must reach the forms inside the fragment.
    seen_by = (getattr(request.user, "pk", None), request.META.get("CSRF_COOKIE", ""))
    digest = hashlib.blake2b(repr((seen_by, version)).encode(), digest_size=16).hexdigest()
    # Weak: the same version renders the same page, not the same bytes (CSRF tokens are
    # masked afresh on every render).
    return f'W/"{digest}"'


def unchanged_is_304(version: Version) -> Callable:
    """Answer 304 when the client's copy is current; ``version(request, *args, **kwargs)``
    returns what the answer shows, or None to always render (the view then runs as usual)."""

    def decorator(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @wraps(view)
        def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
            if request.method not in ("GET", "HEAD"):
                return view(request, *args, **kwargs)
            current = version(request, *args, **kwargs)
            if current is None:
                return view(request, *args, **kwargs)
            etag = etag_for(request, current)
            response = get_conditional_response(request, etag=etag)
            if response is None:
                response = view(request, *args, **kwargs)
                if response.status_code != 200:
                    return response
            response["ETag"] = etag
            patch_cache_control(response, private=True, no_cache=True)
            # The page and its htmx fragment share a URL: caches must keep them apart.
            patch_vary_headers(response, ["HX-Request", "Cookie"])
            return response

        return wrapper

    return decorator
