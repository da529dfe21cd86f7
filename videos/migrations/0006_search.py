"""A full-text index for the library's prompt search (videos/search.py), on either database.

SQLite: an FTS5 table with triggers that keep it in step with videos_clip. A later migration
that makes SQLite rebuild videos_clip (copy, drop, rename) drops those triggers with the old
table: such a migration must call videos.search.install_sqlite_index afterwards
(tests/test_page_costs.py fails if a clip made after all migrations cannot be found).
PostgreSQL: a GIN index on the prompt's English tsvector.
"""

from django.db import migrations

from videos import search


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor == "sqlite":
        search.install_sqlite_index(schema_editor)
    elif schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(search.POSTGRES_INDEX)


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor == "sqlite":
        for statement in search.SQLITE_DROP:
            schema_editor.execute(statement)
    elif schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(search.POSTGRES_DROP)


class Migration(migrations.Migration):
    dependencies = [("videos", "0005_pipeline")]

    operations = [migrations.RunPython(forwards, backwards, elidable=False)]
