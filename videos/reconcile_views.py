"""Pages and actions for submissions whose outcome is unknown, and for money that does not match."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_POST

from videos import permissions
from videos.models import Clip, ClipStatus
from videos.pipeline import reconcile


class TaskIdForm(forms.Form):
    task_id = forms.CharField(
        label="Provider task id",
        max_length=200,
        strip=True,
        help_text="As the provider's dashboard shows it.",
    )


def _unknown_clip(request: HttpRequest, pk: int) -> Clip:
    clip = get_object_or_404(
        Clip.objects.for_user(request.user).select_related("project", "provider_account"), pk=pk
    )
    if not permissions.can_spend(clip.project, request.user):
        raise PermissionDenied("Only the project's creators and admins can settle submissions.")
    return clip


@login_required
@require_POST
def clip_check(request: HttpRequest, pk: int) -> HttpResponse:
    """Ask the provider again about a submission whose answer was lost."""
    clip = _unknown_clip(request, pk)
    if clip.status != ClipStatus.UNKNOWN:
        messages.info(request, "This clip's outcome is already known.")
    elif reconcile.look_up(clip_id=clip.pk):
        messages.success(request, "Found at the provider: the clip is being tracked again.")
    elif reconcile.can_look_up(clip):
        messages.warning(
            request, "The provider does not list this submission (yet). Try again in a minute."
        )
    else:
        messages.warning(
            request,
            f"{clip.provider_account.get_kind_display()} cannot be searched for a lost "
            "submission: check its dashboard, then enter the task id or mark it as not sent.",
        )
    return redirect(clip)


@login_required
@require_POST
def clip_adopt(request: HttpRequest, pk: int) -> HttpResponse:
    clip = _unknown_clip(request, pk)
    form = TaskIdForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Enter the provider's task id (at most 200 characters).")
        return redirect(clip)
    try:
        reconcile.adopt(clip=clip, task_id=form.cleaned_data["task_id"], user=request.user)
    except reconcile.CannotAdopt as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, "Task found at the provider: the clip is being tracked.")
    return redirect(clip)


@login_required
@require_POST
def clip_not_sent(request: HttpRequest, pk: int) -> HttpResponse:
    clip = _unknown_clip(request, pk)
    if reconcile.mark_not_sent(clip=clip, user=request.user):
        messages.success(request, "Marked as never sent; its estimate no longer counts.")
    return redirect(clip)


@login_required
@require_GET
def mismatches(request: HttpRequest) -> HttpResponse:
    """Staff: paid or possibly paid without a video, and videos whose cost is not settled."""
    if not request.user.is_staff:
        raise PermissionDenied("Only staff can see spending across projects.")
    return render(request, "videos/mismatches.html", {"found": reconcile.mismatches()})
