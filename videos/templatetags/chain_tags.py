"""Chains and review on pages other views render (the clip page, the project page).

Each tag hands its page one context built by the chain views, so those pages need no
knowledge of chains: the logic stays in videos.chains and videos.review.
"""

from __future__ import annotations

from django import template
from django.utils import timezone
from django.utils.timesince import timesince

from videos import review
from videos.chain_views import clip_panel
from videos.models import Clip

register = template.Library()


@register.simple_tag(takes_context=True)
def clip_chain_panel(context, clip: Clip) -> dict:
    request = context.get("request")
    return clip_panel(
        user=request.user if request else None,
        clip=clip,
        overrides=context.get("review_overrides"),
        # The clip page reads the viewer's role with their right (views._viewer_rights).
        role=context.get("viewer_role"),
    )


@register.filter
def timecode(seconds: float | None) -> str:
    """12.34 -> "0:12.3"."""
    return review.timecode_text(seconds)


@register.filter
def ago(moment) -> str:
    """ "just now", or "5 minutes ago"."""
    if moment is None:
        return ""
    if (timezone.now() - moment).total_seconds() < 60:
        return "just now"
    return f"{timesince(moment)} ago"
