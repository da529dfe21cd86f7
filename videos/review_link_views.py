"""Views for making and revoking review links (project admins only).

A new link's address is shown once, on the page the admin lands on after making it: the
studio keeps only its hash, so it cannot show it again.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from videos import review_links
from videos.models import Clip, CommentScope, ReviewLink
from videos.review_link_forms import ReviewLinkForm

JUST_MADE = "review_link_just_made"
ADMINS_ONLY = "Only the project's admins make and revoke review links."


def _clip_for(request: HttpRequest, pk: int) -> Clip:
    # Non-members get a 404, not a 403: a project's existence is private too.
    return get_object_or_404(
        Clip.objects.for_user(request.user).select_related("project", "provider_account"), pk=pk
    )


@login_required
@require_http_methods(["GET", "POST"])
def clip_share(request: HttpRequest, pk: int) -> HttpResponse:
    clip = _clip_for(request, pk)
    project = clip.project
    if not review_links.can_manage(project, request.user):
        raise PermissionDenied(ADMINS_ONLY)
    root = clip.chain_root()
    in_chain = root.pk != clip.pk or clip.children.exists()
    initial = {"scope": CommentScope.CHAIN if in_chain else CommentScope.CLIP}
    form = ReviewLinkForm(request.POST or None, initial=initial, in_chain=in_chain)
    if request.method == "POST" and form.is_valid():
        made = review_links.create_link(
            clip=clip,
            scope=form.cleaned_data["scope"],
            user=request.user,
            expires_at=form.expires_at(),
            passcode=form.cleaned_data["passcode"],
            label=form.cleaned_data["label"],
        )
        request.session[JUST_MADE] = {
            "id": made.link.pk,
            "url": request.build_absolute_uri(made.path),
        }
        return redirect("clip-share", clip.pk)
    just_made = request.session.pop(JUST_MADE, None) if request.method == "GET" else None
    links = list(review_links.links_for(clip))
    if root.pk != clip.pk:
        links += list(review_links.links_for(root).filter(scope=CommentScope.CHAIN))
    return render(
        request,
        "videos/review_links.html",
        {
            "project": project,
            "clip": clip,
            "root": root,
            "form": form,
            "links": links,
            "just_made": just_made,
        },
    )


@login_required
@require_POST
def review_link_revoke(request: HttpRequest, pk: int) -> HttpResponse:
    link = get_object_or_404(
        ReviewLink.objects.filter(project__memberships__user=request.user).select_related(
            "project", "clip"
        ),
        pk=pk,
    )
    if not review_links.can_manage(link.project, request.user):
        raise PermissionDenied(ADMINS_ONLY)
    if review_links.revoke(link=link, user=request.user):
        name = review_links.name_of(link)
        messages.success(request, f"“{name}” is revoked: it opens nothing now.")
    return redirect("clip-share", link.clip_id)
