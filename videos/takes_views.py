"""Views for takes: the side-by-side comparison of one request's takes, and the pick.

Every member compares; creators and admins pick (the pick changes what the chain builds
on, like choosing a main take). Non-members get a 404, as everywhere in the studio.
"""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST
from django_htmx.middleware import HtmxDetails

from videos import chains, permissions, takes
from videos.forms import IdField
from videos.models import TakeGroup


class HtmxHttpRequest(HttpRequest):
    htmx: HtmxDetails


class PickForm(forms.Form):
    take = IdField(required=True)


def _group_for(request: HttpRequest, pk: int) -> TakeGroup:
    return get_object_or_404(
        TakeGroup.objects.filter(project__memberships__user=request.user).select_related("project"),
        pk=pk,
    )


@login_required
@require_GET
def takes_page(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    group = _group_for(request, pk)
    project = group.project
    role = project.role_of(request.user)
    template = "videos/takes.html"
    if request.htmx:
        template += "#takes-grid"
    comparison = takes.compare(group)
    pick = comparison.pick
    return render(
        request,
        template,
        {
            "project": project,
            "group": group,
            "comparison": comparison,
            "extend_refusal": chains.extend_refusal(pick) if pick else None,
            "can_pick": chains.can_generate(role),
            "can_generate": permissions.can_spend(project, request.user, role=role),
        },
    )


@login_required
@require_POST
def take_pick(request: HttpRequest, pk: int) -> HttpResponse:
    group = _group_for(request, pk)
    if not chains.can_generate(group.project.role_of(request.user)):
        raise PermissionDenied("Reviewers compare takes; the project's creators pick one.")
    form = PickForm(request.POST)
    target = reverse("takes", args=[group.pk])
    if not form.is_valid():
        messages.error(request, "Choose one of these takes.")
        return redirect(target)
    take = group.takes.filter(pk=form.cleaned_data["take"]).first()
    if take is None:
        messages.error(request, "That clip is not one of these takes.")
        return redirect(target)
    try:
        takes.pick(group=group, take=take, user=request.user)
    except takes.TakesError as exc:
        messages.error(request, exc.message)
        return redirect(target)
    return redirect(f"{target}#take-{take.pk}")
