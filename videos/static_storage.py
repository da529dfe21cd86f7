"""Static files in production: WhiteNoise's hashed, compressed files, forgiving a missing one.

A template that names a file collectstatic has not seen (a release that forgot to run it, a
file added since) would make Django raise on every page linking it, a 500 for the whole
site. Here such a file is linked by its plain name: that one file is a 404, the page works,
and the log says what to run. (gunicorn.conf.py refuses to start with no manifest at all.)
"""

from __future__ import annotations

import logging

from django.contrib.staticfiles import finders
from whitenoise.storage import CompressedManifestStaticFilesStorage

logger = logging.getLogger(__name__)


class ForgivingManifestStorage(CompressedManifestStaticFilesStorage):
    manifest_strict = False

    def stored_name(self, name: str) -> str:
        try:
            return super().stored_name(name)
        except ValueError:
            # WhiteNoise also asks about names that are no file at all (it strips what looks
            # like a hash from every name it serves): only a real file is worth a log line.
            if finders.find(name):
                logger.error(
                    "Static file %r is missing from collectstatic's output; run "
                    "`manage.py collectstatic`. Linking it unhashed.",
                    name,
                )
            return name
