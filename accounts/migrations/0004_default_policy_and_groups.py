from django.contrib.auth.management import create_permissions
from django.db import migrations

GROUPS = {
    # Completed by the back-office (Support: users, suspension, sessions, second
    # factors; Security admins: Support plus impersonation, purge, audit log).
    "Operators": ["view_accountpolicy", "change_accountpolicy"],
    "Support": [],
    "Security admins": [],
}


def forwards(apps, schema_editor):
    # Permissions are normally created after all migrations; the groups need them now.
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None

    AccountPolicy = apps.get_model("accounts", "AccountPolicy")
    AccountPolicy.objects.get_or_create(pk=1)

    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for name, codenames in GROUPS.items():
        group, _created = Group.objects.get_or_create(name=name)
        perms = Permission.objects.filter(content_type__app_label="accounts", codename__in=codenames)
        group.permissions.add(*perms)


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0003_policy_and_audit"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
