"""What a project page's versions are read from: one round trip on PostgreSQL.

A view of an unchanged project costs its version reads (the library's count and first page,
the filters' choices, the first page of chains and their clips, the feed's newest rows) and
one cache read (videos/fragments.py). Each read is a query compiled once
(videos/compiled.py). On SQLite, in the process, they cost little more run apart. On
PostgreSQL each statement is a round trip and work on both sides, so there they go as one
statement (``CompiledTogether``): each read comes back as JSON text, compared as it is, and
parsed only for the two things the page uses (the library's count, the chains' ids). The
statement is kept under 4 KB, past which psycopg parses it again on every run.

``ProjectReads`` reads lazily, once per request, and only what the request needs: a poll
of the grid asks for the library alone.
"""

from __future__ import annotations

import json
from functools import cached_property

from django.contrib.postgres.expressions import ArraySubquery
from django.db import connection
from django.db.models import BooleanField, F, Func, Q

from videos import chains, review
from videos.compiled import CompiledQuery, CompiledTogether, compared_columns
from videos.forms import library_creators, library_providers
from videos.models import Activity, Clip, ClipKind

LIBRARY_PAGE_SIZE = 24

# What a card in the clip grid shows.
GRID_COLUMNS = (
    "pk",
    "status",
    "progress",
    "prompt",
    "model",
    "poster_key",
    "file_key",
    "duration_seconds",
    "created_at",
    "provider_account__label",
    "created_by__username",
)
NEWEST = ("-created_at", "-pk")


def compared_grid_columns() -> tuple:
    """The grid's columns as its version reads them."""
    return compared_columns(Clip, GRID_COLUMNS)


def library_clips(project_id: int):
    return Clip.objects.filter(project=project_id).order_by(*NEWEST)


def _library_count(project_id: int):
    return library_clips(project_id).counted()


def _first_grid_page(project_id: int):
    return library_clips(project_id).values_list(*compared_grid_columns())[:LIBRARY_PAGE_SIZE]


def _providers(project_id: int):
    return library_providers(project_id).values_list("pk", "label")


def _creators(project_id: int):
    return library_creators(project_id).values_list("pk", "username")


# The feed's rows are written once: the id and the time stand for the row (ids alone can
# come again in a database restored from a backup).
def _newest_activity(project_id: int):
    return (
        Activity.objects.filter(project=project_id)
        .order_by(*NEWEST)
        .values_list(*compared_columns(Activity, ("pk", "created_at")))[: review.FEED_LENGTH]
    )


def _newest_clips(project_id: int):
    return (
        Clip.objects.filter(project=project_id, kind=ClipKind.GENERATE)
        .order_by(*NEWEST)
        .values_list(*compared_columns(Clip, ("pk", "created_at")))[: review.FEED_LENGTH]
    )


class EqualsAny(Func):
    """``column = ANY(array)``, which PostgreSQL answers from the column's index. Two
    ``IN (subquery)`` joined by OR are answered by reading every clip of every project."""

    output_field = BooleanField()

    def as_sql(self, compiler, connection, **extra_context):
        column, array = self.source_expressions
        column_sql, column_params = compiler.compile(column)
        array_sql, array_params = compiler.compile(array)
        return f"{column_sql} = ANY({array_sql})", (*column_params, *array_params)


def _first_chain_clips(project_id: int):
    """chains.chains_version's read for the first page of chains, its ids a subquery
    (PostgreSQL only: an array of them)."""
    ids = ArraySubquery(chains.chain_roots(project_id).values("pk")[: chains.CHAINS_PER_PAGE])
    return (
        Clip.objects.filter(Q(EqualsAny(F("pk"), ids)) | Q(EqualsAny(F("root"), ids)))
        .order_by("pk")
        .values_list(*compared_columns(Clip, chains.CHAIN_SHOWN))
    )


# Apart (SQLite), each compiled once.
LIBRARY_COUNT = CompiledQuery(_library_count, project_id=int)
FIRST_GRID_PAGE = CompiledQuery(_first_grid_page, project_id=int)
FILTER_PROVIDERS = CompiledQuery(_providers, project_id=int)
FILTER_CREATORS = CompiledQuery(_creators, project_id=int)
NEWEST_ACTIVITY = CompiledQuery(_newest_activity, project_id=int)
NEWEST_CLIPS = CompiledQuery(_newest_clips, project_id=int)

# Together (PostgreSQL): what a grid poll needs, and what a whole page needs.
_LIBRARY = {"library_count": _library_count, "grid_rows": _first_grid_page}
LIBRARY_TOGETHER = CompiledTogether(_LIBRARY, project_id=int)
PAGE_TOGETHER = CompiledTogether(
    {
        **_LIBRARY,
        "providers": _providers,
        "creators": _creators,
        "chain_page": chains.first_chain_page,
        "chain_clips": _first_chain_clips,
        "newest_activity": _newest_activity,
        "newest_clips": _newest_clips,
    },
    project_id=int,
)


class _Compared:
    """A read that is only compared: from the statement that read it with the others, or
    on its own; read once per request."""

    def __init__(self, apart: CompiledQuery) -> None:
        self.apart = apart

    def __set_name__(self, owner, name: str) -> None:
        self.name = name

    def __get__(self, reads: ProjectReads | None, owner=None):
        if reads is None:
            return self
        # Kept on the instance, which then answers before this descriptor is asked again.
        value = reads.__dict__[self.name] = reads._read(self.name, self.apart)
        return value


class ProjectReads:
    """A project page's version reads for one request. ``whole_page``: the page, not a poll
    of its grid (which reads the library alone)."""

    def __init__(self, project_id: int, *, whole_page: bool) -> None:
        self.project_id = project_id
        self.whole_page = whole_page

    @cached_property
    def _together(self) -> dict[str, str] | None:
        if connection.vendor != "postgresql":
            return None
        together = PAGE_TOGETHER if self.whole_page else LIBRARY_TOGETHER
        return together.read(project_id=self.project_id)

    def _read(self, name: str, apart: CompiledQuery):
        if self._together is not None and name in self._together:
            return self._together[name]
        # Compared, never shown: the database's own values will do.
        return apart.rows(project_id=self.project_id, converted=False)

    @cached_property
    def library_count(self) -> int:
        if self._together is None:
            return LIBRARY_COUNT.value(0, project_id=self.project_id)
        rows = json.loads(self._together["library_count"] or "[]")
        return rows[0]["count"] if rows else 0

    grid_rows = _Compared(FIRST_GRID_PAGE)
    providers = _Compared(FILTER_PROVIDERS)
    creators = _Compared(FILTER_CREATORS)
    newest_activity = _Compared(NEWEST_ACTIVITY)
    newest_clips = _Compared(NEWEST_CLIPS)

    @cached_property
    def first_chain_page(self) -> list[tuple[int, int, int]]:
        """chains.FIRST_CHAIN_PAGE's rows: (root id, number of chains, place), newest first."""
        if self._together is None or "chain_page" not in self._together:
            return chains.FIRST_CHAIN_PAGE.rows(project_id=self.project_id)
        rows = sorted(json.loads(self._together["chain_page"] or "[]"), key=lambda row: row["n"])
        return [(row["pk"], row["chains"], row["n"]) for row in rows]

    def chain_clips(self, page) -> object:
        """What the page of chains shows (chains.chains_version), read with the first page
        when that is the page."""
        if page.number == 1 and self._together is not None and "chain_clips" in self._together:
            return self._together["chain_clips"]
        return chains.chains_version(page)
