from django.contrib.auth.management import create_permissions
from django.db import migrations

# Operators register OAuth apps (and machine clients, within the permissions they
# hold themselves: accounts.flows.oauth_apps); security admins see them.
ROLES = {
    "Operators": ["add_client", "change_client", "delete_client", "view_client"],
    "Security admins": ["view_client"],
}


def roles(apps, schema_editor):
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for name, codenames in ROLES.items():
        group, _created = Group.objects.get_or_create(name=name)
        group.permissions.add(
            *Permission.objects.filter(
                content_type__app_label="allauth_idp_oidc", codename__in=codenames
            )
        )


def remove_roles(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for name, codenames in ROLES.items():
        group = Group.objects.filter(name=name).first()
        if group is not None:
            group.permissions.remove(
                *Permission.objects.filter(
                    content_type__app_label="allauth_idp_oidc", codename__in=codenames
                )
            )


class Migration(migrations.Migration):
    dependencies = [("accounts", "0014_oauth_apps")]

    operations = [migrations.RunPython(roles, remove_roles)]
