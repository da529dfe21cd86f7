"""The project pages: the list of projects, and a project's library with its chains and
activity (whose costly parts come from the fragment cache, videos/fragments.py)."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.paginator import Page, Paginator
from django.db.models import Exists, F, OuterRef
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.functional import SimpleLazyObject
from django.views.decorators.http import require_GET, require_http_methods

from videos import permissions, services
from videos.compiled import CompiledQuery
from videos.conditional import unchanged_is_304
from videos.forms import LibraryFilterForm, ProjectForm
from videos.fragments import render_kept, version_text
from videos.models import Clip, Project
from videos.project_activity import ProjectActivity
from videos.project_reads import (
    LIBRARY_PAGE_SIZE,
    ProjectReads,
    compared_grid_columns,
    library_clips,
)
from videos.views import HtmxHttpRequest

# How long a drawn part of the project page is kept. Parts are keyed by what they show, so
# this bounds memory, not staleness: a grid with clips in flight is a new key every poll.
FRAGMENT_SECONDS = 120


@login_required
@require_GET
def home(request: HttpRequest) -> HttpResponse:
    return redirect("projects")


@login_required
@require_http_methods(["GET", "POST"])
def projects(request: HtmxHttpRequest) -> HttpResponse:
    form = ProjectForm(request.POST or None)
    can_create = permissions.can_create_projects(request.user)
    if request.method == "POST":
        if not can_create:
            raise permissions.NotAllowed(
                "Creating projects needs the right to spend, which staff give."
            )
        if form.is_valid():
            project = services.create_project(name=form.cleaned_data["name"], user=request.user)
            return redirect(project)
    projects = Project.objects.for_user(request.user).order_by("name", "pk")
    return render(
        request,
        "videos/projects.html",
        {"projects": projects, "form": form, "can_create": can_create},
    )


def _project_query(*, user_id: int, project_id: int):
    return Project.objects.filter(pk=project_id, memberships__user=user_id).annotate(
        viewer_role=F("memberships__role"),
        viewer_granted=permissions.spending_right_granted(user_id),
        has_clips_in_flight=Exists(Clip.objects.filter(project=OuterRef("pk")).in_flight()),
    )


# Read on every view and poll of a project page: compiled to SQL once.
PROJECT_WITH_ROLE = CompiledQuery(_project_query, user_id=int, project_id=int)


def _project_with_role(request: HttpRequest, pk: int) -> Project:
    # The viewer's role comes with the project, from the membership the lookup joins anyway,
    # and their right to spend and whether any clip is in flight in the same query.
    project = PROJECT_WITH_ROLE.instance(user_id=request.user.pk, project_id=pk)
    if project is None:
        raise Http404("No such project, or not one of yours.")
    project.viewer_has_right = permissions.has_spending_right_given(
        request.user, granted=project.viewer_granted
    )
    return project


class _NoFilters:
    """The library's filters for a request with no query string, as nearly every view and
    poll of a project page is: nothing filtered, the first page, no errors, all known
    without a form. The form is made only to draw the filters (and most views draw them
    from the fragment cache): making it was a tenth of a kept page's time."""

    is_filtered = False

    def __init__(self, request: HttpRequest, project: Project) -> None:
        self.errors: dict = {}
        self.cleaned_data: dict = {}
        self._make = lambda: LibraryFilterForm(request.GET, project=project)
        self._form: LibraryFilterForm | None = None

    def __getitem__(self, name: str):
        # A field, as the template asks for one.
        if self._form is None:
            self._form = self._make()
        return self._form[name]


def _library_page(project_id: int):
    return (
        library_clips(project_id)
        .select_related("created_by")
        # A project uses a few accounts: one query for them, not a credential decrypted per clip.
        .prefetch_related("provider_account")
    )


def _library(
    request: HttpRequest, project: Project, reads: ProjectReads
) -> tuple[LibraryFilterForm | _NoFilters, Page]:
    if not request.GET:
        # The clips are read only if the grid is drawn (its version is reads.grid_rows).
        paginator = Paginator([], LIBRARY_PAGE_SIZE)
        paginator.count = reads.library_count
        clips = SimpleLazyObject(lambda: list(_library_page(project.pk)[:LIBRARY_PAGE_SIZE]))
        return _NoFilters(request, project), Page(clips, 1, paginator)
    filters = LibraryFilterForm(request.GET, project=project)
    clips = filters.filter(_library_page(project.pk))
    paginator = Paginator(clips, LIBRARY_PAGE_SIZE)
    if not filters.is_filtered:
        paginator.count = reads.library_count
    number = filters.cleaned_data.get("page") or 1
    if number > paginator.num_pages:
        filters.add_error("page", f"There is no page {number}; this is the last one.")
        number = paginator.num_pages
    return filters, paginator.page(number)


def _clip_grid_state(
    request: HtmxHttpRequest,
    project: Project,
    filters,
    page: Page,
    reads: ProjectReads,
    *,
    polling: bool,
) -> tuple:
    """Everything the clip grid shows: its rows' columns, the viewer's rights, the query."""
    return (
        project.pk,
        project.viewer_role,
        project.viewer_has_right,
        grid_query(request),
        page.number,
        page.paginator.count,
        reads.grid_rows
        if page.number == 1 and not filters.is_filtered
        else list(page.object_list.values_list(*compared_grid_columns())),
        polling,
        filters.errors,
    )


def _query_without(request: HttpRequest, name: str) -> str:
    query = request.GET.copy()
    query.pop(name, None)
    return query.urlencode()


def grid_query(request: HttpRequest) -> str:
    """The query string the grid polls with: the library's own (the page of chains is not
    the grid's business)."""
    return _query_without(request, "chains")


def _clip_grid(
    request: HtmxHttpRequest, pk: int
) -> tuple[Project, LibraryFilterForm | _NoFilters, Page, tuple, ProjectReads]:
    """The project, the library's filters and page, the grid's state and the page's version
    reads, once per request: a grid poll that changed needs them for its version and again
    to draw."""
    read = getattr(request, "_clip_grid", None)
    if read is None or read[0].pk != pk:
        project = _project_with_role(request, pk)
        reads = ProjectReads(project.pk, whole_page=not request.htmx)
        filters, page = _library(request, project, reads)
        state = _clip_grid_state(
            request, project, filters, page, reads, polling=project.has_clips_in_flight
        )
        read = request._clip_grid = (project, filters, page, state, reads)
    return read


def _clip_grid_version(request: HtmxHttpRequest, pk: int) -> object | None:
    """What the polled clip grid shows; None (always render) for the whole page."""
    if not request.htmx:
        return None
    return _clip_grid(request, pk)[3]


def _filters_version(request: HtmxHttpRequest, project: Project, reads: ProjectReads) -> str:
    # The form draws the query string's values, its choices, and the errors those give.
    return version_text(project.pk, request.GET.urlencode(), reads.providers, reads.creators)


def _keeps_fragments(request: HttpRequest, filters, *, chains_page: int | None) -> bool:
    """Whether this page's parts may be kept: only for query strings the studio's own links
    and filter form make, each valid value spelt as the form spells it, and no search.

    Parts are keyed by their query string, so anything else (a search, an unknown
    parameter, ``page=007``, a chains page past the last) would be a key anyone could mint
    without end, in a cache that on Redis shares memory with the task queue. Those pages
    are drawn afresh, as every page was before the cache. ``chains_page``: the page of
    chains shown, or None where the page shows none (the grid's own polls)."""
    if filters.errors or filters.cleaned_data.get("q"):
        return False
    known = {
        "page": filters.cleaned_data.get("page"),
        "chains": chains_page if chains_page and filters.cleaned_data.get("chains") else None,
        "status": filters.cleaned_data.get("status"),
        "provider": getattr(filters.cleaned_data.get("provider"), "pk", None),
        "creator": getattr(filters.cleaned_data.get("creator"), "pk", None),
        "q": None,
    }
    for name, values in request.GET.lists():
        if name not in known or len(values) != 1:
            return False
        if values[0] != ("" if known[name] is None else str(known[name])):
            return False
    return True


@login_required
@require_GET
@unchanged_is_304(_clip_grid_version)
def project_detail(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    project, filters, page, grid, reads = _clip_grid(request, pk)
    polling = project.has_clips_in_flight
    # The grid, the filters and the chains and activity are drawn from the fragment cache
    # when their versions were drawn before; the querysets below are read only on a miss.
    context = {
        "project": project,
        "role": project.viewer_role,
        "clips": page.object_list,
        "page": page,
        "filters": filters,
        "grid_version": version_text(grid),
        "grid_query": grid_query(request),
        "query": _query_without(request, "page"),
        "polling": polling,
        "can_generate": permissions.can_spend(
            project, request.user, role=project.viewer_role, right=project.viewer_has_right
        ),
    }
    if request.htmx:
        keeps = _keeps_fragments(request, filters, chains_page=None)
        context["fragment_seconds"] = FRAGMENT_SECONDS if keeps else 0
        return render(request, "videos/project.html#clip-grid", context)
    activity = ProjectActivity(
        project, chains_page=filters.cleaned_data.get("chains") or 1, reads=reads
    )
    keeps = _keeps_fragments(request, filters, chains_page=activity.page_number)
    seconds = FRAGMENT_SECONDS if keeps else 0
    context |= {
        "fragment_seconds": seconds,
        "chains_query": _query_without(request, "chains"),
        "activity": activity,
        "filters_version": _filters_version(request, project, reads),
    }
    # The whole page is kept as well, by the versions of its parts and what the page around
    # them shows: a view of an unchanged project is its version reads and one cache read.
    version = (
        context["grid_version"],
        context["filters_version"],
        activity.version,
        context["chains_query"],
        project.name,
        project.viewer_role,
        context["can_generate"],
    )
    return render_kept(request, "videos/project.html", context, version=version, seconds=seconds)
