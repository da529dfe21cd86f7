from __future__ import annotations

from django import forms

from videos import providers
from videos.models import Project, ProviderAccount


class ProjectForm(forms.ModelForm):
    class Meta:
        model = Project
        fields = ["name"]
        labels = {"name": "Name"}
        widgets = {
            "name": forms.TextInput(attrs={"placeholder": "Spring campaign", "autofocus": True})
        }


class ClipForm(forms.Form):
    """A new clip. Choices follow the chosen account and model, so only what that model
    accepts is offered, and a combination it refuses is caught here, before any paid call."""

    provider_account = forms.ModelChoiceField(
        label="Provider", queryset=ProviderAccount.objects.none(), empty_label=None
    )
    model = forms.ChoiceField(label="Model")
    prompt = forms.CharField(
        label="Prompt",
        max_length=2500,
        widget=forms.Textarea(
            attrs={
                "rows": 5,
                "placeholder": "A golden retriever running on the beach at sunset, cinematic",
            }
        ),
    )
    prompt_extend = forms.CharField(
        label="Extension prompt",
        max_length=2500,
        help_text="What happens in the last 7 s, after the first 8 s.",
        widget=forms.Textarea(
            attrs={"rows": 3, "placeholder": "The camera pulls back to reveal the bay"}
        ),
    )
    negative_prompt = forms.CharField(
        label="Avoid",
        required=False,
        max_length=2500,
        widget=forms.TextInput(attrs={"placeholder": "blurry, low quality, watermark"}),
    )
    duration = forms.TypedChoiceField(label="Duration", coerce=int)
    aspect_ratio = forms.ChoiceField(label="Aspect ratio")
    resolution = forms.ChoiceField(label="Resolution")

    def __init__(self, *args, accounts, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["provider_account"].queryset = accounts
        account = self._chosen_account(accounts)
        specs = providers.models_for(account.kind) if account else ()
        self.fields["model"].choices = [(spec.name, spec.label) for spec in specs]
        spec = self._chosen_spec(specs)
        self.spec = spec
        if spec is None or "prompt_extend" not in spec.prompts:
            del self.fields["prompt_extend"]
        if spec is None:
            for name in ("duration", "aspect_ratio", "resolution"):
                self.fields[name].choices = []
            return
        self.fields["resolution"].label = spec.resolution_label
        self.fields["duration"].choices = [(d, f"{d} s") for d in spec.durations]
        self.fields["aspect_ratio"].choices = [(a, a) for a in spec.aspect_ratios]
        self.fields["resolution"].choices = [(r, r) for r in spec.resolutions]
        defaults = {
            "model": spec.name,
            "duration": spec.default_duration,
            "aspect_ratio": spec.aspect_ratios[0],
            "resolution": spec.default_resolution,
        }
        for name, default in defaults.items():
            # Values re-sent by the HTMX refresh arrive as strings ("8"); keep one the new
            # model offers, as its own choice value, so the select shows it selected.
            # Anything the model does not offer falls back to the model's default.
            wanted = str(self.initial.get(name, ""))
            offered = [value for value, _ in self.fields[name].choices]
            self.initial[name] = next((v for v in offered if str(v) == wanted), default)

    def _value(self, name: str) -> str | None:
        if self.is_bound:
            return self.data.get(self.add_prefix(name))
        value = self.initial.get(name)
        return str(value.pk if isinstance(value, ProviderAccount) else value) if value else None

    def _chosen_account(self, accounts) -> ProviderAccount | None:
        chosen = self._value("provider_account")
        account = None
        if chosen and str(chosen).isdigit():
            account = accounts.filter(pk=int(chosen)).first()
        return account or accounts.first()

    def _chosen_spec(self, specs) -> providers.ModelSpec | None:
        chosen = self._value("model")
        return next((s for s in specs if s.name == chosen), specs[0] if specs else None)

    def clean(self):
        cleaned = super().clean()
        account = cleaned.get("provider_account")
        model = cleaned.get("model")
        if account and model and providers.model_spec(account.kind, model) is None:
            self.add_error("model", f"{account.label} does not offer this model.")
        return cleaned

    def params(self) -> dict:
        data = self.cleaned_data
        params = {
            "duration": data["duration"],
            "aspect_ratio": data["aspect_ratio"],
            "resolution": data["resolution"],
        }
        for optional in ("negative_prompt", "prompt_extend"):
            if data.get(optional):
                params[optional] = data[optional]
        return params
