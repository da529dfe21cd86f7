"""Views for chains and review: the chain page, extend and continue, comments, decisions, export.

Reviewers may comment and decide anywhere in their projects; extending, continuing,
choosing the main take and exporting are for creators and admins (reviewers download
finished exports). Non-members get a 404, as everywhere in the studio.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import HttpResponseClientRedirect
from django_htmx.middleware import HtmxDetails

from videos import chains, files, review, seams, trim
from videos.chain_forms import (
    CommentForm,
    ContinueForm,
    DecisionForm,
    ExtendForm,
    ResolveForm,
    TrimForm,
)
from videos.ledger import BudgetExceeded
from videos.models import ChainExport, Clip, ClipKind, Comment, CommentScope, Project


class HtmxHttpRequest(HttpRequest):
    htmx: HtmxDetails


REVIEWER_REFUSAL = (
    "Reviewers comment and decide; making, extending and exporting clips is for the "
    "project's creators and admins."
)


def _clip_for(request: HttpRequest, pk: int) -> Clip:
    # Non-members get a 404, not a 403: a project's existence is private too.
    return get_object_or_404(
        Clip.objects.for_user(request.user).select_related("project", "provider_account"), pk=pk
    )


def _require_creator(request: HttpRequest, project: Project) -> None:
    if not chains.can_generate(project.role_of(request.user)):
        raise PermissionDenied(REVIEWER_REFUSAL)


# --- context builders (shared with the clip page's panel and the project page's feed) --------


def review_context(
    *,
    clip: Clip,
    scope: str,
    length: float | None,
    comment_form: CommentForm | None = None,
    reply_form: CommentForm | None = None,
    decision_form: DecisionForm | None = None,
) -> dict:
    return {
        "clip": clip,
        "scope": scope,
        "length": length,
        # The player whose current time a new comment takes and which a timecode seeks.
        "player": "#chain-player" if scope == CommentScope.CHAIN else "#clip-status video",
        "threads": review.threads(clip, scope),
        "verdicts": review.verdicts(clip, scope),
        "comment_form": comment_form
        or CommentForm(initial={"scope": scope}, length=length, auto_id=f"id_{scope}_%s"),
        "reply_form": reply_form,
        "reply_to": reply_form.data.get("reply_to") if reply_form is not None else None,
        "decision_form": decision_form,
        "action": reverse("clip-comment", args=[clip.pk]),
    }


def clip_panel(*, user, clip: Clip, overrides: dict | None = None, role: str | None = None) -> dict:
    """What the clip page shows under the player: the chain, the actions, the review.
    ``role``: the viewer's, when the caller read it already."""
    root = clip.chain_root()
    line = chains.timeline(root)
    role = role if role is not None else clip.project.role_of(user)
    can_generate = chains.can_generate(role)
    siblings = (
        []
        if clip.parent_id is None
        else list(
            # A 1080p version is its parent's footage again, not a take.
            Clip.objects.filter(parent_id=clip.parent_id)
            .exclude(kind=ClipKind.UPSCALE)
            .order_by("created_at", "pk")
        )
    )
    return {
        "line": line,
        "root": root,
        "position": line.position_of(clip),
        "is_chained": line.clip_count > 1,
        "siblings": siblings,
        "takes_after": list(
            clip.children.select_related("provider_account").order_by("created_at", "pk")
        ),
        "can_generate": can_generate,
        "extend_refusal": chains.extend_refusal(clip),
        "extend_offer": chains.extend_offer(clip),
        "continue_refusal": chains.continue_refusal(clip),
        "review": review_context(
            clip=clip, scope=CommentScope.CLIP, length=clip.duration_seconds, **(overrides or {})
        ),
    }


# --- the chain page ----------------------------------------------------------------------------


def _segments_for_player(line: chains.Timeline) -> list[dict]:
    return [
        {
            "clip": segment.clip.pk,
            "src": reverse("clip-video", args=[segment.clip.pk]),
            "poster": reverse("clip-poster", args=[segment.clip.pk])
            if segment.clip.poster_key
            else "",
            "start": round(segment.start, 3),
            "end": round(segment.end, 3),
            "offset": round(segment.offset, 3),
            "length": round(segment.length, 3),
        }
        for segment in line.segments
    ]


def _chain_page(
    request: HttpRequest,
    root: Clip,
    *,
    trim_form: tuple[int, TrimForm] | None = None,
    status: int = 200,
    **review_overrides,
) -> HttpResponse:
    line = chains.timeline(root)
    role = root.project.role_of(request.user)
    export = root.exports.order_by("-created_at", "-pk").first()
    return render(
        request,
        "videos/chain.html",
        {
            "project": root.project,
            "root": root,
            "line": line,
            "segments_json": _segments_for_player(line),
            "quality": seams.line_quality(line, queue_missing=True),
            "can_generate": chains.can_generate(role),
            "export": export,
            "review": review_context(
                clip=root, scope=CommentScope.CHAIN, length=line.total, **review_overrides
            ),
            # A trim refused without JavaScript: (clip id, form with its errors).
            "trim_form": trim_form,
        },
        status=status,
    )


@login_required
@require_GET
def chain(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    clip = _clip_for(request, pk)
    root = clip.chain_root()
    if root.pk != clip.pk:
        return redirect("chain", root.pk)
    if request.htmx and request.htmx.target == "seams":
        # The seam strip polls while parts are still being measured.
        line = chains.timeline(root)
        return render(
            request,
            "videos/chain.html#seams",
            {
                "root": root,
                "line": line,
                "quality": seams.line_quality(line),
                "can_generate": chains.can_generate(root.project.role_of(request.user)),
            },
        )
    return _chain_page(request, root)


@login_required
@require_GET
def chain_export_status(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    root = _clip_for(request, pk)
    export = root.exports.order_by("-created_at", "-pk").first()
    if not request.htmx:
        return redirect(reverse("chain", args=[root.pk]) + "#export")
    return render(
        request,
        "videos/chain.html#export-status",
        {
            "root": root,
            "export": export,
            "can_generate": chains.can_generate(root.project.role_of(request.user)),
        },
    )


@login_required
@require_POST
def chain_export(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    root = _clip_for(request, pk)
    _require_creator(request, root.project)
    if root.parent_id is not None:
        return redirect("chain", root.chain_root().pk)
    try:
        chains.start_export(root=root, user=request.user)
    except chains.ChainError as exc:
        return _with_message(request, root, exc.message)
    return redirect(reverse("chain", args=[root.pk]) + "#export")


def _with_message(request: HttpRequest, root: Clip, message: str) -> HttpResponse:
    messages.error(request, message)
    return redirect("chain", root.pk)


@login_required
@require_GET
def export_video(request: HttpRequest, pk: int) -> HttpResponse:
    export = get_object_or_404(
        ChainExport.objects.filter(root__project__memberships__user=request.user), pk=pk
    )
    return files.serve(
        request,
        export.file_key,
        content_type="video/mp4",
        filename=f"chain-{export.root_id}-export-{export.pk}.mp4",
    )


@login_required
@require_POST
def choose_main_take(request: HttpRequest, pk: int) -> HttpResponse:
    take = _clip_for(request, pk)
    _require_creator(request, take.project)
    root = take.chain_root()
    try:
        chains.choose_main_take(take=take, user=request.user)
    except chains.ChainError as exc:
        return _with_message(request, root, exc.message)
    return redirect(reverse("chain", args=[root.pk]) + f"#segment-{take.pk}")


@login_required
@require_POST
def clip_trim(request: HttpRequest, pk: int) -> HttpResponse:
    """In and out points of one segment; the chain plays and exports only what they keep."""
    clip = _clip_for(request, pk)
    _require_creator(request, clip.project)
    root = clip.chain_root()
    form = TrimForm(request.POST)
    if form.is_valid():
        data = form.cleaned_data
        try:
            trim.set_trim(
                clip=clip,
                user=request.user,
                cut_in=None if data["reset"] else data["trim_in"],
                cut_out=None if data["reset"] else data["trim_out"],
            )
        except trim.TrimError as exc:
            form.add_error(exc.field, exc.message)
    if form.errors and chains.timeline(root).position_of(clip) is None:
        # Not on the main line, so no fields to show the reason by.
        messages.error(request, " ".join(e for errors in form.errors.values() for e in errors))
        return redirect("chain", root.pk)
    if form.errors:
        return _chain_page(request, root, trim_form=(clip.pk, form), status=400)
    return redirect(reverse("chain", args=[root.pk]) + f"#segment-{clip.pk}")


# --- extend and continue -----------------------------------------------------------------------


@login_required
@require_http_methods(["GET", "POST"])
def clip_extend(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    source = _clip_for(request, pk)
    _require_creator(request, source.project)
    form = ExtendForm(request.POST or None, source=source, initial={"prompt": source.prompt})
    if request.method == "POST" and form.is_valid():
        try:
            clip = chains.extend_clip(
                source=source,
                user=request.user,
                prompt=form.cleaned_data["prompt"],
                raw=form.cleaned_data.get("raw", False),
                negative_prompt=form.cleaned_data.get("negative_prompt", ""),
                options=form.option_params(),
            )
        except (chains.ChainError, BudgetExceeded) as exc:
            form.add_error(None, getattr(exc, "message", str(exc)))
        else:
            return redirect(clip)
    return render(
        request,
        "videos/clip_extend.html",
        {
            "project": source.project,
            "source": source,
            "form": form,
            "offer": chains.extend_offer(source),
            "refusal": chains.extend_refusal(source),
        },
    )


@login_required
@require_http_methods(["GET", "POST"])
def clip_continue(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    source = _clip_for(request, pk)
    _require_creator(request, source.project)
    targets = chains.continue_targets(source.project)
    if request.method == "POST":
        form = ContinueForm(request.POST, source=source, targets=targets)
        if form.is_valid():
            account, spec = form.targets[form.cleaned_data["target"]]
            try:
                clip = chains.continue_clip(
                    source=source,
                    user=request.user,
                    account=account,
                    model=spec.name,
                    prompt=form.cleaned_data["prompt"],
                    params=form.params(),
                    match_colours=form.cleaned_data.get("match_colours", False),
                )
            except (chains.ChainError, BudgetExceeded) as exc:
                form.add_error(None, getattr(exc, "message", str(exc)))
            else:
                if request.htmx:
                    return HttpResponseClientRedirect(clip.get_absolute_url())
                return redirect(clip)
    else:
        initial = {
            "prompt": source.prompt,
            "prompt_extend": source.params.get("prompt_extend") or source.prompt,
            **request.GET.dict(),
        }
        form = ContinueForm(initial=initial, source=source, targets=targets)
    refusal = chains.continue_refusal(source)
    template = "videos/clip_continue.html"
    if request.htmx and request.method == "GET":
        template += "#handoff" if request.htmx.target == "handoff" else "#continue-fields"
    preview, preview_problem = None, None
    if not refusal and not template.endswith("#continue-fields"):
        try:
            preview = chains.handoff_preview(source, match_colours=form.wants_matched_colours())
        except chains.ChainError as exc:
            preview_problem = exc.message
    return render(
        request,
        template,
        {
            "project": source.project,
            "source": source,
            "form": form,
            "refusal": refusal,
            "has_targets": bool(targets),
            "preview": preview,
            "preview_problem": preview_problem,
        },
    )


# --- review ------------------------------------------------------------------------------------


def _review_target(clip: Clip, scope: str) -> str:
    if scope == CommentScope.CHAIN:
        return reverse("chain", args=[clip.pk]) + "#review-chain"
    return clip.get_absolute_url() + "#review-clip"


def _review_response(
    request: HtmxHttpRequest, clip: Clip, scope: str, *, invalid: bool = False, **forms
) -> HttpResponse:
    if request.htmx:
        length = (
            chains.timeline(clip).total if scope == CommentScope.CHAIN else clip.duration_seconds
        )
        context = review_context(clip=clip, scope=scope, length=length, **forms)
        return render(request, "videos/_review.html", {"review": context})
    if not invalid:
        return redirect(_review_target(clip, scope))
    # Without JavaScript a refused comment comes back on its page, the message by the field.
    if scope == CommentScope.CHAIN:
        return _chain_page(request, clip, **forms)
    return render(
        request,
        "videos/clip.html",
        {
            "clip": clip,
            "project": clip.project,
            "can_generate": chains.can_generate(clip.project.role_of(request.user)),
            "review_overrides": forms,
        },
    )


def _scope_of(request: HttpRequest) -> str:
    scope = request.POST.get("scope")
    return scope if scope in CommentScope.values else CommentScope.CLIP


@login_required
@require_POST
def clip_comment(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    clip = _clip_for(request, pk)
    scope = _scope_of(request)
    if scope == CommentScope.CHAIN and clip.parent_id is not None:
        clip = clip.chain_root()
    length = chains.timeline(clip).total if scope == CommentScope.CHAIN else clip.duration_seconds
    replying = bool(request.POST.get("reply_to"))
    form = CommentForm(
        request.POST, length=length, auto_id="id_reply_%s" if replying else f"id_{scope}_%s"
    )
    reply_to = None
    if form.is_valid() and form.cleaned_data["reply_to"]:
        reply_to = Comment.objects.filter(clip=clip, pk=form.cleaned_data["reply_to"]).first()
        if reply_to is None:
            form.add_error("body", "The comment you replied to no longer exists.")
    if not form.is_valid():
        key = "reply_form" if replying else "comment_form"
        return _review_response(request, clip, scope, invalid=True, **{key: form})
    review.add_comment(
        clip=clip,
        user=request.user,
        body=form.cleaned_data["body"],
        scope=scope,
        timecode=None if reply_to else form.cleaned_data["timecode"],
        reply_to=reply_to,
    )
    return _review_response(request, clip, scope)


@login_required
@require_POST
def comment_resolve(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    comment = get_object_or_404(
        Comment.objects.filter(clip__project__memberships__user=request.user).select_related(
            "clip__project", "reply_to"
        ),
        pk=pk,
    )
    form = ResolveForm(request.POST)
    if form.is_valid():
        review.resolve(
            comment=comment, user=request.user, resolved=form.cleaned_data["action"] == "resolve"
        )
    return _review_response(request, comment.clip, comment.scope)


@login_required
@require_POST
def clip_decide(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    clip = _clip_for(request, pk)
    form = DecisionForm(request.POST)
    if not form.is_valid():
        return _review_response(request, clip, _scope_of(request), invalid=True, decision_form=form)
    scope = form.cleaned_data["scope"]
    if scope == CommentScope.CHAIN and clip.parent_id is not None:
        clip = clip.chain_root()
    review.decide(
        clip=clip,
        user=request.user,
        verdict=form.cleaned_data["verdict"],
        scope=scope,
        note=form.cleaned_data["note"],
    )
    return _review_response(request, clip, scope)
