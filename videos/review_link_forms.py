"""Forms for review links: making one, and what a guest sends through one."""

from __future__ import annotations

from datetime import datetime, timedelta

from django import forms
from django.utils import timezone

from videos.models import CommentScope, Verdict
from videos.review_links import EXPIRY_DAYS


class ReviewLinkForm(forms.Form):
    scope = forms.ChoiceField(
        label="What the link shows",
        choices=[
            (CommentScope.CHAIN, "The whole chain (its main line, as it is when they watch)"),
            (CommentScope.CLIP, "This clip only"),
        ],
        widget=forms.RadioSelect,
    )
    label = forms.CharField(
        label="Name",
        required=False,
        max_length=120,
        help_text="Who it is for, or what it is: the guest sees it as the page's title.",
        widget=forms.TextInput(attrs={"placeholder": "Client cut, first look"}),
    )
    expires_in = forms.TypedChoiceField(
        label="Works for",
        coerce=int,
        choices=[(days, f"{days} day{'s' if days != 1 else ''}") for days in EXPIRY_DAYS],
        initial=7,
    )
    passcode = forms.CharField(
        label="Passcode",
        required=False,
        min_length=4,
        max_length=128,
        strip=False,
        help_text="Optional. Send it apart from the link; guests type it once.",
        widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false"}),
    )

    def __init__(self, *args, in_chain: bool, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if not in_chain:
            self.fields["scope"].choices = [(CommentScope.CLIP, "This clip")]
            self.fields["scope"].initial = CommentScope.CLIP

    def expires_at(self) -> datetime:
        return timezone.now() + timedelta(days=self.cleaned_data["expires_in"])


class PasscodeForm(forms.Form):
    passcode = forms.CharField(
        label="Passcode",
        max_length=128,
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "off", "autofocus": True}),
    )


def _name_field(placeholder: str = "Alex") -> forms.CharField:
    return forms.CharField(
        label="Your name",
        max_length=80,
        help_text="Shown with what you write.",
        widget=forms.TextInput(attrs={"autocomplete": "name", "placeholder": placeholder}),
    )


class GuestCommentForm(forms.Form):
    name = _name_field()
    body = forms.CharField(
        label="Comment",
        max_length=4000,
        widget=forms.Textarea(attrs={"rows": 3, "placeholder": "What should change here?"}),
    )
    timecode = forms.FloatField(
        label="At (seconds)",
        required=False,
        min_value=0,
        widget=forms.NumberInput(attrs={"step": "0.1", "min": "0", "inputmode": "decimal"}),
        help_text="Filled in from the player when you start typing; empty for the whole video.",
    )

    def __init__(self, *args, length: float, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.length = length
        if length:
            self.fields["timecode"].widget.attrs["max"] = f"{length:.1f}"

    def clean_name(self) -> str:
        return " ".join(self.cleaned_data["name"].split())

    def clean_timecode(self) -> float | None:
        value = self.cleaned_data.get("timecode")
        if value is not None and value > self.length + 0.05:
            raise forms.ValidationError(
                f"That is past the end: the video is {self.length:.1f} s long."
            )
        return value


class GuestDecisionForm(forms.Form):
    name = _name_field("Your name")
    verdict = forms.ChoiceField(choices=Verdict.choices)
    note = forms.CharField(
        label="Note",
        required=False,
        max_length=2000,
        widget=forms.TextInput(attrs={"placeholder": "Optional: why"}),
    )

    def clean_name(self) -> str:
        return " ".join(self.cleaned_data["name"].split())
