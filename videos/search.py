"""Prompt search by words, through a full-text index on either database.

SQLite: an FTS5 table (``videos_clip_fts``, Porter stemming) that triggers keep in step
with ``videos_clip.prompt``. PostgreSQL: a GIN index on the prompt's English tsvector. Both
come from migration 0006_search. Every word must match, and the last one also matches as a
prefix, so "golden retr" finds "a golden retriever on the beach" while it is typed.
"""

from __future__ import annotations

import re

from django.db import connections
from django.db.models import QuerySet
from django.db.models.expressions import RawSQL

WORD = re.compile(r"\w+")

SQLITE_TABLE = "videos_clip_fts"
# Recreated by migrations that rebuild videos_clip on SQLite (an AddField that copies the
# table drops its triggers with it): run install_sqlite_index() after such an operation.
SQLITE_SCHEMA = [
    f"CREATE VIRTUAL TABLE IF NOT EXISTS {SQLITE_TABLE} USING fts5("
    "prompt, content='videos_clip', content_rowid='id', tokenize='porter unicode61')",
    f"CREATE TRIGGER IF NOT EXISTS videos_clip_fts_insert AFTER INSERT ON videos_clip BEGIN "
    f"INSERT INTO {SQLITE_TABLE}(rowid, prompt) VALUES (new.id, new.prompt); END",
    f"CREATE TRIGGER IF NOT EXISTS videos_clip_fts_delete AFTER DELETE ON videos_clip BEGIN "
    f"INSERT INTO {SQLITE_TABLE}({SQLITE_TABLE}, rowid, prompt) "
    "VALUES ('delete', old.id, old.prompt); END",
    f"CREATE TRIGGER IF NOT EXISTS videos_clip_fts_update AFTER UPDATE OF prompt ON videos_clip "
    f"BEGIN INSERT INTO {SQLITE_TABLE}({SQLITE_TABLE}, rowid, prompt) "
    "VALUES ('delete', old.id, old.prompt); "
    f"INSERT INTO {SQLITE_TABLE}(rowid, prompt) VALUES (new.id, new.prompt); END",
    # Index what is already there.
    f"INSERT INTO {SQLITE_TABLE}({SQLITE_TABLE}) VALUES ('rebuild')",
]
SQLITE_DROP = [
    "DROP TRIGGER IF EXISTS videos_clip_fts_insert",
    "DROP TRIGGER IF EXISTS videos_clip_fts_delete",
    "DROP TRIGGER IF EXISTS videos_clip_fts_update",
    f"DROP TABLE IF EXISTS {SQLITE_TABLE}",
]
# The expression must be the one SearchVector("prompt", config="english") compiles to, or
# PostgreSQL will not use the index for the query below.
POSTGRES_INDEX = (
    "CREATE INDEX IF NOT EXISTS clip_prompt_search ON videos_clip "
    "USING gin (to_tsvector('english'::regconfig, COALESCE(prompt, '')))"
)
POSTGRES_DROP = "DROP INDEX IF EXISTS clip_prompt_search"


def install_sqlite_index(schema_editor) -> None:
    for statement in SQLITE_SCHEMA:
        schema_editor.execute(statement)


def words(text: str) -> list[str]:
    return WORD.findall(text.lower())


def matching(clips: QuerySet, text: str) -> QuerySet:
    """The clips whose prompt has every word of ``text`` (the last word as a prefix)."""
    found = words(text)
    if not found:
        # Only punctuation: nothing a word index can look up, so a plain substring match.
        return clips.filter(prompt__icontains=text.strip())
    if connections[clips.db].vendor == "postgresql":
        from django.contrib.postgres.search import SearchQuery, SearchVector

        terms = " & ".join([*found[:-1], f"{found[-1]}:*"])
        return clips.annotate(prompt_words=SearchVector("prompt", config="english")).filter(
            prompt_words=SearchQuery(terms, config="english", search_type="raw")
        )
    # FTS5: each word quoted (no operator can slip in), the last one as a prefix.
    terms = " ".join([*(f'"{word}"' for word in found[:-1]), f'"{found[-1]}"*'])
    return clips.filter(
        pk__in=RawSQL(f"SELECT rowid FROM {SQLITE_TABLE} WHERE {SQLITE_TABLE} MATCH %s", [terms])
    )
