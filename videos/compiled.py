"""Querysets turned into SQL once, then run with new values.

For the few reads made on almost every request (the session, the signed-in user, the
version of a polled clip), building the queryset costs the ORM far more than running it:
bench/profile_pages.py measured 250-300 µs of Python to build a one-row lookup by key and
about 30 µs to run the same SQL. A ``CompiledQuery`` builds its queryset once, with stand-in
values, keeps the SQL and the column converters, and from then on only swaps in the values
of each call.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.db import connection, connections
from django.db.models import CharField, DateTimeField, Model, QuerySet
from django.db.models.functions import Cast
from django.db.models.query import ModelIterable, get_related_populators

try:
    from psycopg.types.string import TextLoader
except ImportError:  # psycopg is needed only for PostgreSQL
    TextLoader = None

# Values no real query uses, one per parameter, that are found again among the compiled
# query's parameters and swapped for the real values on each call.
_STAND_IN = {
    int: lambda n: -7_340_033 - n,
    str: lambda n: f"\x00compiled-query-stand-in-{n}",
}


class CompiledQuery:
    """``CompiledQuery(build, user_id=int, clip_id=int)``: ``build(**stand_ins)`` makes the
    queryset; each named parameter must reach the SQL unchanged as a query parameter (as the
    value of an exact filter does), which is checked when the SQL is made.

    Rows come back as the queryset would give them (the ORM's converters are applied:
    datetimes are datetimes on SQLite too), and ``instance`` gives a model instance of a
    queryset of whole rows. The SQL is made on first use, so it follows the database of the
    process; it is safe to share between threads, as each call runs on its own connection.
    """

    def __init__(self, build: Callable[..., QuerySet], **types: type) -> None:
        self.build = build
        self.types = types
        self._compiled: tuple | None = None

    @property
    def label(self) -> str:
        return self.build.__qualname__

    def _sql(self, stand_ins: dict[str, Any]):
        """(database alias, SQL with %s placeholders, its parameters, the compiler or None,
        whether rows are model instances)."""
        queryset = self.build(**stand_ins)
        compiler = queryset.query.get_compiler(queryset.db)
        sql, params = compiler.as_sql()
        return queryset.db, sql, params, compiler, queryset._iterable_class is ModelIterable

    def _compile(self) -> tuple:
        stand_ins = {name: _STAND_IN[kind](n) for n, (name, kind) in enumerate(self.types.items())}
        alias, sql, params, compiler, model_rows = self._sql(stand_ins)
        names = list(stand_ins)
        values = list(stand_ins.values())
        slots = [values.index(p) if p in values else None for p in params]
        missing = [name for n, name in enumerate(names) if n not in slots]
        if missing:
            raise ImproperlyConfigured(
                f"{self.label}: {', '.join(missing)} did not reach the SQL as "
                "a query parameter, so it cannot be swapped in later."
            )
        sql = _named_placeholders(sql, len(params))
        if compiler is None:
            return alias, sql, params, slots, names, [], None
        selected = compiler.select[: compiler.col_count]
        columns = [column for column, _sql, _alias in selected]
        converters = list(compiler.get_converters(columns).items())
        plan = _instance_plan(compiler) if model_rows else None
        return alias, sql, params, slots, names, converters, plan

    @property
    def compiled(self) -> tuple:
        if self._compiled is None:
            self._compiled = self._compile()
        return self._compiled

    def rows(self, *, converted: bool = True, **values: Any) -> list[tuple]:
        """Every row; ``converted=False`` gives the database's own values (enough to
        compare two reads, and cheaper)."""
        return self._run(values, converted=converted)

    def first(self, *, converted: bool = True, **values: Any) -> tuple | None:
        """The first row, or None."""
        found = self._run(values, converted=converted, limit=1)
        return found[0] if found else None

    def value(self, default: Any = None, **values: Any) -> Any:
        """The first column of the first row (a count, say), or ``default``."""
        row = self.first(**values)
        return default if row is None else row[0]

    def _run(self, values: dict[str, Any], *, converted: bool, limit: int | None = None):
        alias, sql, params, slots, names, converters, _plan = self.compiled
        given = [values[name] for name in names]
        run_with = {
            f"p{n}": p if slot is None else given[slot]
            for n, (p, slot) in enumerate(zip(params, slots, strict=True))
        }
        connection = connections[alias]
        with connection.cursor() as cursor:
            if not converted and connection.vendor == "postgresql":
                _times_as_text(cursor.cursor)
            cursor.execute(sql, run_with)
            found = cursor.fetchall() if limit is None else cursor.fetchmany(limit)
        if not (converters and converted):
            return found
        # As SQLCompiler.apply_converters does, but with this thread's connection (the
        # compiler kept from _compile holds the one it was made on).
        made = []
        for row in found:
            row = list(row)
            for at, (convert, expression) in converters:
                for converter in convert:
                    row[at] = converter(row[at], expression, connection)
            made.append(tuple(row))
        return made

    def instance(self, **values: Any) -> Model | None:
        """The first row as a model instance, as the queryset would give it: its
        annotations set, the rows of ``select_related`` attached, deferred fields left to
        load on first use."""
        row = self.first(**values)
        if row is None:
            return None
        alias, *_rest, plan = self.compiled
        if plan is None:
            raise ImproperlyConfigured(f"{self.label} does not select model rows.")
        model, start, end, init_list, populators, annotations = plan
        made = model.from_db(alias, init_list, row[start:end])
        for populator in populators:
            populator.populate(row, made)
        for name, at in annotations.items():
            setattr(made, name, row[at])
        return made


class CompiledTogether(CompiledQuery):
    """Several reads in one statement, for PostgreSQL, where each statement is a round trip
    and its own work on both sides: ``CompiledTogether({"count": build, ...}, project_id=int)``.
    Each read's rows come back as the JSON text PostgreSQL makes of them (``json_agg``;
    None for no rows), in the order its query gives them (a sorted subquery feeds the
    aggregate in its order): enough to compare two reads, and ``json.loads`` gives the
    values where they are needed."""

    def __init__(self, builds: dict[str, Callable[..., QuerySet]], **types: type) -> None:
        super().__init__(None, **types)
        self.builds = builds

    @property
    def label(self) -> str:
        return "CompiledTogether(" + ", ".join(self.builds) + ")"

    def _sql(self, stand_ins: dict[str, Any]):
        columns, params, alias = [], [], None
        for build in self.builds.values():
            queryset = build(**stand_ins)
            alias = queryset.db
            sql, read_params = queryset.query.get_compiler(alias).as_sql()
            # Kept short: psycopg re-parses statements over 4 KB on every run (about 200 µs
            # for this one), so no COALESCE: a read of no rows is NULL.
            columns.append(f"(SELECT json_agg(t)::text FROM ({sql}) t)")
            params += read_params
        return alias, "SELECT " + ", ".join(columns), params, None, False

    def read(self, **values: Any) -> dict[str, str | None]:
        """Each read's rows as JSON text (None for no rows), by name."""
        return dict(zip(self.builds, self.first(converted=False, **values), strict=True))


def compared_columns(model: type[Model], names: tuple[str, ...]) -> tuple:
    """``names`` for ``values_list``, on SQLite each of the model's own time columns read as
    text.

    For reads that are compared, never shown (versions). SQLite's driver otherwise parses
    every time in Python, through the converter Django registers for the column's declared
    type, and the datetimes then cost ``repr`` again; a cast column has no declared type, so
    it comes back as the stored text. (PostgreSQL's unconverted reads take times as text
    already, see ``_times_as_text``, and the casts would lengthen its one statement.)"""
    if connection.vendor != "sqlite":
        return names
    fields = {field.attname: field for field in model._meta.concrete_fields}
    return tuple(
        Cast(name, output_field=CharField())
        if isinstance(fields.get(name), DateTimeField)
        else name
        for name in names
    )


def _times_as_text(cursor) -> None:
    """Have this psycopg cursor give times as the database's text. Django loads them with
    a loader of its own written in Python (about 14 µs a value, against well under one for
    text); a project page's version reads compare a hundred of them."""
    cursor.adapters.register_loader("timestamptz", TextLoader)


def _named_placeholders(sql: str, count: int) -> str:
    """The SQL with ``%(p0)s``, ``%(p1)s``... for Django's ``%s``: a backend turns named
    placeholders into its own with one string format, where SQLite's backend searches the
    whole statement with a regular expression on every run (14 µs for a 1.6 KB SELECT,
    against 1 µs)."""
    # The pattern Django's SQLite backend looks for ("%%s" is a literal "%" then "s").
    pieces = re.split(r"(?<!%)%s", sql)
    if len(pieces) != count + 1:
        raise ImproperlyConfigured(f"{count} parameters for {len(pieces) - 1} placeholders")
    named = [pieces[0]]
    for n, piece in enumerate(pieces[1:]):
        named += [f"%(p{n})s", piece]
    return "".join(named)


def _instance_plan(compiler) -> tuple | None:
    """How a row becomes a model instance: Django's ModelIterable, worked out once (the same
    steps, with the same helpers, as it takes for each query)."""
    klass_info = compiler.klass_info
    fields = klass_info["select_fields"]
    start, end = fields[0], fields[-1] + 1
    init_list = [column[0].target.attname for column in compiler.select[start:end]]
    populators = get_related_populators(klass_info, compiler.select, compiler.using)
    return (
        klass_info["model"],
        start,
        end,
        init_list,
        populators,
        dict(compiler.annotation_col_map or {}),
    )
