"""Money on pages: USD amounts, and whether someone may see a project's settings."""

from __future__ import annotations

from decimal import Decimal

from django import template

from videos import pricing
from videos.models import LedgerEntry, Project, Role

register = template.Library()


@register.filter
def usd(value: Decimal | int | float | None) -> str:
    """Decimal("1234.5") -> "$1,234.50"; None -> "$0.00"."""
    return f"${Decimal(str(value or 0)):,.2f}"


@register.filter
def is_project_admin(project: Project, user) -> bool:
    """For links to the settings and usage pages, which only the project's admins may open."""
    return user.is_authenticated and project.role_of(user) == Role.ADMIN


@register.filter
def units_note(entry: LedgerEntry) -> str:
    """ "reported 3 Kling units; no USD price per unit is set" for a ledger line whose
    provider's units have no price (its amount is then the estimate); else ""."""
    return pricing.unpriced_units_note(
        kind=entry.provider_account.kind,
        cost=entry.clip.cost,
        unit_price=entry.provider_account.unit_price,
    )
