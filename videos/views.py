from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core import signing
from django.core.exceptions import PermissionDenied
from django.core.files.storage import default_storage
from django.db.models.functions import Lower
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.text import slugify
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import HttpResponseClientRedirect
from django_htmx.middleware import HtmxDetails

from videos import (
    chains,
    files,
    frames,
    ledger,
    options,
    permissions,
    pipeline,
    pricing,
    providers,
    services,
    takes,
)
from videos.compiled import CompiledQuery, compared_columns
from videos.conditional import unchanged_is_304
from videos.forms import (
    TRANSPORT_LABELS,
    ClipForm,
    RetryExtensionForm,
    StatusPollForm,
    initial_from_clip,
)
from videos.models import (
    Clip,
    ClipKind,
    ClipStatus,
    Frame,
    Membership,
    Project,
    ProviderAccount,
    WorkerHeartbeat,
)
from videos.pipeline import reconcile

# Shown on the 403 page: the reviewer learns why and who can change it.
REVIEWER_CANNOT_GENERATE = (
    "You review this project: you can watch, comment and decide, but making clips spends "
    "money, which is for its creators and admins. A project admin can make you a creator."
)


class HtmxHttpRequest(HttpRequest):
    htmx: HtmxDetails


def _project_for(request: HttpRequest, pk: int) -> Project:
    # Non-members get a 404, not a 403: a project's existence is private too.
    return get_object_or_404(Project.objects.for_user(request.user), pk=pk)


def _clip_query(*, user_id: int, clip_id: int):
    return (
        Clip.objects.filter(pk=clip_id, project__memberships__user=user_id)
        .select_related("project", "provider_account")
        # Pages never call a provider: the account's keys are not even decrypted.
        .defer("provider_account__credential", "provider_account__secret_key")
    )


# Read by every clip page and by each poll that is not a 304: compiled to SQL once.
CLIP_FOR_VIEWER = CompiledQuery(_clip_query, user_id=int, clip_id=int)


def _clip_for(request: HttpRequest, pk: int) -> Clip:
    # Non-members get a 404, not a 403: a clip's existence is private too.
    clip = CLIP_FOR_VIEWER.instance(user_id=request.user.pk, clip_id=pk)
    if clip is None:
        raise Http404("No such clip, or not one of yours.")
    return clip


# The viewer's role in a project and whether they were given the right to spend: read by
# every clip page and every poll whose status changed, so compiled to SQL once.
VIEWER_RIGHTS = CompiledQuery(
    lambda user_id, project_id: Membership.objects.filter(
        project_id=project_id, user=user_id
    ).values_list("role", permissions.spending_right_granted(user_id)),
    user_id=int,
    project_id=int,
)


def _viewer_rights(request: HttpRequest, clip: Clip) -> tuple[str | None, bool]:
    """The viewer's role in the clip's project and whether they may spend there, in one
    read (``role_of`` and ``has_perm`` would take three)."""
    user = request.user
    row = VIEWER_RIGHTS.first(user_id=user.pk, project_id=clip.project_id)
    role, granted = row or (None, False)
    right = permissions.has_spending_right_given(user, granted=granted)
    return role, permissions.can_spend(clip.project, user, role=role, right=right)


def _clip_can_generate(request: HttpRequest, clip: Clip) -> bool:
    return _viewer_rights(request, clip)[1]


def _can_generate(project: Project, user) -> bool:
    return permissions.can_spend(project, user)


def _initial_from(query) -> dict:
    initial = query.dict()
    initial["keep_frames"] = query.getlist("keep_frames")
    return initial


def _clip_form_page(
    request: HtmxHttpRequest, project: Project, form: ClipForm, *, template_clip: Clip | None
) -> HttpResponse:
    template = "videos/clip_new.html"
    if request.htmx and request.method == "GET":
        # The model or duration changed: only the fields (or only the estimate) are redrawn.
        template += "#clip-estimate" if request.htmx.target == "clip-estimate" else "#clip-fields"
    budget = ledger.budget_status(project)
    return render(
        request,
        template,
        {
            "project": project,
            "form": form,
            "has_accounts": form.fields["provider_account"].queryset.exists(),
            "estimate": form.estimated_cost(),
            "budget": budget,
            # What Generate may still spend: the warning beside the estimate says when it
            # would be refused, before the click.
            "budget_left": None if budget.left is None else max(ledger.ZERO, budget.left),
            "template_clip": template_clip,
        },
    )


def _offered_accounts(project: Project):
    # By label as people read it: "apimart" beside "Kling", not after every capital.
    return ProviderAccount.objects.enabled_for(project).order_by(Lower("label"), "pk")


@login_required
@require_http_methods(["GET", "POST"])
def clip_new(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    project = _project_for(request, pk)
    if not _can_generate(project, request.user):
        raise PermissionDenied(REVIEWER_CANNOT_GENERATE)
    accounts = _offered_accounts(project)
    if request.method == "POST" and request.POST.get("refresh"):
        # Without JavaScript, "Update choices" redraws the form for the chosen model.
        form = ClipForm(initial=_initial_from(request.POST), accounts=accounts, project=project)
    elif request.method == "POST":
        form = ClipForm(request.POST, request.FILES, accounts=accounts, project=project)
        if form.is_valid():
            count = form.cleaned_data.get("takes") or 1
            try:
                if count > 1:
                    group = takes.create_takes(
                        project=project,
                        user=request.user,
                        account=form.cleaned_data["provider_account"],
                        model=form.cleaned_data["model"],
                        prompt=form.cleaned_data["prompt"],
                        params=form.params(),
                        frames=form.new_frames,
                        count=count,
                    )
                    target = reverse("takes", args=[group.pk])
                    if request.htmx:
                        return HttpResponseClientRedirect(target)
                    return redirect(target)
                clip = services.create_clip(
                    project=project,
                    user=request.user,
                    account=form.cleaned_data["provider_account"],
                    model=form.cleaned_data["model"],
                    prompt=form.cleaned_data["prompt"],
                    params=form.params(),
                    frames=form.new_frames,
                )
            except ledger.BudgetExceeded as exc:
                form.add_error(None, str(exc))
                return _clip_form_page(request, project, form, template_clip=None)
            if request.htmx:
                return HttpResponseClientRedirect(clip.get_absolute_url())
            return redirect(clip)
    else:
        form = ClipForm(initial=_initial_from(request.GET), accounts=accounts, project=project)
    return _clip_form_page(request, project, form, template_clip=None)


@login_required
@require_GET
def clip_template(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    """The new-clip form filled in from this clip: its prompt, settings and frames."""
    clip = _clip_for(request, pk)
    project = clip.project
    if not _clip_can_generate(request, clip):
        raise PermissionDenied(REVIEWER_CANNOT_GENERATE)
    accounts = _offered_accounts(project)
    form = ClipForm(initial=initial_from_clip(clip), accounts=accounts, project=project)
    if form.account is not None and form.account.pk != clip.provider_account_id:
        messages.warning(
            request,
            f"{clip.provider_account.label} is no longer available to this project; "
            "pick another provider.",
        )
    return _clip_form_page(request, project, form, template_clip=clip)


# Scheduling bookkeeping the tracker rewrites on every poll; the page shows none of it.
CLIP_BOOKKEEPING = frozenset(
    {
        "last_polled_at",
        "next_poll_at",
        "poll_failures",
        "tracking_lease_until",
        "submit_claimed_at",
        "submit_lease_until",
        "mirror_attempts",
    }
)
CLIP_SHOWN = tuple(
    field.attname for field in Clip._meta.concrete_fields if field.attname not in CLIP_BOOKKEEPING
)


def _clip_status_query(*, user_id: int, clip_id: int):
    return Clip.objects.filter(pk=clip_id, project__memberships__user=user_id).values_list(
        *compared_columns(Clip, CLIP_SHOWN),
        "provider_account__kind",
        "provider_account__unit_price",
        "project__memberships__role",
        # The inputs of user.has_perm(SPEND), read in the same query.
        permissions.spending_right_granted(user_id),
    )


# Read on every poll of a clip page: compiled to SQL once.
CLIP_STATUS = CompiledQuery(_clip_status_query, user_id=int, clip_id=int)
CLIP_STATUS_AT = CLIP_SHOWN.index("status")


def _clip_status_version(request: HtmxHttpRequest, pk: int) -> object | None:
    """What the polled status fragment shows: the clip's row, the viewer's rights, the price.

    A queued clip's fragment also shows the queue ahead of it and whether the tracker runs,
    and an unknown outcome whether it can be looked up: those depend on other rows, so
    they are always rendered.
    """
    if not request.htmx:
        return None
    # Compared, never shown: the database's own values will do.
    row = CLIP_STATUS.first(user_id=request.user.pk, clip_id=pk, converted=False)
    if row is None or row[CLIP_STATUS_AT] in {ClipStatus.QUEUED, ClipStatus.UNKNOWN}:
        return None
    return (row, request.user.is_active, request.user.is_superuser)


# States whose status card offers actions (retry, look up, retry the extension), so only
# their polls need the viewer's rights.
STATES_WITH_ACTIONS = services.RETRYABLE | {ClipStatus.UNKNOWN, ClipStatus.PARTIAL}


def _status_context(request: HttpRequest, clip: Clip, *, can_generate: bool | None) -> dict:
    """What the status card shows (the polled fragment): kept to the few reads it needs."""
    if can_generate is None:
        can_generate = clip.status in STATES_WITH_ACTIONS and _clip_can_generate(request, clip)
    return {
        "clip": clip,
        "project": clip.project,
        "can_generate": can_generate,
        "can_retry": clip.status in services.RETRYABLE,
        "actual_cost": pricing.actual_cost(clip),
        "can_retry_extension": (
            can_generate
            and clip.status == ClipStatus.PARTIAL
            and chains.retry_extension_refusal(clip) is None
        ),
        "slots_ahead": pipeline.submit.slots_ahead(clip),
        "tracker_down": clip.status in {"queued", "running"}
        and not WorkerHeartbeat.alive("tracker"),
        "saving_slow": clip.status == "mirroring" and clip.saving_is_slow,
        "can_look_up": clip.status == "unknown" and reconcile.can_look_up(clip),
    }


@login_required
@require_GET
@unchanged_is_304(_clip_status_version)
def clip_detail(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    clip = _clip_for(request, pk)
    if request.htmx:
        poll = StatusPollForm(request.GET)
        if poll.is_valid() and poll.cleaned_data["seen"] == clip.status:
            # Only the progress moved: the details, the chain's actions and the 1080p card
            # change with the status alone, so the card is redrawn by itself.
            return render(
                request,
                "videos/clip.html#clip-status",
                {**_status_context(request, clip, can_generate=None), "oob": False},
            )
    template = "videos/clip.html"
    if request.htmx:
        template += "#clip-status"
    spec = providers.model_spec(clip.provider_account.kind, clip.model)
    role, can_generate = _viewer_rights(request, clip)
    return render(
        request,
        template,
        {
            **_status_context(request, clip, can_generate=can_generate),
            "viewer_role": role,
            # A poll whose status changed also swaps what changes with the state: the
            # details and the chain's actions (out of band), so Ready enables Extend
            # without a reload.
            "oob": bool(request.htmx),
            "model_label": spec.label if spec else clip.model,
            "option_details": options.described(spec, clip.params),
            "sound": options.sound(spec, clip.params),
            "settings_line": settings_line(clip),
            **_hd_context(clip),
            "frames": frames.ordered(clip.frames.all()),
            "transport_label": TRANSPORT_LABELS.get(clip.params.get("frame_transport", "")),
        },
    )


def settings_line(clip: Clip) -> str:
    """What a clip asked for, in words. An extension says what it adds and how long the
    video is in all, not only the length of the new part."""
    params = clip.params
    shape = " · ".join(str(params[k]) for k in ("aspect_ratio", "resolution") if params.get(k))
    if clip.kind != ClipKind.EXTEND:
        seconds = f"{params['duration']} s" if params.get("duration") else ""
        return " · ".join(part for part in (seconds, shape) if part)
    adds = params.get("duration")
    if clip.has_video:
        start, end = clip.timeline_range()
        length = f"New part {end - start:.1f} s"
        whole = f"{end:.1f} s video" if start else ""
        text = " of a ".join(part for part in (length, whole) if part)
    else:
        parent_seconds = clip.parent.duration_seconds if clip.parent else 0
        source = params.get("source_seconds") or parent_seconds
        text = f"Adds about {adds} s" if adds else "Extension"
        if source and adds:
            text += f" to {source:.1f} s: about {float(source) + float(adds):.0f} s in all"
    return " · ".join(part for part in (text, shape) if part)


def _hd_context(clip: Clip) -> dict:
    """kie's 1080p version of this clip, shown beside it: the latest asked for, if any."""
    if clip.provider_account.kind != "kie" or clip.kind == ClipKind.UPSCALE:
        return {"hd": None, "hd_refusal": None, "offers_hd": False}
    hd = clip.children.filter(kind=ClipKind.UPSCALE).order_by("-created_at", "-pk").first()
    refusal = services.upscale_refusal(clip)
    return {
        "hd": hd,
        "hd_refusal": refusal,
        # Worth a card: it can be asked for, or has been; a clip still generating waits.
        "offers_hd": hd is not None or refusal is None or clip.status == ClipStatus.READY,
    }


@login_required
@require_http_methods(["GET", "POST"])
def clip_hd(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    """GET: the 1080p card (polled while kie makes it). POST: ask kie for the 1080p version."""
    clip = _clip_for(request, pk)
    can_generate = _clip_can_generate(request, clip)
    if request.method == "POST":
        if not can_generate:
            raise PermissionDenied(
                "You review this project: asking for a 1080p version is for its creators."
            )
        try:
            services.request_1080p(source=clip, user=request.user)
        except (services.CannotUpscale, permissions.NotAllowed) as exc:
            messages.error(request, str(exc))
    if request.method == "POST" or not request.htmx:
        if request.htmx:
            return HttpResponseClientRedirect(clip.get_absolute_url())
        return redirect(reverse("clip", args=[clip.pk]) + "#clip-hd")
    return render(
        request,
        "videos/_clip_hd.html",
        {"clip": clip, "can_generate": can_generate, **_hd_context(clip)},
    )


@login_required
@require_POST
def clip_retry_extension(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    """NewAPI: ask again for the 7 s extension of a clip whose first 8 s were made."""
    clip = _clip_for(request, pk)
    if not _clip_can_generate(request, clip):
        raise PermissionDenied(
            "You review this project: retrying an extension spends money, which is for its "
            "creators."
        )
    form = RetryExtensionForm(request.POST)
    target: Clip = clip
    if not form.is_valid():
        messages.error(request, "Say what happens in the extension, then retry it.")
    else:
        try:
            target = chains.retry_extension(
                source=clip, user=request.user, prompt=form.cleaned_data["prompt_extend"]
            )
        except (chains.ChainError, ledger.BudgetExceeded) as exc:
            messages.error(request, getattr(exc, "message", str(exc)))
    if request.htmx:
        return HttpResponseClientRedirect(target.get_absolute_url())
    return redirect(target)


@login_required
@require_POST
def clip_retry(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    """A new submission of a failed clip, made only because the creator clicked Retry."""
    clip = _clip_for(request, pk)
    if not _clip_can_generate(request, clip):
        raise PermissionDenied("Reviewers cannot generate clips.")
    try:
        new_clip = services.retry_clip(clip=clip, user=request.user)
    except (services.CannotRetry, ledger.BudgetExceeded) as exc:
        messages.error(request, str(exc))
        target = clip
    else:
        target = new_clip
    if request.htmx:
        return HttpResponseClientRedirect(target.get_absolute_url())
    return redirect(target)


@login_required
@require_GET
def clip_download(request: HttpRequest, pk: int) -> HttpResponse:
    """The video as an attachment named after its prompt."""
    clip = _clip_for(request, pk)
    if not clip.file_key:
        raise Http404("No video yet.")
    filename = f"clip-{clip.pk}-{slugify(clip.prompt)[:50].strip('-') or 'video'}.mp4"
    if not frames.storage_is_local():
        # S3: the presigned link asks the bucket itself to send it as a download.
        return redirect(
            default_storage.url(
                clip.file_key,
                parameters={"ResponseContentDisposition": f'attachment; filename="{filename}"'},
            )
        )
    try:
        handle = default_storage.open(clip.file_key, "rb")
    except FileNotFoundError:
        raise Http404("File missing.") from None
    return FileResponse(handle, as_attachment=True, filename=filename, content_type="video/mp4")


@login_required
@require_GET
def frame_image(request: HttpRequest, pk: int) -> HttpResponse:
    """A stored frame, for members (previews on the clip page and in the form).

    A pasted link is never redirected to: that would be an open redirect on the studio's
    domain, and would tell the link's owner who looked. The studio fetches a copy through
    the fetch guard (never a private address), checks it is an image of at most 10 MB and
    serves that, or a placeholder saying why not: the preview shows what the provider is
    given, and a broken link shows as broken where the creator is looking.
    """
    frame = get_object_or_404(
        Frame.objects.filter(clip__project__memberships__user=request.user).select_related(
            "clip__provider_account"
        ),
        pk=pk,
    )
    if frame.source_url:
        try:
            content, content_type = frames.fetch_linked(
                frame.source_url, allow_private=frame.clip.provider_account.is_sandbox
            )
        except frames.FrameError as exc:
            response = HttpResponse(
                frames.placeholder_svg(str(exc)), content_type="image/svg+xml", status=502
            )
        else:
            response = HttpResponse(content, content_type=content_type)
        # Someone else's bytes on the studio's origin: never a document that runs anything.
        response["Content-Security-Policy"] = "default-src 'none'; style-src 'unsafe-inline'"
        response["X-Content-Type-Options"] = "nosniff"
        response["Cache-Control"] = "private, max-age=300"
        return response
    return files.serve(
        request, frame.image.name, content_type=frame.content_type, filename=f"frame-{pk}"
    )


@require_GET
def frame_link(request: HttpRequest, token: str, name: str) -> HttpResponse:
    """A stored frame for a provider to fetch: no login, but a signed link that expires."""
    try:
        frame_id = frames.frame_for_token(token)
    except signing.SignatureExpired:
        return HttpResponse("This image link has expired.", status=410, content_type="text/plain")
    except signing.BadSignature:
        raise Http404("Unknown image link.") from None
    frame = get_object_or_404(Frame.objects.exclude(image=""), pk=frame_id)
    return files.serve(request, frame.image.name, content_type=frame.content_type, filename=name)


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
