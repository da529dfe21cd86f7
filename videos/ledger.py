"""Money: the ledger of paid submissions, project budgets and usage totals.

Every submission a provider accepted has one LedgerEntry: the estimate when it was sent,
the actual cost once the provider finished. Amounts are USD. A provider that reports its
own units (Kling units, kie credits) is converted with the account's ``unit_price``; one
that reports nothing leaves the estimate standing in, marked as such.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from django.db import transaction
from django.db.models import Count, DecimalField, Q, QuerySet, Sum
from django.db.models.functions import Coalesce, TruncDate
from django.utils import timezone

from videos.models import Clip, ClipStatus, LedgerEntry, Project
from videos.pricing import PROVIDER_UNITS, estimate_for, reports_units

ZERO = Decimal("0")
CENT = Decimal("0.0001")
# A bar turns amber from here, so admins see a project coming up to its budget.
NEAR_BUDGET = Decimal("0.8")
# Clips created but not yet accepted by a provider: their estimate is already promised.
NOT_YET_SENT = (ClipStatus.QUEUED, ClipStatus.SUBMITTING)

# Entries whose provider reported units (kie credits, Kling units) the account gives no price.
UNPRICED_UNITS = Q(
    clip__cost__isnull=False,
    provider_account__unit_price__isnull=True,
    provider_account__kind__in=list(PROVIDER_UNITS),
)

AMOUNT = Coalesce(
    "actual_cost", "estimated_cost", output_field=DecimalField(max_digits=12, decimal_places=4)
)


def money(value: Decimal | None) -> str:
    return f"${(value or ZERO):,.2f}"


class BudgetExceeded(Exception):
    """A submission would take its project past the budget; nothing was sent."""


# --- the ledger ----------------------------------------------------------------------------


def record_submission(*, clip: Clip) -> LedgerEntry:
    """The entry for a submission the provider accepted. Recording it twice does no harm."""
    entry, _ = LedgerEntry.objects.get_or_create(
        clip=clip,
        defaults={
            "project_id": clip.project_id,
            "provider_account_id": clip.provider_account_id,
            "user_id": clip.created_by_id,
            "model": clip.model,
            "estimated_cost": clip.estimated_cost or ZERO,
            "submitted_at": clip.submitted_at or timezone.now(),
        },
    )
    return entry


def discard_unsent(*, clip: Clip) -> None:
    """The provider proved it took nothing (a refusal): the promised estimate is withdrawn."""
    LedgerEntry.objects.filter(clip=clip, settled_at__isnull=True).delete()


def reopen(*, clip: Clip) -> None:
    """A task thought never sent turned up at the provider: it is owed again until settled."""
    record_submission(clip=clip)
    LedgerEntry.objects.filter(clip=clip).update(
        settled_at=None, actual_cost=None, actual_is_estimate=False, failed_but_charged=False
    )


def settle(*, clip: Clip, reported_cost: Decimal | None, failed: bool) -> bool:
    """Record what a finished task cost. Only the first settlement counts.

    - A reported cost is converted with the account's unit price when it has one. A
      provider that reports its own units (kie credits, Kling units) and an account without
      a unit price: the USD value is unknown, so the estimate stands in, marked as such
      (never a unit taken for a dollar). Other providers' reported costs are USD.
    - No reported cost on a finished clip: the estimate stands in, marked as an estimate.
    - No reported cost on a failed task: providers do not charge for those as a rule, so it
      settles at 0, marked as an estimate because the provider did not say.
    - A cost reported on a failed task is a charge for nothing: flagged failed_but_charged.
    """
    entry = record_submission(clip=clip)
    unit_price = clip.provider_account.unit_price
    in_units = reports_units(clip.provider_account.kind)
    if reported_cost is not None and in_units and unit_price is None:
        actual = entry.estimated_cost
        is_estimate = True
    elif reported_cost is not None:
        actual = reported_cost * unit_price if in_units else reported_cost
        is_estimate = False
    else:
        actual = ZERO if failed else entry.estimated_cost
        is_estimate = True
    updated = LedgerEntry.objects.filter(pk=entry.pk, settled_at__isnull=True).update(
        actual_cost=actual.quantize(CENT),
        actual_is_estimate=is_estimate,
        failed_but_charged=failed and reported_cost is not None and reported_cost > 0,
        settled_at=timezone.now(),
    )
    return bool(updated)


# --- budgets -------------------------------------------------------------------------------


@dataclass(frozen=True)
class BudgetStatus:
    budget: Decimal | None
    spent: Decimal = ZERO
    pending: Decimal = ZERO

    @property
    def committed(self) -> Decimal:
        return self.spent + self.pending

    @property
    def left(self) -> Decimal | None:
        return None if self.budget is None else self.budget - self.committed

    @property
    def percent(self) -> int:
        """How much of the budget is spent or promised, 0-100 (for the bar)."""
        if not self.budget:
            return 100 if self.budget is not None and self.committed > 0 else 0
        return min(100, int(self.committed * 100 / self.budget))

    @property
    def level(self) -> str:
        if self.budget is None:
            return "none"
        if self.committed > self.budget or (self.budget == 0 and self.committed > 0):
            return "over"
        if self.committed >= self.budget * NEAR_BUDGET:
            return "near"
        return "ok"


def budget_statuses(projects: Iterable[Project]) -> dict[int, BudgetStatus]:
    """Spent (settled) and pending (sent or queued, unsettled) per project, in two queries."""
    projects = list(projects)
    ids = [project.pk for project in projects]
    ledger = {
        row["project"]: row
        for row in LedgerEntry.objects.filter(project__in=ids)
        .values("project")
        .annotate(
            spent=Sum("actual_cost", filter=Q(settled_at__isnull=False)),
            pending=Sum("estimated_cost", filter=Q(settled_at__isnull=True)),
        )
        .order_by()
    }
    unsent = dict(
        Clip.objects.filter(project__in=ids, status__in=NOT_YET_SENT, ledger_entry__isnull=True)
        .values("project")
        .annotate(total=Sum("estimated_cost"))
        .order_by()
        .values_list("project", "total")
    )
    statuses = {}
    for project in projects:
        row = ledger.get(project.pk, {})
        statuses[project.pk] = BudgetStatus(
            budget=project.budget,
            spent=row.get("spent") or ZERO,
            pending=(row.get("pending") or ZERO) + (unsent.get(project.pk) or ZERO),
        )
    return statuses


def budget_status(project: Project) -> BudgetStatus:
    return budget_statuses([project])[project.pk]


def ensure_within_budget(*, project: Project, account, model: str, params: dict) -> None:
    """Refuse, before any row or provider call, a clip that would pass the project's budget.

    Fails closed: a project with a budget sends only models with a price, since a clip of
    unknown cost could pass any budget. Raises BudgetExceeded with a message for the form.
    """
    with transaction.atomic():
        # Taken on the project row so that two submissions racing on PostgreSQL cannot both
        # pass the check (SQLite serialises writers anyway); the budget is read fresh too.
        locked = Project.objects.select_for_update().only("pk", "name", "budget").get(pk=project.pk)
        if locked.budget is None:
            return
        estimate = estimate_for(account.kind, model, params)
        if estimate is None:
            raise BudgetExceeded(
                f"{model} has no price in the price table, so the studio cannot tell what it "
                f"would cost, and {locked.name} has a budget. Nothing was sent. A site admin "
                "can add its price under Admin → Model prices."
            )
        status = budget_status(locked)
        if status.committed + estimate <= locked.budget:
            return
    left = max(ZERO, status.left or ZERO)
    message = (
        f"This clip would cost about {money(estimate)}, but {locked.name} has "
        f"{money(left)} left of its {money(locked.budget)} budget "
        f"({money(status.committed)} spent or pending). Nothing was sent."
    )
    raise BudgetExceeded(f"{message} A project admin can raise the budget in the settings.")


# --- usage ---------------------------------------------------------------------------------


@dataclass
class Usage:
    count: int = 0
    spent: Decimal = ZERO
    pending: Decimal = ZERO
    by_day: list[dict] = field(default_factory=list)
    by_account: list[dict] = field(default_factory=list)
    by_user: list[dict] = field(default_factory=list)
    by_model: list[dict] = field(default_factory=list)
    failed_but_charged: list[LedgerEntry] = field(default_factory=list)
    failed_but_charged_total: Decimal = ZERO
    # Entries whose clip had no price in the table when it was made (counted as 0).
    unpriced: int = 0
    # Settled entries whose provider reported no cost: the estimate stands in.
    estimated: int = 0
    # Of those, entries whose provider reported its own units while the account has no
    # unit price: what they cost in USD is not known.
    unpriced_units: int = 0

    @property
    def total(self) -> Decimal:
        return self.spent + self.pending


def _grouped(entries: QuerySet[LedgerEntry], *names: str) -> list[dict]:
    return list(
        entries.values(*names)
        .annotate(count=Count("pk"), amount=Sum(AMOUNT))
        .order_by("-amount", *names)
    )


def usage(entries: QuerySet[LedgerEntry], *, since: datetime | None = None) -> Usage:
    """Totals by day, provider account, user and model; failed-but-charged tasks apart."""
    if since is not None:
        entries = entries.filter(submitted_at__gte=since)
    totals = entries.aggregate(
        count=Count("pk"),
        spent=Sum("actual_cost", filter=Q(settled_at__isnull=False)),
        pending=Sum("estimated_cost", filter=Q(settled_at__isnull=True)),
        unpriced=Count("pk", filter=Q(clip__estimated_cost__isnull=True)),
        estimated=Count("pk", filter=Q(settled_at__isnull=False, actual_is_estimate=True)),
        unpriced_units=Count("pk", filter=UNPRICED_UNITS),
        failed_total=Sum("actual_cost", filter=Q(failed_but_charged=True)),
    )
    by_day: list[dict] = list(
        entries.annotate(day=TruncDate("submitted_at"))
        .values("day")
        .annotate(count=Count("pk"), amount=Sum(AMOUNT))
        .order_by("-day")
    )
    return Usage(
        count=totals["count"],
        spent=totals["spent"] or ZERO,
        pending=totals["pending"] or ZERO,
        by_day=by_day,
        by_account=_grouped(entries, "provider_account__label", "provider_account__kind"),
        by_user=_grouped(entries, "user__username"),
        by_model=_grouped(entries, "model"),
        failed_but_charged=list(
            entries.filter(failed_but_charged=True)
            .select_related("clip", "provider_account", "user", "project")
            .order_by("-submitted_at", "-pk")
        ),
        failed_but_charged_total=totals["failed_total"] or ZERO,
        unpriced=totals["unpriced"],
        estimated=totals["estimated"],
        unpriced_units=totals["unpriced_units"],
    )
