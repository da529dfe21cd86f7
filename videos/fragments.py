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
token (no POST forms inside), no messages.
"""

from __future__ import annotations

import hashlib
from functools import cache
from pathlib import Path

import django
from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections

# What draws a part: the templates, the studio's Python (its template tags, filters and the
# labels and sums it computes) and Django (its widgets and filters).
CODE = ("templates/**/*.html", "videos/**/*.py")


def _code_files() -> list[Path]:
    base = Path(settings.BASE_DIR)
    return [path for pattern in CODE for path in sorted(base.glob(pattern))]


@cache
def _content_fingerprint() -> str:
    digest = hashlib.blake2b(django.get_version().encode(), digest_size=8)
    for path in _code_files():
        digest.update(str(path).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def code_fingerprint() -> str:
    """Read once per process in production. With DEBUG on, templates are edited under a
    running server: the files' times and sizes are read on every use instead."""
    if not settings.DEBUG:
        return _content_fingerprint()
    digest = hashlib.blake2b(django.get_version().encode(), digest_size=8)
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
