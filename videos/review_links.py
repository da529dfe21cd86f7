"""Review links: someone without an account reviews one chain or one clip, until the link ends.

A project admin makes a link with an expiry and, if they like, a passcode. The link carries a
secret token (``secrets.token_urlsafe``); the database keeps only its SHA-256, so a copy of
the database opens nothing, and the passcode is kept as a password hash. Whoever has the link
sees the player and the timeline of what it was made for, the comments and the decisions on
it, with members named by their first names only; they comment at a timecode and approve or
ask for changes under a name they type. Nothing else of the project reaches them: no other
clip, no cost, no key, no member's username.

Guest actions are throttled by counting the rows they leave (failed passcodes in the audit
log, comments and decisions on the link), so the limits hold across every web process. Each
one is in the activity feed and on the audit page, marked as a guest's.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.contrib.auth.hashers import check_password, make_password
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from videos import audit, chains, review
from videos.models import (
    AuditEvent,
    Clip,
    Comment,
    CommentScope,
    Decision,
    ReviewLink,
    Role,
    Verdict,
)
from videos.permissions import NotAllowed

TOKEN_BYTES = 32
EXPIRY_DAYS = (1, 3, 7, 14, 30, 90)
# Wrong passcodes a link takes in the window before it refuses tries until the window passes.
PASSCODE_TRIES = 5
PASSCODE_WINDOW = timedelta(minutes=15)
# Comments and decisions guests may leave through one link in the window.
GUEST_POSTS = 20
GUEST_POSTS_WINDOW = timedelta(minutes=10)


class LinkError(Exception):
    """A guest action the studio refuses, with the reason in plain words."""

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.retry_after = retry_after


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def name_of(link: ReviewLink) -> str:
    return link.label or f"review link {link.pk}"


def _where(link: ReviewLink) -> str:
    if link.scope == CommentScope.CHAIN:
        return f"the chain of clip {link.clip_id}"
    return f"clip {link.clip_id}"


# --- making and ending links ---------------------------------------------------------------


@dataclass(frozen=True)
class NewLink:
    link: ReviewLink
    # Shown once, to the admin who made it: only its hash is kept.
    token: str

    @property
    def path(self) -> str:
        return reverse("guest", args=[self.token])


def can_manage(project, user) -> bool:
    return project.role_of(user) == Role.ADMIN


def create_link(
    *,
    clip: Clip,
    scope: str,
    user,
    expires_at: datetime,
    passcode: str = "",
    label: str = "",
) -> NewLink:
    """A review link for ``clip`` (scope "clip") or for its whole chain (scope "chain")."""
    project = clip.project
    if not can_manage(project, user):
        raise NotAllowed("Only the project's admins make review links.")
    target = clip.chain_root() if scope == CommentScope.CHAIN else clip
    token = secrets.token_urlsafe(TOKEN_BYTES)
    with transaction.atomic():
        link = ReviewLink.objects.create(
            project=project,
            clip=target,
            scope=scope,
            token_hash=hash_token(token),
            passcode_hash=make_password(passcode) if passcode else "",
            label=label,
            expires_at=expires_at,
            created_by=user,
        )
        audit.record(
            actor=user,
            action=audit.Action.REVIEW_LINK_CREATED,
            project=project,
            target=name_of(link),
            detail={
                "for": _where(link),
                "expires": expires_at.strftime("%Y-%m-%d %H:%M"),
                "passcode": "yes" if passcode else "no",
            },
        )
        review.record(
            project=project,
            actor=user,
            verb="shared for review",
            clip=target,
            summary=f"shared {_where(link)} for review (“{name_of(link)}”)",
        )
    return NewLink(link=link, token=token)


def revoke(*, link: ReviewLink, user) -> bool:
    if not can_manage(link.project, user):
        raise NotAllowed("Only the project's admins revoke review links.")
    with transaction.atomic():
        ended = ReviewLink.objects.filter(pk=link.pk, revoked_at__isnull=True).update(
            revoked_at=timezone.now()
        )
        if ended:
            link.refresh_from_db(fields=["revoked_at"])
            audit.record(
                actor=user,
                action=audit.Action.REVIEW_LINK_REVOKED,
                project=link.project,
                target=name_of(link),
            )
            review.record(
                project=link.project,
                actor=user,
                verb="revoked a review link",
                clip=link.clip,
                summary=f"revoked the review link “{name_of(link)}” to {_where(link)}",
            )
    return bool(ended)


def links_for(clip: Clip):
    """The links made for this clip and for the chain it starts, newest first."""
    return (
        ReviewLink.objects.filter(clip=clip)
        .select_related("created_by")
        .order_by("-created_at", "-pk")
    )


# --- a guest's way in ----------------------------------------------------------------------


def find(token: str) -> ReviewLink | None:
    if not token or len(token) > 200:
        return None
    return (
        ReviewLink.objects.select_related("project", "clip__provider_account")
        .filter(token_hash=hash_token(token))
        .first()
    )


def _recent_failures(link: ReviewLink, now: datetime) -> list[datetime]:
    return list(
        AuditEvent.objects.filter(
            action=audit.Action.REVIEW_LINK_PASSCODE_FAILED,
            project_id=link.project_id,
            detail__link=link.pk,
            created_at__gte=now - PASSCODE_WINDOW,
        )
        .order_by("created_at")
        .values_list("created_at", flat=True)
    )


def check_passcode(*, link: ReviewLink, passcode: str) -> bool:
    """Whether ``passcode`` opens the link; wrong tries are counted and limited."""
    now = timezone.now()
    failures = _recent_failures(link, now)
    if len(failures) >= PASSCODE_TRIES:
        wait = (failures[0] + PASSCODE_WINDOW - now).total_seconds()
        raise LinkError(
            f"Too many wrong passcodes. Try again in {_minutes(wait)}.", retry_after=wait
        )
    if check_password(passcode, link.passcode_hash):
        return True
    audit.record(
        actor=None,
        action=audit.Action.REVIEW_LINK_PASSCODE_FAILED,
        project=link.project,
        target=name_of(link),
        detail={"link": link.pk, "guest": "someone with the link"},
    )
    return False


def _minutes(seconds: float) -> str:
    minutes = max(1, round(seconds / 60))
    return f"{minutes} minute{'s' if minutes != 1 else ''}"


# --- what a guest sees ---------------------------------------------------------------------


@dataclass(frozen=True)
class GuestSegment:
    clip_id: int
    has_poster: bool
    start: float
    end: float
    offset: float

    @property
    def length(self) -> float:
        return max(0.0, self.end - self.start)


@dataclass(frozen=True)
class GuestNote:
    pk: int
    name: str
    is_guest: bool
    body: str
    timecode: float | None
    created_at: datetime
    resolved: bool = False
    replies: list[GuestNote] = field(default_factory=list)


@dataclass(frozen=True)
class GuestVerdict:
    name: str
    is_guest: bool
    verdict: str
    label: str
    note: str


@dataclass(frozen=True)
class GuestView:
    link: ReviewLink
    segments: list[GuestSegment]
    notes: list[GuestNote]
    verdicts: list[GuestVerdict]

    @property
    def total(self) -> float:
        last = self.segments[-1] if self.segments else None
        return last.offset + last.length if last else 0.0

    @property
    def clip_ids(self) -> set[int]:
        return {segment.clip_id for segment in self.segments}


def segments_of(link: ReviewLink) -> list[GuestSegment]:
    """What the link plays: the chain's main line as it is now, or the one clip whole."""
    if link.scope == CommentScope.CHAIN:
        return [
            GuestSegment(
                clip_id=s.clip.pk,
                has_poster=bool(s.clip.poster_key),
                start=s.start,
                end=s.end,
                offset=s.offset,
            )
            for s in chains.timeline(link.clip).segments
        ]
    clip = link.clip
    if not clip.has_video:
        return []
    return [
        GuestSegment(
            clip_id=clip.pk,
            has_poster=bool(clip.poster_key),
            start=0.0,
            end=clip.duration_seconds or 0.0,
            offset=0.0,
        )
    ]


def _first_name(user) -> str:
    # Members are named by their first name only, never their username.
    return (user.first_name.split() or ["Team member"])[0] if user else "Team member"


def _note(comment: Comment) -> GuestNote:
    guest = comment.review_link_id is not None or comment.author_id is None
    return GuestNote(
        pk=comment.pk,
        name=(comment.guest_name or "Guest") if guest else _first_name(comment.author),
        is_guest=guest,
        body=comment.body,
        timecode=comment.timecode,
        created_at=comment.created_at,
        resolved=comment.is_resolved,
        replies=[_note(reply) for reply in getattr(comment, "thread_replies", [])],
    )


def guest_view(link: ReviewLink) -> GuestView:
    scope = link.scope
    return GuestView(
        link=link,
        segments=segments_of(link),
        notes=[_note(comment) for comment in review.threads(link.clip, scope)],
        verdicts=[
            GuestVerdict(
                name=decision.guest_name
                if decision.user_id is None
                else _first_name(decision.user),
                is_guest=decision.user_id is None,
                verdict=decision.verdict,
                label=decision.get_verdict_display(),
                note=decision.note,
            )
            for decision in review.verdicts(link.clip, scope)
        ],
    )


def may_see_clip(link: ReviewLink, clip_id: int) -> bool:
    """Only the videos the link plays, whatever id is put in its address."""
    return clip_id in {segment.clip_id for segment in segments_of(link)}


# --- what a guest does ---------------------------------------------------------------------


def _ensure_usable(link: ReviewLink) -> None:
    if not link.is_usable:
        raise LinkError("This review link has ended. Ask the person who sent it for a new one.")


def _ensure_not_flooded(link: ReviewLink) -> None:
    since = timezone.now() - GUEST_POSTS_WINDOW
    posted = (
        Comment.objects.filter(review_link=link, created_at__gte=since).count()
        + Decision.objects.filter(review_link=link, created_at__gte=since).count()
    )
    if posted >= GUEST_POSTS:
        raise LinkError(
            f"This link has taken {GUEST_POSTS} comments and decisions in the last "
            f"{int(GUEST_POSTS_WINDOW.total_seconds() // 60)} minutes. Wait a few minutes "
            "and send yours again.",
            retry_after=GUEST_POSTS_WINDOW.total_seconds(),
        )


def guest_comment(*, link: ReviewLink, name: str, body: str, timecode: float | None) -> Comment:
    _ensure_usable(link)
    _ensure_not_flooded(link)
    at = f" at {review.timecode_text(timecode)}" if timecode is not None else ""
    with transaction.atomic():
        comment = Comment.objects.create(
            clip=link.clip,
            scope=link.scope,
            review_link=link,
            guest_name=name,
            body=body,
            timecode=timecode,
        )
        review.record(
            project=link.project,
            actor=None,
            verb="guest commented",
            clip=link.clip,
            summary=f"{name} (guest, via “{name_of(link)}”) commented on {_where(link)}{at}: "
            f"“{review.excerpt(body)}”",
        )
        audit.record(
            actor=None,
            action=audit.Action.GUEST_COMMENTED,
            project=link.project,
            target=name_of(link),
            detail={"guest": name, "on": _where(link) + at},
        )
    return comment


def guest_decide(*, link: ReviewLink, name: str, verdict: str, note: str = "") -> Decision:
    _ensure_usable(link)
    _ensure_not_flooded(link)
    words = "approved" if verdict == Verdict.APPROVED else "requested changes on"
    with transaction.atomic():
        decision = Decision.objects.create(
            clip=link.clip,
            scope=link.scope,
            review_link=link,
            guest_name=name,
            verdict=verdict,
            note=note,
        )
        review.record(
            project=link.project,
            actor=None,
            verb="guest approved" if verdict == Verdict.APPROVED else "guest requested changes",
            clip=link.clip,
            summary=f"{name} (guest, via “{name_of(link)}”) {words} {_where(link)}"
            + (f": “{review.excerpt(note)}”" if note else ""),
        )
        audit.record(
            actor=None,
            action=audit.Action.GUEST_DECIDED,
            project=link.project,
            target=name_of(link),
            detail={"guest": name, "decision": Verdict(verdict).label, "on": _where(link)},
        )
    return decision
