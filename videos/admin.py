from django import forms
from django.contrib import admin

from videos.models import Clip, Frame, Membership, Project, ProviderAccount


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    autocomplete_fields = ["user"]


@admin.register(Project)
class ProjectAdmin(admin.ModelAdmin):
    list_display = ["name", "created_by", "created_at"]
    search_fields = ["name"]
    inlines = [MembershipInline]


class ProviderAccountForm(forms.ModelForm):
    # Credentials are write-only: the field starts empty and an empty value keeps the
    # stored key, so a saved key is never rendered back into the page.
    credential = forms.CharField(
        required=False,
        widget=forms.PasswordInput(render_value=False),
        help_text="Type a new key to replace the stored one; leave empty to keep it.",
    )
    secret_key = forms.CharField(
        required=False,
        widget=forms.PasswordInput(render_value=False),
        help_text="Kling only: the secret key that signs the JWT.",
    )

    class Meta:
        model = ProviderAccount
        fields = ["kind", "label", "base_url", "credential", "secret_key", "is_enabled"]

    def clean_credential(self):
        value = self.cleaned_data["credential"]
        if not value and not self.instance.pk:
            raise forms.ValidationError("A key is required for a new account.")
        return value or self.instance.credential

    def clean_secret_key(self):
        return self.cleaned_data["secret_key"] or self.instance.secret_key


@admin.register(ProviderAccount)
class ProviderAccountAdmin(admin.ModelAdmin):
    form = ProviderAccountForm
    list_display = ["label", "kind", "base_url", "key_hint", "is_enabled"]
    list_filter = ["kind", "is_enabled"]
    search_fields = ["label", "base_url"]

    @admin.display(description="Key")
    def key_hint(self, obj: ProviderAccount) -> str:
        return f"…{obj.credential_last4}" if obj.credential_last4 else "—"


class FrameInline(admin.TabularInline):
    model = Frame
    extra = 0


@admin.register(Clip)
class ClipAdmin(admin.ModelAdmin):
    list_display = [
        "pk",
        "project",
        "status",
        "progress",
        "provider_account",
        "model",
        "created_at",
    ]
    list_filter = ["status", "provider_account", "model"]
    search_fields = ["prompt", "provider_task_id"]
    raw_id_fields = ["parent"]
    readonly_fields = ["tracking_lease_until", "last_polled_at", "sha256", "file_key", "poster_key"]
    inlines = [FrameInline]
