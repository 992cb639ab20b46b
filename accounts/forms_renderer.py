"""The form renderer of the whole site.

The markup is Django's accessible field group (label, help text, errors tied by
aria-describedby) wrapped in the portal's field markup (``forms/field.html``).

Django renders a field through four to six templates (the group, the label, the
error list, the widget, its attributes), which costs more than the rest of a small
settings page together. For the templates whose output is simple, this renderer
writes the same markup in Python: the field group, the label, an empty error list
and the single ``<input>`` widgets. Everything else (selects, text areas, choices,
non-empty error lists, a field set) still goes through its template. A template
overridden by the project or an app is always used as it is: the quick path
applies only while the template the loader finds is the one it copies
(``tests/accounts/test_forms_renderer.py`` checks both write the same markup).
"""

from __future__ import annotations

import html
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import django
from django.conf import settings
from django.forms.renderers import TemplatesSetting
from django.template import TemplateDoesNotExist
from django.template.loader import get_template
from django.utils.functional import Promise
from django.utils.safestring import SafeData

from accounts.markup import esc

FIELD_TEMPLATE = "forms/field.html"

_DJANGO_FORMS = Path(django.__file__).parent / "forms" / "templates"
_OURS = Path(settings.BASE_DIR) / "templates"


def _text(value: Any) -> str:
    """``{{ value|stringformat:'s' }}`` in an autoescaped template."""
    if isinstance(value, SafeData):
        return str(value)
    return html.escape("%s" % value)  # noqa: UP031 (the filter's own formatting)


def _attrs(attrs: Mapping[str, Any]) -> str | None:
    """``django/forms/attrs.html``; None for a value the quick path does not know
    (the template then decides)."""
    parts = []
    for name, value in attrs.items():
        if value is False:
            continue
        if value is True:
            parts.append(f" {esc(name)}")
        elif isinstance(value, str | int | float | Promise):
            parts.append(f' {esc(name)}="{_text(value)}"')
        else:
            return None
    return "".join(parts)


def _input(context: Mapping[str, Any]) -> str | None:
    """``django/forms/widgets/input.html`` (and the one-line templates that only
    include it)."""
    widget = context["widget"]
    value = widget["value"]
    if value is not None and not isinstance(value, str | int | float):
        return None
    attrs = _attrs(widget["attrs"])
    if attrs is None:
        return None
    shown = "" if value is None else f' value="{_text(value)}"'
    return f'<input type="{esc(widget["type"])}" name="{esc(widget["name"])}"{shown}{attrs}>'


def _clearable_file(context: Mapping[str, Any]) -> str | None:
    """``django/forms/widgets/clearable_file_input.html`` without a current file."""
    widget = context["widget"]
    if widget.get("is_initial"):
        return None
    return _input(context)


def _option(context: Mapping[str, Any]) -> str | None:
    """``django/forms/widgets/input_option.html`` (a checkbox or radio choice)."""
    option = context["widget"]
    html = _input(context)
    if html is None or not option["wrap_label"]:
        return html
    id_ = option["attrs"].get("id")
    where = f' for="{esc(id_)}"' if id_ else ""
    return f"<label{where}>{html} {esc(option['label'])}</label>"


def _multiple_input(context: Mapping[str, Any]) -> str | None:
    """``django/forms/widgets/multiple_input.html`` (checkboxes or radio buttons)
    whose options' templates are ``input_option.html``'s."""
    widget = context["widget"]
    id_ = widget["attrs"].get("id")
    css = widget["attrs"].get("class")
    parts = [
        "<div",
        f' id="{esc(id_)}"' if id_ else "",
        f' class="{esc(css)}"' if css else "",
        ">",
    ]
    for group, options, _index in widget["optgroups"]:
        if group:
            parts.append(f"\n  <div><label>{esc(group)}</label>")
        for option in options:
            if option["template_name"] not in _OPTIONS:  # another widget's own
                return None
            html = _option({"widget": option})
            if html is None:
                return None
            parts.append(f"<div>\n    {html}\n</div>")
        if group:
            parts.append("\n  </div>")
    parts.append("\n</div>")
    return "".join(parts)


def _label(context: Mapping[str, Any]) -> str | None:
    """``django/forms/label.html``."""
    label = esc(context["label"])
    if not context["use_tag"]:
        return str(label)
    attrs = _attrs(context["attrs"] or {})
    if attrs is None:
        return None
    tag = esc(context["tag"])
    return f"<{tag}{attrs}>{label}</{tag}>"


def _error_list(context: Mapping[str, Any]) -> str | None:
    """``django/forms/errors/list/default.html`` when there is no error."""
    return "" if not context["errors"] else None


def _field_group(context: Mapping[str, Any]) -> str | None:
    """``forms/field.html``: the portal's wrapper around Django's
    ``django/forms/field.html``, for a field that is not a field set."""
    field = context["field"]
    errors = field.errors
    classes = "field"
    if field.widget_type == "checkbox":
        classes += " field-check"
    if errors:
        classes += " field-invalid"
    help_text = ""
    if field.help_text:
        auto_id = field.auto_id
        where = f' id="{esc(auto_id)}_helptext"' if auto_id else ""
        help_text = f'<div class="helptext"{where}>{field.help_text}</div>'
    if field.use_fieldset:
        described = field.aria_describedby
        described = f' aria-describedby="{esc(described)}"' if described else ""
        legend = field.legend_tag() if field.label else ""
        start, label, end = f"<fieldset{described}>\n", legend, "</fieldset>"
    else:
        start, label, end = "", field.label_tag() if field.label else "", ""
    return (
        f'<div class="{classes}">\n{start}{label}\n{help_text}\n'
        f"{esc(errors)}\n{esc(field)}{end}\n</div>"
    )


# The option templates ``_multiple_input`` knows.
_OPTIONS = ("django/forms/widgets/checkbox_option.html", "django/forms/widgets/radio_option.html")
_INPUTS = ("text", "email", "password", "hidden", "number", "url", "tel", "search", "date")
_W = "django/forms/widgets/"
_INPUT = (f"{_W}input.html", f"{_W}attrs.html")
_CHOICES = (f"{_W}multiple_input.html", f"{_W}input_option.html", *_OPTIONS, *_INPUT)

Writer = Callable[[Mapping[str, Any]], str | None]
# Template name -> the writer that copies it, and every template its markup comes
# from (itself and what it includes): the quick path is taken only while each of
# them is the copied one, Django's or ours.
QUICK: dict[str, tuple[Writer, tuple[Path, ...]]] = {
    **{
        f"{_W}{name}.html": (
            _input,
            tuple(_DJANGO_FORMS / t for t in (f"{_W}{name}.html", *_INPUT)),
        )
        for name in (*_INPUTS, "input", "file")
    },
    f"{_W}clearable_file_input.html": (
        _clearable_file,
        tuple(_DJANGO_FORMS / t for t in (f"{_W}clearable_file_input.html", *_INPUT)),
    ),
    f"{_W}checkbox_select.html": (
        _multiple_input,
        tuple(_DJANGO_FORMS / t for t in (f"{_W}checkbox_select.html", *_CHOICES)),
    ),
    f"{_W}radio.html": (
        _multiple_input,
        tuple(_DJANGO_FORMS / t for t in (f"{_W}radio.html", *_CHOICES)),
    ),
    "django/forms/label.html": (
        _label,
        (_DJANGO_FORMS / "django/forms/label.html", _DJANGO_FORMS / "django/forms/attrs.html"),
    ),
    "django/forms/errors/list/default.html": (
        _error_list,
        (
            _DJANGO_FORMS / "django/forms/errors/list/default.html",
            _DJANGO_FORMS / "django/forms/errors/list/ul.html",
        ),
    ),
    FIELD_TEMPLATE: (
        _field_group,
        (_OURS / FIELD_TEMPLATE, _DJANGO_FORMS / "django/forms/field.html"),
    ),
}


def _in_use(path: Path, folder: Path) -> bool:
    """Whether the loader finds ``path`` for its name (relative to ``folder``)."""
    name = path.relative_to(folder).as_posix()
    try:
        origin = get_template(name).origin.name  # type: ignore[attr-defined]
    except TemplateDoesNotExist:
        return False
    return Path(origin) == path


class PortalFormRenderer(TemplatesSetting):
    field_template_name = FIELD_TEMPLATE

    def __init__(self) -> None:
        super().__init__()
        # Template name -> the quick writer, or None once the template in use is
        # found not to be the one the writer copies (overridden, or missing).
        self._quick: dict[str, Writer | None] = {}

    def _writer(self, template_name: str) -> Writer | None:
        try:
            return self._quick[template_name]
        except KeyError:
            pass
        writer = None
        entry = QUICK.get(template_name)
        if entry is not None:
            candidate, sources = entry
            if all(
                _in_use(path, _OURS if path.is_relative_to(_OURS) else _DJANGO_FORMS)
                for path in sources
            ):
                writer = candidate
        self._quick[template_name] = writer
        return writer

    def render(self, template_name: str, context: Any, request: Any = None) -> str:
        writer = self._writer(template_name)
        if writer is not None and request is None:
            html = writer(context)
            if html is not None:
                return html
        return super().render(template_name, context, request=request)
