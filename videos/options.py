"""A model's documented options (``ModelSpec.options``) as form fields, and back as params.

The new-clip form and the extend form both build their option fields here, so each option
is offered only where the chosen model takes it, with the provider's own rules (ranges,
choices, "only true"), and reaches the pipeline in the type the provider wants.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from typing import Any

from django import forms

from videos.providers import ModelSpec
from videos.providers.base import OptionSpec


def field_for(option: OptionSpec) -> forms.Field:
    """The form field for one option; never required (empty leaves the provider's default)."""
    common: dict[str, Any] = {"label": option.label, "required": False, "help_text": option.help}
    if option.kind == "int":
        return forms.IntegerField(
            min_value=option.minimum,
            max_value=option.maximum,
            widget=forms.NumberInput(
                attrs={
                    "placeholder": "Random",
                    "min": f"{option.minimum:g}",
                    "max": f"{option.maximum:g}",
                    "inputmode": "numeric",
                }
            ),
            **common,
        )
    if option.kind == "float":
        return forms.FloatField(
            min_value=option.minimum,
            max_value=option.maximum,
            widget=forms.NumberInput(
                attrs={
                    "placeholder": "Provider's default",
                    "min": f"{option.minimum:g}",
                    "max": f"{option.maximum:g}",
                    "step": option.step or "any",
                    "inputmode": "decimal",
                }
            ),
            **common,
        )
    if option.kind == "bool":
        return forms.BooleanField(**common)
    if option.kind == "choice":
        return forms.ChoiceField(choices=option.choices, **common)
    return forms.CharField(
        max_length=option.max_length or 500,
        widget=forms.TextInput(attrs={"spellcheck": "false"}),
        **common,
    )


def add_fields(
    form: forms.Form,
    options: Iterable[OptionSpec],
    *,
    initial: Mapping[str, Any],
    shown: Collection[str] = (),
) -> None:
    """Add a field per option, each starting as the creator left it or at its default.

    ``shown``: the options the form being redrawn already offered. Browsers send nothing for
    an unticked box, so one of those that is absent was unticked; any other option (new
    with the model just chosen) starts at its default.
    """
    for option in options:
        form.fields[option.name] = field_for(option)
        if option.name in initial:
            continue
        if option.kind == "bool" and option.name in shown:
            form.initial[option.name] = False
        elif option.default is not None:
            form.initial[option.name] = option.default


def params_from(
    options: Iterable[OptionSpec], cleaned: Mapping[str, Any], *, has_frame: bool
) -> dict[str, Any]:
    """The options' values as the pipeline sends them: ints, floats, booleans, strings.

    Left out: empty values, "only true" options left unticked (apimart refuses
    ``enhance_prompt: false``), and options read only with a frame when there is none.
    """
    params: dict[str, Any] = {}
    for option in options:
        value = cleaned.get(option.name)
        if option.needs_frame and not has_frame:
            continue
        if option.kind == "bool":
            if option.only_true and not value:
                continue
            params[option.name] = bool(value)
        elif value not in (None, ""):
            params[option.name] = value
    return params


def described(spec: ModelSpec | None, params: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(label, value as the form showed it) for each option a clip was sent with."""
    if spec is None:
        return []
    shown = []
    for option in spec.options:
        if option.name not in params:
            continue
        value = params[option.name]
        if option.kind == "bool":
            text = "Yes" if value else "No"
        elif option.kind == "choice":
            text = dict(option.choices).get(str(value), str(value))
        else:
            text = f"{value:g}" if isinstance(value, float) else str(value)
        shown.append((option.label, text))
    return shown


def sound(spec: ModelSpec | None, params: Mapping[str, Any]) -> str:
    """Whether a clip was made with sound, in words; empty where the provider does not say."""
    if spec is None or not spec.audio:
        return ""
    if spec.audio == "always":
        return "With sound"
    if spec.audio == "never":
        return "No sound (this model makes none)"
    return "With sound" if params.get("generate_audio") else "No sound"
