from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

from django import forms
from django.contrib.auth import get_user_model
from django.core.exceptions import NON_FIELD_ERRORS
from django.db.models import Q
from django.forms.models import ModelChoiceIterator
from django.forms.utils import ErrorDict

from videos import frames, options, pricing, providers, search
from videos.frames import FrameError, NewFrame
from videos.models import Clip, ClipStatus, Frame, Membership, Project, ProviderAccount


class ProjectForm(forms.ModelForm):
    class Meta:
        model = Project
        fields = ["name"]
        labels = {"name": "Name"}
        widgets = {
            "name": forms.TextInput(attrs={"placeholder": "Spring campaign", "autofocus": True})
        }


IMAGE_ACCEPT = "image/jpeg,image/png,image/webp"
# What the creator typed survives the HTMX redraw that follows a change of model, even
# when the redraw lands after they started typing.
PRESERVE = {"hx-preserve": "true"}

TRANSPORT_LABELS = {
    "file": "As file uploads",
    "base64": "As Base64 in the request",
    "data_uri": "As data: URIs in the request",
    "url": "As expiring links to the stored images",
}


# Ids are 64-bit signed in the database: a larger number in a query string must be a form
# error, not an OverflowError from the database driver (a 500).
MAX_ID = 2**63 - 1


def parse_id(value: object) -> int | None:
    """A row id as typed in a query string or form, or None when it cannot be one."""
    text = str(value).strip() if value is not None else ""
    if not text.isdecimal() or len(text) > 19:
        return None
    number = int(text)
    return number if 1 <= number <= MAX_ID else None


TEMPLATE_GONE = "The clip this form was to be filled in from does not exist; start afresh."


class IdField(forms.IntegerField):
    widget = forms.HiddenInput

    def __init__(self, **kwargs) -> None:
        kwargs.setdefault("required", False)
        super().__init__(min_value=1, max_value=MAX_ID, **kwargs)
        self.error_messages["min_value"] = self.error_messages["max_value"] = "No such item."


class ModelMultipleIdField(forms.ModelMultipleChoiceField):
    """Ticked rows by id; an id no row could have is refused before it reaches a query."""

    def _check_values(self, value):
        for pk in value:
            if parse_id(pk) is None:
                raise forms.ValidationError(
                    self.error_messages["invalid_pk_value"],
                    code="invalid_pk_value",
                    params={"pk": str(pk)[:40]},
                )
        return super()._check_values(value)


class MultipleFileInput(forms.FileInput):
    allow_multiple_selected = True


class MultipleFileField(forms.FileField):
    """Several files from one <input multiple>, in the order the browser sent them."""

    widget = MultipleFileInput

    def clean(self, data, initial=None):
        single = super().clean
        if isinstance(data, list | tuple):
            return [single(item, initial) for item in data if item]
        return [single(data, initial)] if data else []


def _link_field(label: str) -> forms.CharField:
    # Unbounded: a pasted data: URI is as long as its image; frames.from_link limits it.
    return forms.CharField(
        label=label,
        required=False,
        widget=forms.TextInput(
            attrs={"placeholder": "https://… or data:image/png;base64,…", "spellcheck": "false"}
        ),
    )


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
                **PRESERVE,
            }
        ),
    )
    prompt_extend = forms.CharField(
        label="Extension prompt",
        max_length=2500,
        help_text="What happens in the last 7 s, after the first 8 s.",
        widget=forms.Textarea(
            attrs={
                "rows": 3,
                "placeholder": "The camera pulls back to reveal the bay",
                **PRESERVE,
            }
        ),
    )
    negative_prompt = forms.CharField(
        label="Avoid",
        required=False,
        max_length=2500,
        widget=forms.TextInput(attrs={"placeholder": "blurry, low quality, watermark", **PRESERVE}),
    )
    duration = forms.TypedChoiceField(label="Duration", coerce=int)
    aspect_ratio = forms.ChoiceField(label="Aspect ratio")
    resolution = forms.ChoiceField(label="Resolution")
    takes = forms.TypedChoiceField(
        label="Takes",
        coerce=int,
        choices=[(n, str(n)) for n in range(1, 5)],
        initial=1,
        required=False,
        empty_value=1,
        help_text="Versions of this prompt to compare side by side. Each one is paid for.",
    )

    first_frame = forms.FileField(
        label="First frame", required=False, widget=forms.FileInput(attrs={"accept": IMAGE_ACCEPT})
    )
    first_frame_link = _link_field("First frame link")
    last_frame = forms.FileField(
        label="Last frame", required=False, widget=forms.FileInput(attrs={"accept": IMAGE_ACCEPT})
    )
    last_frame_link = _link_field("Last frame link")
    references = MultipleFileField(
        label="Reference images",
        required=False,
        widget=MultipleFileInput(attrs={"accept": IMAGE_ACCEPT}),
    )
    reference_links = forms.CharField(
        label="Reference links",
        required=False,
        help_text="One link or data: URI per line.",
        widget=forms.Textarea(attrs={"rows": 2, "placeholder": "https://…", "spellcheck": "false"}),
    )
    frame_transport = forms.ChoiceField(
        label="Send images as",
        required=False,
        help_text="How your images reach the provider. The preselected way is the most reliable.",
    )
    # Which options the form showed, so a redraw tells an unticked box from a new one.
    options_shown = forms.CharField(required=False, widget=forms.HiddenInput)
    # "Use as template": the clip whose stored frames are offered again, and those kept.
    from_clip = IdField()
    keep_frames = ModelMultipleIdField(
        queryset=Frame.objects.none(), required=False, widget=forms.CheckboxSelectMultiple
    )

    SLOTS = {
        "first": ("first_frame", "first_frame_link"),
        "last": ("last_frame", "last_frame_link"),
    }

    def __init__(self, *args, accounts, project: Project | None = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["provider_account"].queryset = accounts
        self.new_frames: list[NewFrame] = []
        if not self.is_bound:
            self._check_query_ids()
        account = self._chosen_account(accounts)
        self.account = account
        specs = providers.models_for(account.kind) if account else ()
        self.fields["model"].choices = [(spec.name, spec.label) for spec in specs]
        spec = self._chosen_spec(specs)
        self.spec = spec
        if spec is None or "prompt_extend" not in spec.prompts:
            del self.fields["prompt_extend"]
        if spec is None or "negative_prompt" not in spec.prompts:
            # Offered only where the provider documents it: otherwise it would be dropped.
            del self.fields["negative_prompt"]
        self._setup_frames(spec, project)
        if spec is None:
            for name in ("duration", "aspect_ratio", "resolution"):
                self.fields[name].choices = []
            return
        shown = str(self.initial.get("options_shown") or "").split(",")
        options.add_fields(self, spec.options, initial=self.initial, shown=shown)
        self.initial["options_shown"] = ",".join(option.name for option in spec.options)
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
        if "frame_transport" in self.fields:
            defaults["frame_transport"] = frames.default_transport(self.transports)
        for name, default in defaults.items():
            # Values re-sent by the HTMX refresh arrive as strings ("8"); keep one the new
            # model offers, as its own choice value, so the select shows it selected.
            # Anything the model does not offer falls back to the model's default.
            wanted = str(self.initial.get(name, ""))
            offered = [value for value, _ in self.fields[name].choices]
            self.initial[name] = next((v for v in offered if str(v) == wanted), default)

    # --- what the chosen model accepts ---------------------------------------------------

    def _setup_frames(self, spec: providers.ModelSpec | None, project: Project | None) -> None:
        roles = spec.frame_roles if spec else ()
        self.roles = roles
        self.transports = frames.usable_transports(spec.frame_transports) if spec else ()
        for role, names in self.SLOTS.items():
            if role not in roles:
                for name in names:
                    del self.fields[name]
        if "reference" not in roles:
            del self.fields["references"], self.fields["reference_links"]
        else:
            self.fields["references"].label = f"Reference images (up to {spec.max_references})"
        if len(self.transports) > 1:
            self.fields["frame_transport"].choices = [
                (t, TRANSPORT_LABELS.get(t, t)) for t in self.transports
            ]
        else:
            del self.fields["frame_transport"]
        self.template_frames: list[Frame] = []
        self.image_rules = frames.requirements_text(self.account.kind) if self.account else ""
        if project is not None:
            self.fields["keep_frames"].queryset = Frame.objects.filter(clip__project=project)
            template_id = parse_id(self._value("from_clip"))
            if template_id is not None:
                self.template_frames = frames.ordered(
                    Frame.objects.filter(clip__project=project, clip_id=template_id)
                )

    def option_fields(self) -> list:
        """The chosen model's own options, as bound fields, in the provider's order."""
        return [self[option.name] for option in self.spec.options] if self.spec else []

    @property
    def sound(self) -> str:
        return {"always": "This model makes sound.", "never": "This model makes no sound."}.get(
            self.spec.audio if self.spec else "", ""
        )

    @property
    def mixes_frames_and_references(self) -> bool:
        """The model has both kinds of slot but takes only one kind at a time (kie)."""
        return "reference" in self.roles and bool({"first", "last"} & set(self.roles))

    def template_frames_for(self, role: str) -> list[tuple[Frame, bool]]:
        """The template's stored frames for one slot, each with whether it is kept."""
        if self.is_bound:
            name = self.add_prefix("keep_frames")
            getlist = getattr(self.data, "getlist", None)
            kept = set(getlist(name) if getlist else self.data.get(name) or ())
            kept = {str(pk) for pk in kept}
        else:
            kept = {str(pk) for pk in self.initial.get("keep_frames") or ()}
        return [(f, str(f.pk) in kept) for f in self.template_frames if f.role == role]

    def slots(self) -> list[dict]:
        """The frame slots this model takes, in order, for the template."""
        result = []
        for role, (file_name, link_name) in self.SLOTS.items():
            if role in self.roles:
                result.append(
                    {
                        "role": role,
                        "file": self[file_name],
                        "link": self[link_name],
                        "kept": self.template_frames_for(role),
                        "multiple": False,
                    }
                )
        if "reference" in self.roles:
            result.append(
                {
                    "role": "reference",
                    "file": self["references"],
                    "link": self["reference_links"],
                    "kept": self.template_frames_for("reference"),
                    "multiple": True,
                }
            )
        return result

    def _value(self, name: str) -> str | None:
        if self.is_bound:
            return self.data.get(self.add_prefix(name))
        value = self.initial.get(name)
        return str(value.pk if isinstance(value, ProviderAccount) else value) if value else None

    def _chosen_account(self, accounts) -> ProviderAccount | None:
        chosen = parse_id(self._value("provider_account"))
        account = None
        if chosen is not None:
            account = accounts.filter(pk=chosen).first()
        return account or accounts.first()

    def _chosen_spec(self, specs) -> providers.ModelSpec | None:
        chosen = self._value("model")
        return next((s for s in specs if s.name == chosen), specs[0] if specs else None)

    def estimated_cost(self) -> Decimal | None:
        if self.account is None or self.spec is None:
            return None
        duration = self._value("duration")
        seconds = int(duration) if duration and str(duration).isdigit() else None
        if seconds not in self.spec.durations:
            seconds = self.spec.default_duration
        one = pricing.estimate_cost(self.account.kind, self.spec.name, seconds)
        return one * self.takes_count if one is not None else None

    @property
    def takes_count(self) -> int:
        value = self._value("takes")
        return int(value) if value and str(value) in {"1", "2", "3", "4"} else 1

    # --- checking ------------------------------------------------------------------------

    def _check_query_ids(self) -> None:
        """Ids in the query string that opened the form: one no row could have is said
        above the form (an unbound form has no errors of its own) and otherwise ignored."""
        messages = []
        if self.initial.get("from_clip") and parse_id(self.initial["from_clip"]) is None:
            messages.append(TEMPLATE_GONE)
        kept = self.initial.get("keep_frames") or ()
        if isinstance(kept, str | int):
            kept = [kept]
        if any(parse_id(pk) is None for pk in kept):
            messages.append("Some of the images to keep do not exist; they are left out.")
        if messages:
            self._errors = ErrorDict(
                {NON_FIELD_ERRORS: self.error_class(messages, error_class="nonfield")}
            )

    def clean(self):
        cleaned = super().clean()
        if self.has_error("from_clip"):
            # A hidden field: its own error would show nowhere.
            self.add_error(None, TEMPLATE_GONE)
        account = cleaned.get("provider_account")
        model = cleaned.get("model")
        if account and model and providers.model_spec(account.kind, model) is None:
            self.add_error("model", f"{account.label} does not offer this model.")
            return cleaned
        if account is None or model is None or self.spec is None:
            return cleaned
        self._clean_frames(account.kind, allow_private=account.is_sandbox)
        return cleaned

    def _clean_frames(self, kind: str, *, allow_private: bool) -> None:
        spec = self.spec
        data = self.cleaned_data
        chosen: dict[str, list[NewFrame]] = {"first": [], "last": [], "reference": []}
        failed: set[str] = set()

        kept = [f for f in data.get("keep_frames") or () if f in self.template_frames]
        for frame in kept:
            if frame.role not in self.roles:
                self.add_error(
                    "keep_frames",
                    f"{spec.label} takes no {frame.get_role_display().lower()} images. "
                    "Untick it or pick a model that does.",
                )
                continue
            try:
                frames.check_stored(frame, kind=kind, allow_private=allow_private)
            except FrameError as exc:
                self.add_error("keep_frames", str(exc))
                continue
            chosen[frame.role].append(frames.copy_of(frame))

        for role, (file_name, link_name) in self.SLOTS.items():
            if role not in self.roles:
                continue
            upload, link = data.get(file_name), (data.get(link_name) or "").strip()
            if upload and link:
                self.add_error(link_name, "Choose a file or paste a link, not both.")
                failed.add(role)
                continue
            try:
                if upload:
                    new = frames.from_upload(upload, kind=kind, role=role)
                elif link:
                    new = frames.from_link(link, kind=kind, role=role, allow_private=allow_private)
                else:
                    continue
            except FrameError as exc:
                self.add_error(file_name if upload else link_name, str(exc))
                failed.add(role)
                continue
            # A new image replaces the template's image in the same slot.
            chosen[role] = [new]

        if "reference" in self.roles:
            for upload in data.get("references") or ():
                try:
                    chosen["reference"].append(
                        frames.from_upload(upload, kind=kind, role="reference")
                    )
                except FrameError as exc:
                    self.add_error("references", f"{upload.name}: {exc}")
                    failed.add("reference")
            for line in (data.get("reference_links") or "").splitlines():
                if not line.strip():
                    continue
                try:
                    chosen["reference"].append(
                        frames.from_link(
                            line, kind=kind, role="reference", allow_private=allow_private
                        )
                    )
                except FrameError as exc:
                    self.add_error("reference_links", str(exc))
                    failed.add("reference")
            if len(chosen["reference"]) > spec.max_references:
                self.add_error(
                    "references",
                    f"{spec.label} takes up to {spec.max_references} reference images; "
                    f"you gave {len(chosen['reference'])}. Remove some.",
                )

        has_first = bool(chosen["first"]) or "first" in failed
        if chosen["last"] and not has_first:
            self.add_error("last_frame", "A last frame needs a first frame too. Add a first frame.")
        if "first" in self.roles and not has_first and frames.first_frame_required(kind, spec.name):
            self.add_error("first_frame", f"{spec.label} animates an image: add a first frame.")
        if chosen["reference"] and (chosen["first"] or chosen["last"]):
            self.add_error(
                "references",
                f"{spec.label} takes either first/last frames or reference images, not both.",
            )

        new_frames = [
            replace(frame, position=index)
            for role in ("first", "last", "reference")
            for index, frame in enumerate(chosen[role])
        ]
        stored = [f for f in new_frames if f.needs_link]
        if stored and not self.transports:
            # The provider takes links only and the studio cannot give it one.
            message = (
                f"{self.account.label} fetches images from a link, and this studio has no "
                "public address for stored images (an admin sets PUBLIC_URL). Paste a public "
                "image link instead."
            )
            for role in {f.role for f in stored}:
                field = {"first": "first_frame", "last": "last_frame"}.get(role, "references")
                self.add_error(field, message)
        self.new_frames = new_frames

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
        if self.roles and self.transports:
            params["frame_transport"] = data.get("frame_transport") or frames.default_transport(
                self.transports
            )
        params.update(options.params_from(self.spec.options, data, has_frame=bool(self.new_frames)))
        return params


class RetryExtensionForm(forms.Form):
    """NewAPI's failed extension, asked for again: what happens in the 7 s."""

    prompt_extend = forms.CharField(
        label="What happens in the extension",
        max_length=2500,
        widget=forms.Textarea(attrs={"rows": 2}),
    )


def initial_from_clip(clip: Clip) -> dict:
    """The new-clip form filled in from an earlier clip ("Use as template")."""
    params = clip.params or {}
    initial = {
        "provider_account": clip.provider_account_id,
        "model": clip.model,
        "prompt": clip.prompt,
        "from_clip": clip.pk,
        "keep_frames": [frame.pk for frame in clip.frames.all()],
    }
    for name in (
        "prompt_extend",
        "negative_prompt",
        "duration",
        "aspect_ratio",
        "resolution",
        "frame_transport",
    ):
        if params.get(name) not in (None, ""):
            initial[name] = params[name]
    spec = providers.model_spec(clip.provider_account.kind, clip.model)
    for option in spec.options if spec else ():
        if params.get(option.name) not in (None, ""):
            initial[option.name] = params[option.name]
    if spec is not None:
        # As sent: an option the clip went without was left unticked.
        initial["options_shown"] = ",".join(option.name for option in spec.options)
    return initial


class StatusPollForm(forms.Form):
    """A clip page's poll says which status it last drew, so an answer for the same status
    can leave the rest of the page alone. A value it does not know only costs a full answer."""

    seen = forms.ChoiceField(required=False, choices=ClipStatus.choices)


def library_providers(project_id: int):
    """The accounts a project's clips were made with: the library's provider filter."""
    # Subqueries, not joins: a join over 500 clips would repeat each account or user.
    return ProviderAccount.objects.filter(
        pk__in=Clip.objects.filter(project=project_id).values("provider_account")
    ).order_by("label", "pk")


def library_creators(project_id: int):
    """The project's members and whoever made its clips: the library's creator filter."""
    return (
        get_user_model()
        .objects.filter(
            Q(pk__in=Membership.objects.filter(project=project_id).values("user"))
            | Q(pk__in=Clip.objects.filter(project=project_id).values("created_by"))
        )
        .order_by("username", "pk")
    )


class _ChoicesOnDemand(ModelChoiceIterator):
    """Django's iterator over a ModelChoiceField's queryset, asking the field for it only
    when the choices are drawn."""

    def __init__(self, field) -> None:
        self.field = field

    @property
    def queryset(self):
        return self.field.queryset


class ModelChoiceOnDemand(forms.ModelChoiceField):
    """A ModelChoiceField whose queryset is built on first use, from ``make_queryset``.

    The library's filters are drawn from the fragment cache on most views of a project
    page, and an empty choice validates without a queryset: building the two filter
    querysets anyway was a fifth of a cached project page's time (bench/profile_pages.py).
    """

    iterator = _ChoicesOnDemand
    make_queryset = None

    def _get_queryset(self):
        make, self.make_queryset = self.make_queryset, None
        if make is not None:
            self.queryset = make()
        return self._queryset

    queryset = property(_get_queryset, forms.ModelChoiceField._set_queryset)

    def __deepcopy__(self, memo):
        result = super().__deepcopy__(memo)
        # Django points a copy's widget at the copy when it clones the queryset; a field
        # made with no queryset yet has none to clone, so that is done here.
        result.widget.choices = result.choices
        return result


class LibraryFilterForm(forms.Form):
    """The project library's filters, read from the query string."""

    q = forms.CharField(label="Search prompts", required=False, max_length=200)
    status = forms.ChoiceField(
        label="Status",
        required=False,
        choices=[("", "Any status"), *ClipStatus.choices],
        error_messages={"invalid_choice": "No such status; showing every status."},
    )
    # No queryset until the form is made for a project: each form's copy of the field
    # would otherwise clone one it never uses.
    provider = ModelChoiceOnDemand(
        label="Provider",
        required=False,
        queryset=None,
        empty_label="Any provider",
        error_messages={"invalid_choice": "No such provider in this project; showing all."},
    )
    creator = ModelChoiceOnDemand(
        label="Creator",
        required=False,
        queryset=None,
        empty_label="Anyone",
        error_messages={"invalid_choice": "No such creator in this project; showing everyone."},
    )
    page = forms.IntegerField(
        required=False,
        min_value=1,
        widget=forms.HiddenInput,
        error_messages={
            "invalid": "That is not a page number; showing the first page.",
            "min_value": "Pages start at 1; showing the first page.",
        },
    )
    # The page of the project's chains, listed under the library.
    chains = forms.IntegerField(
        required=False,
        min_value=1,
        widget=forms.HiddenInput,
        error_messages={
            "invalid": "That is not a page number; showing the first page of chains.",
            "min_value": "Pages start at 1; showing the first page of chains.",
        },
    )

    def __init__(self, *args, project: Project, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["q"].widget.attrs["placeholder"] = "Search prompts"
        self.fields["q"].widget.attrs["type"] = "search"
        self.fields["provider"].make_queryset = lambda: library_providers(project.pk)
        self.fields["creator"].make_queryset = lambda: library_creators(project.pk)
        self.fields["creator"].label_from_instance = lambda user: user.get_username()

    def filter(self, clips):
        """The clips that match the valid filters; a bad value is reported, not applied."""
        self.is_valid()
        data = self.cleaned_data
        if data.get("q"):
            clips = search.matching(clips, data["q"])
        if data.get("status"):
            clips = clips.filter(status=data["status"])
        if data.get("provider"):
            clips = clips.filter(provider_account=data["provider"])
        if data.get("creator"):
            clips = clips.filter(created_by=data["creator"])
        return clips

    @property
    def is_filtered(self) -> bool:
        return any(self.cleaned_data.get(name) for name in ("q", "status", "provider", "creator"))
