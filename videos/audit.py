"""The audit log: who added, changed, rotated or disabled a key, who changed a project's
members or budget. (Who spent what is the ledger: every paid submission has an entry.)

Details hold names, flags and the last four characters of a key, never a credential: the
audit page renders them as they are.
"""

from __future__ import annotations

from typing import Any

from videos.models import AuditEvent, Project, ProviderAccount


class Action:
    KEY_ADDED = "key.added"
    KEY_CHANGED = "key.changed"
    KEY_ROTATED = "key.rotated"
    KEY_DISABLED = "key.disabled"
    KEY_ENABLED = "key.enabled"
    KEY_DELETED = "key.deleted"
    KEY_TESTED = "key.tested"
    KEYS_REENCRYPTED = "keys.reencrypted"
    MEMBER_ADDED = "member.added"
    MEMBER_REMOVED = "member.removed"
    MEMBER_ROLE_CHANGED = "member.role_changed"
    BUDGET_CHANGED = "budget.changed"
    REVIEW_LINK_CREATED = "review_link.created"
    REVIEW_LINK_REVOKED = "review_link.revoked"
    # A guest's (actor empty, detail["guest"] holds the name they typed).
    REVIEW_LINK_PASSCODE_FAILED = "review_link.passcode_failed"
    GUEST_COMMENTED = "review_link.guest_commented"
    GUEST_DECIDED = "review_link.guest_decided"


# What the audit page says for each action.
LABELS = {
    Action.KEY_ADDED: "added a provider account",
    Action.KEY_CHANGED: "changed a provider account",
    Action.KEY_ROTATED: "replaced a provider key",
    Action.KEY_DISABLED: "disabled a provider account",
    Action.KEY_ENABLED: "enabled a provider account",
    Action.KEY_DELETED: "deleted a provider account",
    Action.KEY_TESTED: "tested a provider account",
    Action.KEYS_REENCRYPTED: "re-encrypted every credential under the newest key",
    Action.MEMBER_ADDED: "added a member",
    Action.MEMBER_REMOVED: "removed a member",
    Action.MEMBER_ROLE_CHANGED: "changed a member's role",
    Action.BUDGET_CHANGED: "changed a budget",
    Action.REVIEW_LINK_CREATED: "made a review link",
    Action.REVIEW_LINK_REVOKED: "revoked a review link",
    Action.REVIEW_LINK_PASSCODE_FAILED: "tried a wrong passcode on a review link",
    Action.GUEST_COMMENTED: "commented through a review link",
    Action.GUEST_DECIDED: "decided through a review link",
}


def record(
    *,
    actor,
    action: str,
    target: str = "",
    project: Project | None = None,
    detail: dict[str, Any] | None = None,
) -> AuditEvent:
    return AuditEvent.objects.create(
        actor=actor if actor is not None and actor.is_authenticated else None,
        action=action,
        project=project,
        target=target[:200],
        detail=detail or {},
    )


def account_target(account: ProviderAccount) -> str:
    """How an account is named in the log: label and kind, plus the key's last four."""
    hint = f" …{account.credential_last4}" if account.credential_last4 else ""
    return f"{account.label} ({account.kind}){hint}"
