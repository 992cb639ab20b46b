from django.forms.renderers import TemplatesSetting


class PortalFormRenderer(TemplatesSetting):
    """Django's accessible field group (label, help text, errors tied by
    aria-describedby) wrapped in the portal's field markup."""

    field_template_name = "forms/field.html"
