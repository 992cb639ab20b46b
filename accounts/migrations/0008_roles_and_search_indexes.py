from django.contrib.auth.management import create_permissions
from django.db import migrations

SUPPORT = [
    "view_user",
    "suspend_user",
    "end_user_sessions",
    "reset_user_mfa",
]
ROLES = {
    "Support": SUPPORT,
    "Security admins": [
        *SUPPORT,
        "schedule_user_deletion",
        "purge_user",
        "impersonate_user",
        "view_auditevent",
    ],
    "Operators": ["view_accountpolicy", "change_accountpolicy"],
}

# The back-office searches "contains" across these columns (Django admin's
# UPPER(col) LIKE UPPER('%q%')); trigram indexes serve that on PostgreSQL.
TRIGRAM_COLUMNS = ["username", "email", "display_name", "phone"]


def roles(apps, schema_editor):
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for name, codenames in ROLES.items():
        group, _created = Group.objects.get_or_create(name=name)
        group.permissions.set(
            Permission.objects.filter(content_type__app_label="accounts", codename__in=codenames)
        )


def trigram_indexes(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    for column in TRIGRAM_COLUMNS:
        schema_editor.execute(
            f"CREATE INDEX IF NOT EXISTS accounts_user_{column}_trgm ON accounts_user "
            f"USING gin (UPPER({column}::text) gin_trgm_ops)"
        )


def drop_trigram_indexes(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for column in TRIGRAM_COLUMNS:
        schema_editor.execute(f"DROP INDEX IF EXISTS accounts_user_{column}_trgm")


class Migration(migrations.Migration):
    dependencies = [("accounts", "0007_backoffice")]

    operations = [
        migrations.RunPython(roles, migrations.RunPython.noop),
        migrations.RunPython(trigram_indexes, drop_trigram_indexes),
    ]
