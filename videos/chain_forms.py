"""Forms for chains and review: extend, continue from the last frame, comments, decisions."""

from __future__ import annotations

from django import forms

from videos import chains, options, providers
from videos.models import Clip, CommentScope, ProviderAccount, ProviderKind, Verdict
from videos.providers import ModelSpec


class ExtendForm(forms.Form):
    """An extension at the clip's own provider; the provider's rules are checked first."""

    prompt = forms.CharField(
        label="What happens next",
        max_length=2500,
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text="Starts as the clip's own prompt: describe how the shot carries on.",
    )
    raw = forms.BooleanField(
        label="Return only the new 7 s",
        required=False,
        help_text=(
            "apimart returns the whole 15 s video unless this is ticked. Either way the chain "
            "plays each second once."
        ),
    )
    negative_prompt = forms.CharField(
        label="Avoid",
        required=False,
        max_length=2500,
        widget=forms.TextInput(attrs={"placeholder": "blurry, low quality, watermark"}),
    )

    def __init__(self, *args, source: Clip, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.source = source
        kind = source.provider_account.kind
        if kind != ProviderKind.APIMART:
            del self.fields["raw"]
        if kind != ProviderKind.KLING:
            del self.fields["negative_prompt"]
        # The extension endpoint's own documented fields (kie: seeds, watermark; Kling:
        # cfg_scale), each with the provider's rules.
        spec = providers.model_spec(kind, source.model)
        self.extend_options = spec.extend_options if spec else ()
        options.add_fields(self, self.extend_options, initial=self.initial)

    def option_fields(self) -> list:
        return [self[option.name] for option in self.extend_options]

    def option_params(self) -> dict:
        return options.params_from(self.extend_options, self.cleaned_data, has_frame=False)

    def clean(self):
        cleaned = super().clean()
        refusal = chains.extend_refusal(self.source)
        if refusal:
            raise forms.ValidationError(refusal)
        return cleaned


class ContinueForm(forms.Form):
    """A new image-to-video clip from the source's last frame, on any model that takes one.

    Choices follow the chosen provider and model (as on the new-clip form), so only what
    that model accepts is offered.
    """

    target = forms.ChoiceField(label="Provider and model")
    prompt = forms.CharField(
        label="Prompt",
        max_length=2500,
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text="Starts as the clip's own prompt: describe what happens from its last frame.",
    )
    prompt_extend = forms.CharField(
        label="Extension prompt",
        max_length=2500,
        help_text="What happens in the last 7 s, after the first 8 s.",
        widget=forms.Textarea(attrs={"rows": 3}),
    )
    duration = forms.TypedChoiceField(label="Duration", coerce=int)
    aspect_ratio = forms.ChoiceField(label="Aspect ratio")
    resolution = forms.ChoiceField(label="Resolution")
    match_colours = forms.BooleanField(
        label="Match colours to the chain’s first part",
        required=False,
        help_text=(
            "Moves the still’s colour, brightness and contrast back to the first part’s before "
            "it is sent, so a drift that built up over the hops does not carry on."
        ),
    )

    def __init__(
        self, *args, source: Clip, targets: list[tuple[ProviderAccount, ModelSpec]], **kwargs
    ) -> None:
        super().__init__(*args, **kwargs)
        self.source = source
        if not chains.can_match_colours(source):
            del self.fields["match_colours"]
        self.targets = {f"{account.pk}:{spec.name}": (account, spec) for account, spec in targets}
        groups: dict[str, list[tuple[str, str]]] = {}
        for value, (account, spec) in self.targets.items():
            groups.setdefault(account.label, []).append((value, spec.label))
        self.fields["target"].choices = list(groups.items())
        own = f"{source.provider_account_id}:{source.model}"
        chosen = self._value("target")
        if chosen not in self.targets:
            chosen = own if own in self.targets else next(iter(self.targets), None)
        self.initial["target"] = chosen
        account, spec = self.targets.get(chosen, (None, None)) if chosen else (None, None)
        self.account, self.spec = account, spec
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
        # The source's shape and resolution carry over where the new model offers them.
        defaults = {
            "duration": spec.default_duration,
            "aspect_ratio": source.params.get("aspect_ratio") or spec.aspect_ratios[0],
            "resolution": source.params.get("resolution") or spec.default_resolution,
        }
        for name, default in defaults.items():
            wanted = str(self.initial.get(name) or default)
            offered = [value for value, _ in self.fields[name].choices]
            self.initial[name] = next((v for v in offered if str(v) == wanted), offered[0])

    def _value(self, name: str) -> str | None:
        if self.is_bound:
            return self.data.get(self.add_prefix(name))
        value = self.initial.get(name)
        return str(value) if value else None

    def wants_matched_colours(self) -> bool:
        """Whether the hand-off still is to be colour-matched (for the preview, too)."""
        if "match_colours" not in self.fields:
            return False
        if self.is_bound:
            return self.fields["match_colours"].widget.value_from_datadict(
                self.data, self.files, self.add_prefix("match_colours")
            )
        return bool(self.initial.get("match_colours"))

    def clean_target(self) -> str:
        value = self.cleaned_data["target"]
        if value not in self.targets:
            raise forms.ValidationError("Pick a provider and model from the list.")
        return value

    def params(self) -> dict:
        data = self.cleaned_data
        params = {
            "duration": data["duration"],
            "aspect_ratio": data["aspect_ratio"],
            "resolution": data["resolution"],
        }
        if data.get("prompt_extend"):
            params["prompt_extend"] = data["prompt_extend"]
        return params


class CommentForm(forms.Form):
    body = forms.CharField(
        label="Comment",
        max_length=4000,
        widget=forms.Textarea(attrs={"rows": 2, "placeholder": "What should change here?"}),
    )
    timecode = forms.FloatField(
        label="At (seconds)",
        required=False,
        min_value=0,
        widget=forms.NumberInput(attrs={"step": "0.1", "min": "0", "inputmode": "decimal"}),
        help_text="Filled in from the player when you start typing; empty for the whole clip.",
    )
    scope = forms.ChoiceField(choices=CommentScope.choices, widget=forms.HiddenInput)
    reply_to = forms.IntegerField(required=False, widget=forms.HiddenInput)

    def __init__(self, *args, length: float | None = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.length = length
        if length:
            self.fields["timecode"].widget.attrs["max"] = f"{length:.1f}"

    def clean_timecode(self) -> float | None:
        value = self.cleaned_data.get("timecode")
        if value is not None and self.length and value > self.length + 0.05:
            raise forms.ValidationError(
                f"That is past the end: the video is {self.length:.1f} s long."
            )
        return value


class ResolveForm(forms.Form):
    action = forms.ChoiceField(choices=[("resolve", "Resolve"), ("reopen", "Reopen")])


class DecisionForm(forms.Form):
    verdict = forms.ChoiceField(choices=Verdict.choices)
    note = forms.CharField(
        label="Note",
        required=False,
        max_length=2000,
        widget=forms.TextInput(attrs={"placeholder": "Optional: why"}),
    )
    scope = forms.ChoiceField(choices=CommentScope.choices, widget=forms.HiddenInput)


class TrimForm(forms.Form):
    """In and out points of one segment, in seconds into its new footage; empty keeps that end."""

    trim_in = forms.FloatField(
        label="In",
        required=False,
        min_value=0,
        widget=forms.NumberInput(attrs={"step": "any", "min": "0", "inputmode": "decimal"}),
    )
    trim_out = forms.FloatField(
        label="Out",
        required=False,
        min_value=0,
        widget=forms.NumberInput(attrs={"step": "any", "min": "0", "inputmode": "decimal"}),
    )
    reset = forms.BooleanField(required=False, widget=forms.HiddenInput)
