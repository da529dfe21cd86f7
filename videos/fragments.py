"""Keys for rendered page parts kept in the ``template_fragments`` cache.

Pages cache their costly parts with Django's ``{% cache %}`` tag, varied on a *version*: a
small value the view reads cheaply (a few columns of the rows the part draws, the viewer's
role and rights, the query string). Equal versions draw equal HTML, so an entry is never
stale while its version is current; a change writes under a new key and the old one ages
out. The key also carries a fingerprint of the code that draws parts (templates, the
studio's Python, Django's version), so a deploy never serves HTML drawn by the previous
code (Redis outlives deploys), and the database's address, since ids are unique only
within one database.

A cached part must not hold anything personal to one request beyond its version: no CSRF
token (no POST forms inside), no messages. A whole page can be kept too (``render_kept``):
its CSRF token is swapped for a stand-in when kept and for this request's when sent.
"""

from __future__ import annotations

import hashlib
from functools import cache
from pathlib import Path

import django
from django.conf import settings
from django.contrib import messages
from django.contrib.staticfiles.storage import staticfiles_storage
from django.core.cache import caches
from django.db import DEFAULT_DB_ALIAS, connections
from django.http import HttpRequest, HttpResponse
from django.middleware.csrf import get_token
from django.shortcuts import render

# What draws a part: the templates, the studio's Python (its template tags, filters and the
# labels and sums it computes) and Django (its widgets and filters).
CODE = ("templates/**/*.html", "videos/**/*.py")


def _code_files() -> list[Path]:
    base = Path(settings.BASE_DIR)
    return [path for pattern in CODE for path in sorted(base.glob(pattern))]


def _release() -> str:
    # Django's version, and the static files' manifest: a page links them by hashed names.
    return f"{django.get_version()}:{getattr(staticfiles_storage, 'manifest_hash', '')}"


@cache
def _content_fingerprint() -> str:
    digest = hashlib.blake2b(_release().encode(), digest_size=8)
    for path in _code_files():
        digest.update(str(path).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def code_fingerprint() -> str:
    """Read once per process in production. With DEBUG on, templates are edited under a
    running server: the files' times and sizes are read on every use instead."""
    if not settings.DEBUG:
        return _content_fingerprint()
    digest = hashlib.blake2b(_release().encode(), digest_size=8)
    for path in _code_files():
        stat = path.stat()
        digest.update(f"{path}:{stat.st_mtime_ns}:{stat.st_size}".encode())
    return digest.hexdigest()


def _database() -> str:
    # Ids are only unique within one database: studios (or test workers) sharing a Redis
    # must never share parts.
    db = connections[DEFAULT_DB_ALIAS].settings_dict
    where = f"{db.get('HOST')}:{db.get('PORT')}/{db['NAME']}"
    return hashlib.blake2b(where.encode(), digest_size=6).hexdigest()


def fragment_key(key: str, key_prefix: str, version: int | None) -> str:
    return f"{key_prefix}:{version}:{_database()}:{code_fingerprint()}:{key}"


def version_text(*parts: object) -> str:
    """A version as one short string for ``{% cache %}``'s vary-on arguments."""
    return hashlib.blake2b(repr(parts).encode(), digest_size=16).hexdigest()


# Where a kept page had its CSRF token. The token is masked afresh for every answer, so it is
# never kept; text from users cannot spell the stand-in, as pages escape "<".
CSRF_STAND_IN = "<csrf-token>"


def render_kept(
    request: HttpRequest, template_name: str, context: dict, *, version: object, seconds: int
) -> HttpResponse:
    """A whole page kept like a part, for ``seconds``: drawn once per ``version`` (what the
    page shows) and viewer, then sent again with this request's CSRF token.

    The page's frame shows the viewer's name and, to staff, staff links: the viewer is part
    of the key. A page with messages to show is drawn afresh, as a message is shown once."""
    if seconds <= 0 or len(messages.get_messages(request)):
        return render(request, template_name, context)
    user = request.user
    viewer = (user.pk, user.get_username(), user.is_staff)
    key = f"page:{template_name}:{version_text(version, viewer)}"
    kept = caches["template_fragments"]
    token = get_token(request)
    html = kept.get(key)
    if html is None:
        # The page is drawn with the token it will be sent with, and kept without it.
        response = render(request, template_name, {**context, "csrf_token": token})
        kept.set(key, response.content.decode().replace(token, CSRF_STAND_IN), seconds)
        return response
    return HttpResponse(html.replace(CSRF_STAND_IN, token))
