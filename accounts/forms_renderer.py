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

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import django
from django.conf import settings
from django.forms.renderers import TemplatesSetting
from django.template import TemplateDoesNotExist
from django.template.loader import get_template
from django.utils.functional import Promise
from django.utils.html import conditional_escape, escape
from django.utils.safestring import SafeData

FIELD_TEMPLATE = "forms/field.html"

_DJANGO_FORMS = Path(django.__file__).parent / "forms" / "templates"
_OURS = Path(settings.BASE_DIR) / "templates"


def _text(value: Any) -> str:
    """``{{ value|stringformat:'s' }}`` in an autoescaped template."""
    if isinstance(value, SafeData):
        return str(value)
    return escape("%s" % value)  # noqa: UP031 (the filter's own formatting)


def _attrs(attrs: Mapping[str, Any]) -> str | None:
    """``django/forms/attrs.html``; None for a value the quick path does not know
    (the template then decides)."""
    parts = []
    for name, value in attrs.items():
        if value is False:
            continue
        if value is True:
            parts.append(f" {conditional_escape(name)}")
        elif isinstance(value, str | int | float | Promise):
            parts.append(f' {conditional_escape(name)}="{_text(value)}"')
        else:
            return None
    return "".join(parts)


def _input(context: Mapping[str, Any]) -> str | None:
    """``django/forms/widgets/input.html`` (and the one-line templates that only
    include it)."""
    widget = context["widget"]
    value = widget["value"]
    if value is not None and not isinstance(value, str):
        return None
    attrs = _attrs(widget["attrs"])
    if attrs is None:
        return None
    shown = "" if value is None else f' value="{_text(value)}"'
    return (
        f'<input type="{conditional_escape(widget["type"])}" '
        f'name="{conditional_escape(widget["name"])}"{shown}{attrs}>'
    )


def _clearable_file(context: Mapping[str, Any]) -> str | None:
    """``django/forms/widgets/clearable_file_input.html`` without a current file."""
    widget = context["widget"]
    if widget.get("is_initial"):
        return None
    return _input(context)


def _label(context: Mapping[str, Any]) -> str | None:
    """``django/forms/label.html``."""
    label = conditional_escape(context["label"])
    if not context["use_tag"]:
        return str(label)
    attrs = _attrs(context["attrs"] or {})
    if attrs is None:
        return None
    tag = conditional_escape(context["tag"])
    return f"<{tag}{attrs}>{label}</{tag}>"


def _error_list(context: Mapping[str, Any]) -> str | None:
    """``django/forms/errors/list/default.html`` when there is no error."""
    return "" if not context["errors"] else None


def _field_group(context: Mapping[str, Any]) -> str | None:
    """``forms/field.html``: the portal's wrapper around Django's
    ``django/forms/field.html``, for a field that is not a field set."""
    field = context["field"]
    if field.use_fieldset:
        return None
    errors = field.errors
    classes = "field"
    if field.widget_type == "checkbox":
        classes += " field-check"
    if errors:
        classes += " field-invalid"
    label = field.label_tag() if field.label else ""
    help_text = ""
    if field.help_text:
        auto_id = field.auto_id
        where = f' id="{conditional_escape(auto_id)}_helptext"' if auto_id else ""
        help_text = f'<div class="helptext"{where}>{field.help_text}</div>'
    return (
        f'<div class="{classes}">\n{label}\n{help_text}\n'
        f"{conditional_escape(errors)}\n{conditional_escape(field)}\n</div>"
    )


_INPUTS = ("text", "email", "password", "hidden", "number", "url", "tel", "search")
QUICK: dict[str, tuple[Path, Callable[[Mapping[str, Any]], str | None]]] = {
    **{f"django/forms/widgets/{name}.html": (_DJANGO_FORMS, _input) for name in _INPUTS},
    "django/forms/widgets/input.html": (_DJANGO_FORMS, _input),
    "django/forms/widgets/date.html": (_DJANGO_FORMS, _input),
    "django/forms/widgets/file.html": (_DJANGO_FORMS, _input),
    "django/forms/widgets/clearable_file_input.html": (_DJANGO_FORMS, _clearable_file),
    "django/forms/label.html": (_DJANGO_FORMS, _label),
    "django/forms/errors/list/default.html": (_DJANGO_FORMS, _error_list),
    FIELD_TEMPLATE: (_OURS, _field_group),
}


class PortalFormRenderer(TemplatesSetting):
    field_template_name = FIELD_TEMPLATE

    def __init__(self) -> None:
        super().__init__()
        # Template name -> the quick writer, or None once the template in use is
        # found not to be the one the writer copies (overridden, or missing).
        self._quick: dict[str, Callable[[Mapping[str, Any]], str | None] | None] = {}

    def _writer(self, template_name: str) -> Callable[[Mapping[str, Any]], str | None] | None:
        try:
            return self._quick[template_name]
        except KeyError:
            pass
        writer = None
        entry = QUICK.get(template_name)
        if entry is not None:
            folder, candidate = entry
            try:
                origin = get_template(template_name).origin.name  # type: ignore[attr-defined]
            except TemplateDoesNotExist:
                origin = None
            if origin is not None and Path(origin) == folder / template_name:
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
