"""The project page's chains and activity feed, read only when their cached HTML is missing.

The page caches this part by ``version``: the ids of the feed's newest items and the columns
of every clip the page of chains draws, plus the half-minute, since the feed says "5 minutes
ago". Building the timelines and the feed (a dozen queries and most of the page's rendering)
happens only when that version has not been drawn yet. The feed's rows are written once;
the names in them (a renamed account or user) may lag by that half-minute.
"""

from __future__ import annotations

import time
from functools import cached_property

from django.core.paginator import Page

from videos import chains, review
from videos.fragments import version_text
from videos.models import Project
from videos.project_reads import ProjectReads

# How long "just now" or "5 minutes ago" may lag behind the clock in a cached feed.
AGO_RESOLUTION_SECONDS = 30


class ProjectActivity:
    def __init__(
        self, project: Project, *, chains_page: int | str = 1, reads: ProjectReads
    ) -> None:
        self.project = project
        self._reads = reads
        self._page = chains.project_chain_page(
            project,
            page=chains_page or 1,
            first_page=lambda: self._reads.first_chain_page,
        )

    @property
    def page_number(self) -> int:
        """The page of chains shown (a number past the last shows the last)."""
        return self._page.number

    @cached_property
    def version(self) -> str:
        return version_text(
            self.project.pk,
            self._page.number,
            self._page.paginator.count,
            self._reads.chain_clips(self._page),
            self._reads.newest_activity,
            self._reads.newest_clips,
            int(time.time() // AGO_RESOLUTION_SECONDS),
        )

    @cached_property
    def chains(self) -> Page:
        return chains.walk_page(self._page)

    @cached_property
    def feed(self) -> list[review.FeedItem]:
        return review.project_feed(self.project)
