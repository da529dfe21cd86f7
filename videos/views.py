from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import HttpResponseClientRedirect
from django_htmx.middleware import HtmxDetails

from videos import files, pipeline, providers, services
from videos.forms import ClipForm, ProjectForm
from videos.models import Clip, Project, ProviderAccount


class HtmxHttpRequest(HttpRequest):
    htmx: HtmxDetails


def _project_for(request: HttpRequest, pk: int) -> Project:
    # Non-members get a 404, not a 403: a project's existence is private too.
    return get_object_or_404(Project.objects.for_user(request.user), pk=pk)


def _clip_for(request: HttpRequest, pk: int) -> Clip:
    return get_object_or_404(
        Clip.objects.for_user(request.user).select_related("project", "provider_account"), pk=pk
    )


@login_required
@require_GET
def home(request: HttpRequest) -> HttpResponse:
    return redirect("projects")


@login_required
@require_http_methods(["GET", "POST"])
def projects(request: HtmxHttpRequest) -> HttpResponse:
    form = ProjectForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        project = services.create_project(name=form.cleaned_data["name"], user=request.user)
        return redirect(project)
    projects = Project.objects.for_user(request.user).order_by("name", "pk")
    return render(request, "videos/projects.html", {"projects": projects, "form": form})


@login_required
@require_GET
def project_detail(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    project = _project_for(request, pk)
    clips = list(
        project.clips.select_related("provider_account", "created_by").order_by(
            "-created_at", "-pk"
        )
    )
    template = "videos/project.html"
    if request.htmx:
        template += "#clip-grid"
    return render(
        request,
        template,
        {
            "project": project,
            "clips": clips,
            "polling": any(not clip.is_final for clip in clips),
            "can_generate": project.role_of(request.user) in {"admin", "creator"},
        },
    )


@login_required
@require_http_methods(["GET", "POST"])
def clip_new(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    project = _project_for(request, pk)
    if project.role_of(request.user) not in {"admin", "creator"}:
        raise PermissionDenied("Reviewers cannot generate clips.")
    accounts = ProviderAccount.objects.enabled_for(project).order_by("label", "pk")
    if request.method == "POST":
        form = ClipForm(request.POST, accounts=accounts)
        if form.is_valid():
            clip = services.create_clip(
                project=project,
                user=request.user,
                account=form.cleaned_data["provider_account"],
                model=form.cleaned_data["model"],
                prompt=form.cleaned_data["prompt"],
                params=form.params(),
            )
            if request.htmx:
                return HttpResponseClientRedirect(clip.get_absolute_url())
            return redirect(clip)
    else:
        form = ClipForm(initial=request.GET.dict(), accounts=accounts)
    template = "videos/clip_new.html"
    if request.htmx and request.method == "GET":
        template += "#clip-fields"
    return render(
        request, template, {"project": project, "form": form, "has_accounts": accounts.exists()}
    )


@login_required
@require_GET
def clip_detail(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    clip = _clip_for(request, pk)
    template = "videos/clip.html"
    if request.htmx:
        template += "#clip-status"
    return render(request, template, {"clip": clip, "project": clip.project})


@login_required
@require_GET
def clip_video(request: HttpRequest, pk: int) -> HttpResponse:
    clip = _clip_for(request, pk)
    return files.serve(
        request, clip.file_key, content_type="video/mp4", filename=f"clip-{clip.pk}.mp4"
    )


@csrf_exempt
@require_POST
def provider_callback(request: HttpRequest, kind: str, account_id: int) -> JsonResponse:
    account = get_object_or_404(ProviderAccount, pk=account_id, kind=kind)
    try:
        task_ids = providers.callback_task_ids(
            kind, headers=request.headers, body=request.body, secret=account.secret_key
        )
    except ValueError as exc:
        return JsonResponse({"error": str(exc)}, status=400)
    known = pipeline.callback_received(account=account, task_ids=task_ids)
    return JsonResponse({"ok": True, "known": known})


@login_required
@require_GET
def clip_poster(request: HttpRequest, pk: int) -> HttpResponse:
    clip = _clip_for(request, pk)
    return files.serve(
        request, clip.poster_key, content_type="image/jpeg", filename=f"clip-{clip.pk}.jpg"
    )
