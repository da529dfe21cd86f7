"""Review: timecoded comments in threads, approvals and requests for changes, the activity feed.

Every member may comment and decide: reviewers exist for exactly that. A chain's comments
and decisions hang on its root clip with scope "chain"; timecodes there are on the chain's
timeline, timecodes on a clip are in the clip's own video.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db import transaction

from videos.models import (
    Activity,
    Clip,
    ClipKind,
    Comment,
    CommentScope,
    Decision,
    Project,
    Verdict,
)

FEED_LENGTH = 30


class ReviewError(Exception):
    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


def record(*, project: Project, actor, verb: str, clip: Clip | None, summary: str) -> Activity:
    return Activity.objects.create(
        project=project, actor=actor, verb=verb, clip=clip, summary=summary[:300]
    )


def _where(clip: Clip, scope: str) -> str:
    return f"the chain of clip {clip.pk}" if scope == CommentScope.CHAIN else f"clip {clip.pk}"


def excerpt(body: str) -> str:
    body = " ".join(body.split())
    return body if len(body) <= 90 else body[:89] + "…"


def add_comment(
    *,
    clip: Clip,
    user,
    body: str,
    scope: str = CommentScope.CLIP,
    timecode: float | None = None,
    reply_to: Comment | None = None,
) -> Comment:
    """A comment, or a reply in an existing thread (replies keep their thread's scope)."""
    if scope == CommentScope.CHAIN and clip.parent_id is not None:
        raise ReviewError("Chain comments belong to the chain's first clip.")
    if reply_to is not None:
        if reply_to.clip_id != clip.pk:
            raise ReviewError("That comment is on another clip.", field="reply_to")
        # Threads are one level deep: a reply to a reply joins the same thread.
        reply_to = reply_to.reply_to or reply_to
        scope = reply_to.scope
    with transaction.atomic():
        comment = Comment.objects.create(
            clip=clip,
            scope=scope,
            reply_to=reply_to,
            author=user,
            body=body,
            timecode=timecode,
        )
        at = f" at {timecode_text(timecode)}" if timecode is not None else ""
        record(
            project=clip.project,
            actor=user,
            verb="replied" if reply_to else "commented",
            clip=clip,
            summary=f"{'replied' if reply_to else 'commented'} on {_where(clip, scope)}{at}: "
            f"“{excerpt(body)}”",
        )
    return comment


def resolve(*, comment: Comment, user, resolved: bool = True) -> None:
    thread = comment.reply_to or comment
    if resolved == thread.is_resolved:
        return
    if resolved:
        thread.resolve(user)
    else:
        thread.reopen()
    record(
        project=thread.clip.project,
        actor=user,
        verb="resolved" if resolved else "reopened",
        clip=thread.clip,
        summary=f"{'resolved' if resolved else 'reopened'} a comment on "
        f"{_where(thread.clip, thread.scope)}: “{excerpt(thread.body)}”",
    )


def decide(*, clip: Clip, user, verdict: str, scope: str = CommentScope.CLIP, note: str = ""):
    if scope == CommentScope.CHAIN and clip.parent_id is not None:
        raise ReviewError("Chain decisions belong to the chain's first clip.")
    with transaction.atomic():
        decision = Decision.objects.create(
            clip=clip, scope=scope, user=user, verdict=verdict, note=note
        )
        words = "approved" if verdict == Verdict.APPROVED else "requested changes on"
        record(
            project=clip.project,
            actor=user,
            verb="approved" if verdict == Verdict.APPROVED else "requested changes",
            clip=clip,
            summary=f"{words} {_where(clip, scope)}" + (f": “{excerpt(note)}”" if note else ""),
        )
    return decision


# --- reading -----------------------------------------------------------------------------------


def threads(clip: Clip, scope: str) -> list[Comment]:
    """Top-level comments with their replies (``comment.thread_replies``), by timecode.

    Comments without a timecode come after the timed ones, in the order they were written.
    """
    comments = list(
        Comment.objects.filter(clip=clip, scope=scope)
        .select_related("author", "resolved_by", "review_link")
        .order_by("created_at", "pk")
    )
    replies: dict[int, list[Comment]] = {}
    for comment in comments:
        if comment.reply_to_id:
            replies.setdefault(comment.reply_to_id, []).append(comment)
    top = [comment for comment in comments if comment.reply_to_id is None]
    for comment in top:
        comment.thread_replies = replies.get(comment.pk, [])
    top.sort(key=lambda c: (c.timecode is None, c.timecode or 0.0))
    return top


def verdicts(clip: Clip, scope: str) -> list[Decision]:
    """Each person's latest decision, newest first: a later decision replaces an earlier one.

    A guest (no user, a review link) is one person per link and typed name.
    """
    latest: dict[object, Decision] = {}
    for decision in (
        Decision.objects.filter(clip=clip, scope=scope)
        .select_related("user")
        .order_by("-created_at", "-pk")
    ):
        who = decision.user_id or ("guest", decision.review_link_id, decision.guest_name.casefold())
        latest.setdefault(who, decision)
    return list(latest.values())


@dataclass(frozen=True)
class FeedItem:
    at: datetime
    actor: str
    summary: str
    verb: str
    clip_id: int | None


def project_feed(project: Project, *, limit: int = FEED_LENGTH) -> list[FeedItem]:
    """The project's activity, newest first.

    Generations are read from the clips themselves (each clip row says who made it and
    when); everything else is an Activity row written by the action that did it.
    """
    items = [
        FeedItem(
            at=activity.created_at,
            actor=activity.actor.get_username()
            if activity.actor
            else ("Guest" if activity.verb.startswith("guest") else "Someone"),
            summary=activity.summary,
            verb=activity.verb,
            clip_id=activity.clip_id,
        )
        for activity in project.activities.select_related("actor").order_by("-created_at", "-pk")[
            :limit
        ]
    ]
    recorded = {item.clip_id for item in items if item.verb == "generated"}
    for clip in (
        project.clips.filter(kind=ClipKind.GENERATE)
        .select_related("created_by", "provider_account")
        # Only the label is shown: the keys are not even decrypted.
        .defer("provider_account__credential", "provider_account__secret_key")
        .order_by("-created_at", "-pk")[:limit]
    ):
        if clip.pk in recorded:
            continue
        items.append(
            FeedItem(
                at=clip.created_at,
                actor=clip.created_by.get_username() if clip.created_by else "Someone",
                summary=f"generated clip {clip.pk} at {clip.provider_account.label} "
                f"({clip.model}): “{excerpt(clip.prompt)}”",
                verb="generated",
                clip_id=clip.pk,
            )
        )
    items.sort(key=lambda item: item.at, reverse=True)
    return items[:limit]


def timecode_text(seconds: float | None) -> str:
    """12.34 -> "0:12.3"; 75 -> "1:15.0"."""
    if seconds is None:
        return ""
    minutes, rest = divmod(max(0.0, seconds), 60)
    return f"{int(minutes)}:{rest:04.1f}"
