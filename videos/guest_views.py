"""Pages for guests: what someone without an account reaches through a review link.

Everything here is found by the link's token, never by an id alone: the video and poster of
each part are served under the token too, and only for the parts the link plays. A guest's
session remembers the links it opened, and ``GuestBoundary`` answers every other studio
page with a 404 for it (not the login page, which would say the page exists).
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.middleware import HtmxDetails

from videos import files, review_links
from videos.models import Clip, ReviewLink
from videos.review_link_forms import GuestCommentForm, GuestDecisionForm, PasscodeForm

VISITS = "review_links_opened"
UNLOCKED = "review_links_unlocked"
GUEST_NAME = "review_guest_name"


class HtmxHttpRequest(HttpRequest):
    htmx: HtmxDetails


def _remember(request: HttpRequest, key: str, link: ReviewLink) -> None:
    known = request.session.get(key, [])
    if link.pk not in known:
        request.session[key] = [*known, link.pk][-50:]


def _open(request: HttpRequest, token: str) -> ReviewLink | HttpResponse:
    """The usable link of this token, or the page that says why there is none."""
    link = review_links.find(token)
    if link is None:
        return _missing(request)
    _remember(request, VISITS, link)
    if not link.is_usable:
        return render(request, "videos/guest_gone.html", {"link": link}, status=410)
    return link


def _unlocked(request: HttpRequest, link: ReviewLink) -> bool:
    return not link.passcode_hash or link.pk in request.session.get(UNLOCKED, [])


def _page(
    request: HttpRequest,
    link: ReviewLink,
    token: str,
    *,
    template: str = "videos/guest_review.html",
    status: int = 200,
    comment_form: GuestCommentForm | None = None,
    decision_form: GuestDecisionForm | None = None,
) -> HttpResponse:
    view = review_links.guest_view(link)
    name = request.session.get(GUEST_NAME, "")
    return render(
        request,
        template,
        {
            "link": link,
            "token": token,
            "view": view,
            "segments_json": [
                {
                    "clip": segment.clip_id,
                    "src": reverse("guest-video", args=[token, segment.clip_id]),
                    "poster": reverse("guest-poster", args=[token, segment.clip_id])
                    if segment.has_poster
                    else "",
                    "start": round(segment.start, 3),
                    "end": round(segment.end, 3),
                    "offset": round(segment.offset, 3),
                    "length": round(segment.length, 3),
                }
                for segment in view.segments
            ],
            "comment_form": comment_form
            or GuestCommentForm(initial={"name": name}, length=view.total, auto_id="id_c_%s"),
            "decision_form": decision_form
            or GuestDecisionForm(initial={"name": name}, auto_id="id_d_%s"),
        },
        status=status,
    )


@require_http_methods(["GET", "POST"])
def guest_page(request: HttpRequest, token: str) -> HttpResponse:
    opened = _open(request, token)
    if isinstance(opened, HttpResponse):
        return opened
    link = opened
    if _unlocked(request, link):
        if request.method == "POST":
            return redirect("guest", token)
        return _page(request, link, token)
    form = PasscodeForm(request.POST or None)
    status = 200
    if request.method == "POST" and form.is_valid():
        try:
            if review_links.check_passcode(link=link, passcode=form.cleaned_data["passcode"]):
                _remember(request, UNLOCKED, link)
                return redirect("guest", token)
            form.add_error("passcode", "That passcode is not right.")
            status = 403
        except review_links.LinkError as exc:
            form.add_error("passcode", exc.message)
            status = 429
    return render(
        request, "videos/guest_passcode.html", {"link": link, "form": form}, status=status
    )


def _guest_link(request: HttpRequest, token: str) -> ReviewLink | HttpResponse:
    opened = _open(request, token)
    if isinstance(opened, HttpResponse):
        return opened
    if not _unlocked(request, opened):
        return redirect("guest", token)
    return opened


def _after_post(request: HtmxHttpRequest, link: ReviewLink, token: str, **forms) -> HttpResponse:
    invalid = any(form.errors for form in forms.values())
    if request.htmx:
        # htmx swaps only successful answers: a refusal comes back as a 200 with its reason.
        fragment = "videos/guest_review.html#guest-review"
        return _page(request, link, token, template=fragment, **forms)
    if invalid:
        return _page(request, link, token, status=429 if _throttled(forms) else 400, **forms)
    return redirect(reverse("guest", args=[token]) + "#guest-review")


def _throttled(forms: dict) -> bool:
    return any(getattr(form, "throttled", False) for form in forms.values())


@require_POST
def guest_comment(request: HtmxHttpRequest, token: str) -> HttpResponse:
    opened = _guest_link(request, token)
    if isinstance(opened, HttpResponse):
        return opened
    link = opened
    length = review_links.guest_view(link).total
    form = GuestCommentForm(request.POST, length=length, auto_id="id_c_%s")
    if form.is_valid():
        request.session[GUEST_NAME] = form.cleaned_data["name"]
        try:
            review_links.guest_comment(
                link=link,
                name=form.cleaned_data["name"],
                body=form.cleaned_data["body"],
                timecode=form.cleaned_data["timecode"],
            )
        except review_links.LinkError as exc:
            form.add_error(None, exc.message)
            form.throttled = exc.retry_after is not None
        else:
            form = None
    return _after_post(request, link, token, **({"comment_form": form} if form else {}))


@require_POST
def guest_decide(request: HtmxHttpRequest, token: str) -> HttpResponse:
    opened = _guest_link(request, token)
    if isinstance(opened, HttpResponse):
        return opened
    link = opened
    form = GuestDecisionForm(request.POST, auto_id="id_d_%s")
    if form.is_valid():
        request.session[GUEST_NAME] = form.cleaned_data["name"]
        try:
            review_links.guest_decide(
                link=link,
                name=form.cleaned_data["name"],
                verdict=form.cleaned_data["verdict"],
                note=form.cleaned_data["note"],
            )
        except review_links.LinkError as exc:
            form.add_error(None, exc.message)
            form.throttled = exc.retry_after is not None
        else:
            form = None
    return _after_post(request, link, token, **({"decision_form": form} if form else {}))


def _clip_of(request: HttpRequest, token: str, clip_id: int) -> Clip | None:
    link = review_links.find(token)
    if link is None or not link.is_usable or not _unlocked(request, link):
        return None
    if not review_links.may_see_clip(link, clip_id):
        return None
    return Clip.objects.only("pk", "file_key", "poster_key").get(pk=clip_id)


def _missing(request: HttpRequest) -> HttpResponse:
    # The guest's own "not found", without the studio's navigation.
    return render(request, "videos/guest_missing.html", status=404)


@require_GET
def guest_video(request: HttpRequest, token: str, clip_id: int) -> HttpResponse:
    clip = _clip_of(request, token, clip_id)
    if clip is None or not clip.file_key:
        return _missing(request)
    return files.serve(request, clip.file_key, content_type="video/mp4", filename="part.mp4")


@require_GET
def guest_poster(request: HttpRequest, token: str, clip_id: int) -> HttpResponse:
    clip = _clip_of(request, token, clip_id)
    if clip is None or not clip.poster_key:
        return _missing(request)
    return files.serve(request, clip.poster_key, content_type="image/jpeg", filename="part.jpg")


# --- the boundary ------------------------------------------------------------------------------

# Studio addresses that are open to anyone by design (providers call them).
OPEN_TO_ALL = frozenset({"frame-link", "provider-callback", "healthz", "readyz"})


class GuestBoundary:
    """A visitor who came through a review link gets a 404 from every studio page.

    Logged-in members are never affected, nor are pages outside the studio's own (the
    login page, the admin's login).
    """

    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_view(self, request: HttpRequest, view_func, view_args, view_kwargs):
        if request.user.is_authenticated or not request.session.get(VISITS):
            return None
        module = getattr(view_func, "__module__", "") or ""
        if not module.startswith("videos.") or module == __name__:
            return None
        match = request.resolver_match
        if match is not None and match.url_name in OPEN_TO_ALL:
            return None
        return _missing(request)
