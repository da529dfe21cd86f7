"""The Django admin: where site admins manage every model.

Provider accounts live here (add, edit, disable, assign, test connection) rather than on a
studio page of their own: the admin already gives staff-only access, list filters, search,
history and CSRF-safe bulk actions, and the credential form below is the one place a key
is typed. Changes to keys are written to the audit log (videos.audit).
"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Count, QuerySet
from django.http import HttpRequest, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import path, reverse
from django.utils.decorators import method_decorator
from django.utils.html import format_html
from django.views.decorators.http import require_POST

from videos import audit, connection, providers
from videos.models import (
    Activity,
    AuditEvent,
    ChainExport,
    Clip,
    Comment,
    Decision,
    Frame,
    LedgerEntry,
    Membership,
    ModelPrice,
    Project,
    ProviderAccount,
    ProviderKind,
    ReviewLink,
    TakeGroup,
    WorkerHeartbeat,
)

SECRET_FIELDS = ("credential", "secret_key")

admin.site.site_header = "Clipchain admin"
admin.site.site_title = "Clipchain admin"
admin.site.index_title = "Accounts, prices, projects and the ledger"
# The model list stays on the admin's home page: lists get the whole width at 1280 px.
admin.site.enable_nav_sidebar = False


# --- projects and members --------------------------------------------------------------------


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    autocomplete_fields = ["user"]


@admin.register(Project)
class ProjectAdmin(admin.ModelAdmin):
    list_display = ["name", "budget", "member_count", "created_by", "created_at"]
    list_filter = [("budget", admin.EmptyFieldListFilter), "created_at"]
    search_fields = ["name", "memberships__user__username"]
    inlines = [MembershipInline]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Project]:
        return (
            super()
            .get_queryset(request)
            .select_related("created_by")
            .annotate(_members=Count("memberships"))
        )

    @admin.display(description="Members", ordering="_members")
    def member_count(self, obj: Project) -> int:
        return obj._members  # type: ignore[attr-defined]

    def save_model(self, request, obj: Project, form, change: bool) -> None:
        super().save_model(request, obj, form, change)
        if change and "budget" in form.changed_data:
            audit.record(
                actor=request.user,
                action=audit.Action.BUDGET_CHANGED,
                project=obj,
                target=obj.name,
                detail={"to": None if obj.budget is None else str(obj.budget), "via": "admin"},
            )

    def save_formset(self, request, form, formset, change: bool) -> None:
        if formset.model is not Membership:
            super().save_formset(request, form, formset, change)
            return
        changed = [(f.instance, list(f.changed_data)) for f in formset.forms if f.has_changed()]
        deleted = [f.instance for f in formset.deleted_forms if f.instance.pk]
        deleted_names = [(m.user.get_username(), m.role) for m in deleted]
        super().save_formset(request, form, formset, change)
        for name, role in deleted_names:
            audit.record(
                actor=request.user,
                action=audit.Action.MEMBER_REMOVED,
                project=form.instance,
                target=name,
                detail={"role": role, "via": "admin"},
            )
        for membership, fields in changed:
            if membership in deleted or membership.pk is None:
                continue
            action = (
                audit.Action.MEMBER_ADDED if "user" in fields else audit.Action.MEMBER_ROLE_CHANGED
            )
            audit.record(
                actor=request.user,
                action=action,
                project=form.instance,
                target=membership.user.get_username(),
                detail={"role": membership.role, "via": "admin"},
            )


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ["user", "project", "role", "created_at"]
    list_filter = ["role", "project"]
    search_fields = ["user__username", "user__email", "project__name"]
    autocomplete_fields = ["user", "project"]
    list_select_related = ["user", "project"]


# --- provider accounts ---------------------------------------------------------------------


class ProviderAccountForm(forms.ModelForm):
    # Credentials are write-only: the fields start empty and an empty value keeps the
    # stored key, so a saved key is never rendered back into the page.
    credential = forms.CharField(
        label="Key",
        required=False,
        strip=True,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
    )
    secret_key = forms.CharField(
        required=False,
        strip=True,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
    )

    HELP = {
        "credential": (
            "The bearer key (Kling: the access key).",
            " Type a new key to replace the stored one; leave empty to keep it.",
        ),
        "secret_key": (
            "Kling: the secret key that signs the JWT (empty for a plain key). kie: the webhook "
            "key that signs callbacks. Other providers: leave empty.",
            " Leave empty to keep the stored one.",
        ),
    }
    # A refused save renders the form again, and the key fields never show what was typed.
    RETYPE = "Not saved, so the key you typed was cleared for safety: type it again."

    class Meta:
        model = ProviderAccount
        fields = [
            "kind",
            "label",
            "base_url",
            "credential",
            "secret_key",
            "is_enabled",
            "all_projects",
            "projects",
            "unit_price",
            "max_in_flight",
            "requests_per_minute",
        ]
        help_texts = {
            "unit_price": (
                "What one unit of the provider's reported cost costs in USD (kie: a credit, "
                "Kling: a unit). Empty: their reported units have no USD value, so the "
                "estimate from the price table stands in, and the pages say so."
            )
        }

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        # Not even the form's initial data holds the stored values.
        for name in SECRET_FIELDS:
            self.initial.pop(name, None)
            what, keep = self.HELP[name]
            # "Leave empty to keep it" only where a stored key exists to keep.
            self.fields[name].help_text = what + (keep if self.instance.pk else "")
        self.replaced: set[str] = set()

    def _post_clean(self) -> None:
        super()._post_clean()
        if not self.errors:
            return
        for name in SECRET_FIELDS:
            typed = self.data.get(self.add_prefix(name), "").strip()
            if typed and name not in self.errors:
                self.add_error(name, self.RETYPE)

    def clean_credential(self) -> str:
        value = self.cleaned_data["credential"]
        if not value and not self.instance.pk:
            raise forms.ValidationError("A key is required for a new account.")
        if value:
            self.replaced.add("credential")
        return value or self.instance.credential

    def clean_secret_key(self) -> str:
        value = self.cleaned_data["secret_key"]
        if value:
            self.replaced.add("secret_key")
        return value or self.instance.secret_key


@admin.register(ProviderAccount)
class ProviderAccountAdmin(admin.ModelAdmin):
    form = ProviderAccountForm
    # Lean enough to fit beside the filters at 1280 px: the rest is on the account's page.
    list_display = [
        "label",
        "provider",
        "address",
        "key_hint",
        "is_enabled",
        "offered_to",
        "unit_price",
    ]
    list_filter = ["kind", "is_enabled", "all_projects"]
    search_fields = ["label", "base_url", "credential_last4"]
    filter_horizontal = ["projects"]
    readonly_fields = ["stored_key", "connection"]
    actions = ["test_connection", "disable_accounts", "enable_accounts"]

    def get_fieldsets(self, request: HttpRequest, obj: ProviderAccount | None = None):
        credential_fields = ["credential", "secret_key"]
        if obj is not None:
            credential_fields.append("stored_key")
            if not self.has_change_permission(request, obj):
                # View-only staff would get every form field rendered as text, so the key
                # fields are left out altogether for them.
                credential_fields = ["stored_key"]
        fieldsets = [
            (None, {"fields": ["kind", "label", "base_url"]}),
            ("Credential", {"fields": credential_fields}),
            ("Who may use it", {"fields": ["is_enabled", "all_projects", "projects"]}),
            ("Money", {"fields": ["unit_price"]}),
            ("Limits", {"fields": ["max_in_flight", "requests_per_minute"]}),
        ]
        if obj is not None:
            fieldsets.append(("Connection", {"fields": ["connection"]}))
        return fieldsets

    def get_queryset(self, request: HttpRequest) -> QuerySet[ProviderAccount]:
        return super().get_queryset(request).annotate(_projects=Count("projects"))

    @admin.display(description="Base URL", ordering="base_url")
    def address(self, obj: ProviderAccount) -> str:
        # Gateways' URLs run long: the list shows the host and path, cut, the whole on hover.
        shown = obj.base_url.split("://", 1)[-1]
        if len(shown) > 40:
            shown = shown[:39] + "…"
        return format_html('<span class="url-cell" title="{}">{}</span>', obj.base_url, shown)

    @admin.display(description="Provider", ordering="kind")
    def provider(self, obj: ProviderAccount) -> str:
        return format_html('<span title="{}">{}</span>', obj.get_kind_display(), obj.kind)

    @admin.display(description="Key")
    def key_hint(self, obj: ProviderAccount) -> str:
        return f"…{obj.credential_last4}" if obj.credential_last4 else "—"

    @admin.display(description="Stored key")
    def stored_key(self, obj: ProviderAccount) -> str:
        if not obj.credential_last4:
            return "—"
        secret = " and a secret key" if obj.secret_key else ""
        return (
            f"A key ending in …{obj.credential_last4}{secret}. Only the last four are ever shown."
        )

    @admin.display(description="Offered to", ordering="all_projects")
    def offered_to(self, obj: ProviderAccount) -> str:
        if obj.all_projects:
            return "All projects"
        count = getattr(obj, "_projects", None)
        if count is None:
            count = obj.projects.count()
        return f"{count} project{'s' if count != 1 else ''}"

    @admin.display(description="Test connection")
    def connection(self, obj: ProviderAccount) -> str:
        if obj.pk is None:
            return "—"
        url = reverse("admin:videos_provideraccount_test", args=[obj.pk])
        # formaction sends this button's click to the test view (with the form's CSRF token)
        # instead of saving, so the test works inside the change form without JavaScript.
        return format_html(
            '<button type="submit" class="button" formaction="{}" formnovalidate>'
            "Test connection</button>"
            '<div class="help">A cheap call with the stored key; unsaved edits are not '
            "used. The result shows at the top of the page.</div>",
            url,
        )

    # --- saving, with the audit trail ------------------------------------------------------

    def save_model(self, request, obj: ProviderAccount, form, change: bool) -> None:
        was_enabled = None
        if change:
            was_enabled = ProviderAccount.objects.filter(pk=obj.pk).values_list(
                "is_enabled", flat=True
            )[0]
        super().save_model(request, obj, form, change)
        target = audit.account_target(obj)
        if not change:
            audit.record(
                actor=request.user,
                action=audit.Action.KEY_ADDED,
                target=target,
                detail={"kind": obj.kind, "base_url": obj.base_url},
            )
            return
        if form.replaced:
            audit.record(
                actor=request.user,
                action=audit.Action.KEY_ROTATED,
                target=target,
                detail={"replaced": sorted(form.replaced)},
            )
        if was_enabled != obj.is_enabled:
            action = audit.Action.KEY_ENABLED if obj.is_enabled else audit.Action.KEY_DISABLED
            audit.record(actor=request.user, action=action, target=target)
        others = [
            name
            for name in form.changed_data
            if name not in (*SECRET_FIELDS, "is_enabled", "projects")
        ]
        if others:
            audit.record(
                actor=request.user,
                action=audit.Action.KEY_CHANGED,
                target=target,
                detail={"fields": others},
            )

    def save_related(self, request, form, formsets, change: bool) -> None:
        super().save_related(request, form, formsets, change)
        if change and "projects" in form.changed_data:
            audit.record(
                actor=request.user,
                action=audit.Action.KEY_CHANGED,
                target=audit.account_target(form.instance),
                detail={
                    "fields": ["projects"],
                    "projects": sorted(p.name for p in form.instance.projects.all()),
                },
            )

    def delete_model(self, request, obj: ProviderAccount) -> None:
        target = audit.account_target(obj)
        super().delete_model(request, obj)
        audit.record(actor=request.user, action=audit.Action.KEY_DELETED, target=target)

    def delete_queryset(self, request, queryset: QuerySet[ProviderAccount]) -> None:
        targets = [audit.account_target(account) for account in queryset]
        super().delete_queryset(request, queryset)
        for target in targets:
            audit.record(actor=request.user, action=audit.Action.KEY_DELETED, target=target)

    # --- actions ---------------------------------------------------------------------------

    def _report(self, request: HttpRequest, account: ProviderAccount) -> None:
        result = connection.check_and_record(account=account, actor=request.user)
        level = messages.SUCCESS if result.works else messages.WARNING
        self.message_user(request, f"{account.label}: {result.message}", level)

    @admin.action(description="Test connection of the selected accounts")
    def test_connection(self, request: HttpRequest, queryset: QuerySet[ProviderAccount]) -> None:
        for account in queryset.order_by("label", "pk"):
            self._report(request, account)

    @admin.action(description="Disable the selected accounts", permissions=["change"])
    def disable_accounts(self, request: HttpRequest, queryset: QuerySet[ProviderAccount]) -> None:
        self._set_enabled(request, queryset, False)

    @admin.action(description="Enable the selected accounts", permissions=["change"])
    def enable_accounts(self, request: HttpRequest, queryset: QuerySet[ProviderAccount]) -> None:
        self._set_enabled(request, queryset, True)

    def _set_enabled(self, request, queryset: QuerySet[ProviderAccount], enabled: bool) -> None:
        action = audit.Action.KEY_ENABLED if enabled else audit.Action.KEY_DISABLED
        accounts = list(queryset.exclude(is_enabled=enabled))
        for account in accounts:
            account.is_enabled = enabled
            account.save(update_fields=["is_enabled"])
            audit.record(actor=request.user, action=action, target=audit.account_target(account))
        word = "Enabled" if enabled else "Disabled"
        self.message_user(request, f"{word} {len(accounts)} account(s).", messages.SUCCESS)

    def get_urls(self):
        return [
            path(
                "<int:object_id>/test-connection/",
                self.admin_site.admin_view(self.test_connection_view),
                name="videos_provideraccount_test",
            ),
            *super().get_urls(),
        ]

    @method_decorator(require_POST)
    def test_connection_view(self, request: HttpRequest, object_id: int) -> HttpResponseRedirect:
        account = get_object_or_404(ProviderAccount, pk=object_id)
        if not self.has_view_or_change_permission(request, account):
            raise PermissionDenied
        self._report(request, account)
        return HttpResponseRedirect(
            reverse("admin:videos_provideraccount_change", args=[account.pk])
        )


# --- clips and what hangs off them -------------------------------------------------------------


class FrameInline(admin.TabularInline):
    model = Frame
    extra = 0


@admin.register(Clip)
class ClipAdmin(admin.ModelAdmin):
    list_display = [
        "pk",
        "project",
        "kind",
        "status",
        "progress",
        "provider_account",
        "model",
        "created_by",
        "estimated_cost",
        "cost",
        "created_at",
    ]
    list_filter = ["status", "kind", "provider_account", "model", "project"]
    search_fields = ["prompt", "provider_task_id", "created_by__username", "project__name"]
    list_select_related = ["project", "provider_account", "created_by"]
    raw_id_fields = ["parent", "retry_of"]
    readonly_fields = ["tracking_lease_until", "last_polled_at", "sha256", "file_key", "poster_key"]
    date_hierarchy = "created_at"
    inlines = [FrameInline]


@admin.register(Frame)
class FrameAdmin(admin.ModelAdmin):
    list_display = ["clip", "role", "position", "content_type", "width", "height", "created_at"]
    list_filter = ["role", "content_type"]
    search_fields = ["source_url", "clip__prompt"]
    raw_id_fields = ["clip"]


@admin.register(Comment)
class CommentAdmin(admin.ModelAdmin):
    list_display = ["pk", "clip", "scope", "author", "short_body", "timecode", "resolved_at"]
    list_filter = ["scope", ("resolved_at", admin.EmptyFieldListFilter)]
    search_fields = ["body", "author__username"]
    list_select_related = ["clip", "author"]
    raw_id_fields = ["clip", "reply_to"]

    @admin.display(description="Comment")
    def short_body(self, obj: Comment) -> str:
        return obj.body[:80]


@admin.register(Decision)
class DecisionAdmin(admin.ModelAdmin):
    list_display = ["clip", "scope", "user", "verdict", "created_at"]
    list_filter = ["verdict", "scope"]
    search_fields = ["note", "user__username"]
    list_select_related = ["clip", "user"]
    raw_id_fields = ["clip"]


@admin.register(Activity)
class ActivityAdmin(admin.ModelAdmin):
    list_display = ["created_at", "project", "actor", "verb", "summary"]
    list_filter = ["verb", "project"]
    search_fields = ["summary", "actor__username"]
    list_select_related = ["project", "actor"]
    raw_id_fields = ["clip"]
    date_hierarchy = "created_at"


@admin.register(ChainExport)
class ChainExportAdmin(admin.ModelAdmin):
    list_display = ["pk", "root", "status", "progress", "duration_seconds", "created_at"]
    list_filter = ["status", "stream_copied"]
    search_fields = ["root__prompt", "created_by__username"]
    raw_id_fields = ["root"]


@admin.register(TakeGroup)
class TakeGroupAdmin(admin.ModelAdmin):
    list_display = ["pk", "project", "pick", "created_by", "created_at"]
    raw_id_fields = ["pick"]
    list_select_related = ["project", "created_by"]


@admin.register(ReviewLink)
class ReviewLinkAdmin(admin.ModelAdmin):
    """Review links for guests; the token and passcode are stored hashed and never shown."""

    list_display = ["label", "project", "clip", "scope", "expires_at", "revoked_at"]
    list_filter = ["scope"]
    raw_id_fields = ["clip"]
    exclude = ["token_hash", "passcode_hash"]


@admin.register(WorkerHeartbeat)
class WorkerHeartbeatAdmin(admin.ModelAdmin):
    """Which trackers said they were alive, and when: read-only, the processes write it."""

    list_display = ["name", "kind", "seen_at"]
    list_filter = ["kind"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


# --- money ---------------------------------------------------------------------------------


def model_choices() -> list[tuple[str, list[tuple[str, str]]]]:
    """Every model the studio offers, grouped by provider, labelled as the new-clip form does."""
    return [
        (
            kind_label,
            [
                (f"{kind}:{spec.name}", f"{spec.label} ({spec.name})")
                for spec in providers.models_for(kind)
            ],
        )
        for kind, kind_label in ProviderKind.choices
    ]


class ModelPriceForm(forms.ModelForm):
    """Provider and model picked from the models the studio knows, so every price matches."""

    provider_model = forms.ChoiceField(
        label="Model",
        help_text="The provider and model as the new-clip form offers them.",
    )

    class Meta:
        model = ModelPrice
        fields = ["per_clip", "per_second"]
        help_texts = {
            "per_clip": "USD for each clip, whatever its length.",
            "per_second": "USD for each second asked for (the clip's duration).",
        }

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["provider_model"]
        field.choices = model_choices()
        if self.instance.pk:
            value = f"{self.instance.kind}:{self.instance.model}"
            self.initial["provider_model"] = value
            if providers.model_spec(self.instance.kind, self.instance.model) is None:
                # A row from before the list: shown as it is, to be corrected or deleted.
                field.choices = [
                    (value, f"{self.instance.model} (not a model the studio offers)"),
                    *field.choices,
                ]
        self.order_fields(["provider_model", "per_clip", "per_second"])

    def clean_provider_model(self) -> str:
        value = self.cleaned_data["provider_model"]
        kind, _, model = value.partition(":")
        if providers.model_spec(kind, model) is None:
            raise forms.ValidationError(
                "Pick a model from the list: prices for other names would never be used."
            )
        duplicate = ModelPrice.objects.filter(kind=kind, model=model).exclude(pk=self.instance.pk)
        if duplicate.exists():
            raise forms.ValidationError("This model has a price already; change that one.")
        self.instance.kind, self.instance.model = kind, model
        return value


@admin.register(ModelPrice)
class ModelPriceAdmin(admin.ModelAdmin):
    form = ModelPriceForm
    list_display = ["model_label", "kind", "per_clip", "per_second", "updated_at"]
    list_editable = ["per_clip", "per_second"]
    list_filter = ["kind"]
    search_fields = ["model"]

    @admin.display(description="Model", ordering="model")
    def model_label(self, obj: ModelPrice) -> str:
        spec = providers.model_spec(obj.kind, obj.model)
        if spec is None:
            return f"{obj.model} (not a model the studio offers: never used)"
        return f"{spec.label} ({obj.model})"


@admin.register(LedgerEntry)
class LedgerEntryAdmin(admin.ModelAdmin):
    list_display = [
        "clip",
        "project",
        "provider_account",
        "user",
        "model",
        "estimated_cost",
        "actual_cost",
        "actual_is_estimate",
        "failed_but_charged",
        "submitted_at",
        "settled_at",
    ]
    list_filter = [
        "failed_but_charged",
        "actual_is_estimate",
        ("settled_at", admin.EmptyFieldListFilter),
        "provider_account",
        "project",
    ]
    search_fields = ["model", "user__username", "project__name", "clip__provider_task_id"]
    list_select_related = ["clip", "project", "provider_account", "user"]
    date_hierarchy = "submitted_at"
    # The ledger records what happened: its origin is fixed; a site admin may correct the
    # settlement (a provider's later refund, say).
    readonly_fields = ["clip", "project", "provider_account", "user", "model", "submitted_at"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    list_display = ["created_at", "actor", "action", "target", "project"]
    list_filter = ["action", "project"]
    search_fields = ["target", "actor__username", "action"]
    list_select_related = ["actor", "project"]
    date_hierarchy = "created_at"

    # The log is append-only: nobody edits or deletes what it says.
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False
