import accounts.user_search
from django.db import migrations, models

# 0008's trigram indexes, one per searched column ("contains" searches): replaced by
# one index of the keys in search_text (searches by beginnings, accounts.user_search).
OLD_TRIGRAM_COLUMNS = ["username", "email", "display_name", "phone"]
BATCH = 5000


def drop_column_trigram_indexes(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for column in OLD_TRIGRAM_COLUMNS:
        schema_editor.execute(f"DROP INDEX IF EXISTS accounts_user_{column}_trgm")


def create_column_trigram_indexes(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for column in OLD_TRIGRAM_COLUMNS:
        schema_editor.execute(
            f"CREATE INDEX IF NOT EXISTS accounts_user_{column}_trgm ON accounts_user "
            f"USING gin (UPPER({column}::text) gin_trgm_ops)"
        )


def fill_search_text(apps, schema_editor):
    """Every user's search text, computed as ``User.save`` does, a batch of rows at
    a time (one UPDATE per batch on PostgreSQL)."""
    from accounts.user_search import SEARCHED_FIELDS, search_text_from

    User = apps.get_model("accounts", "User")
    connection = schema_editor.connection
    table = schema_editor.quote_name(User._meta.db_table)
    last = 0
    while True:
        rows = list(
            User.objects.filter(pk__gt=last)
            .order_by("pk")
            .values_list("pk", *SEARCHED_FIELDS)[:BATCH]
        )
        if not rows:
            return
        last = rows[-1][0]
        ids = [row[0] for row in rows]
        texts = [search_text_from(row[1:]) for row in rows]
        with connection.cursor() as cursor:
            if connection.vendor == "postgresql":
                cursor.execute(
                    f"UPDATE {table} AS u SET search_text = v.text "
                    "FROM unnest(%s::bigint[], %s::text[]) AS v(id, text) WHERE u.id = v.id",
                    [ids, texts],
                )
            else:
                cursor.executemany(
                    f"UPDATE {table} SET search_text = %s WHERE id = %s", list(zip(texts, ids))
                )


# The keys of search_text as a tsvector (accounts.user_search.SEARCH_KEYS_SQL): a
# prefix query reads only the keys that start with the search.
KEYS_INDEX = (
    "CREATE INDEX IF NOT EXISTS accounts_user_search_keys ON accounts_user USING gin "
    "(array_to_tsvector(array_remove(string_to_array(search_text, E'\\n'), '')))"
)


def create_search_keys_index(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(KEYS_INDEX)


def drop_search_keys_index(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute("DROP INDEX IF EXISTS accounts_user_search_keys")


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0012_impersonation_tickets"),
    ]

    operations = [
        # Dropped first: the backfill then writes no entry into them.
        migrations.RunPython(drop_column_trigram_indexes, create_column_trigram_indexes),
        migrations.RemoveIndex(model_name="user", name="accounts_user_joined_desc"),
        migrations.AddField(
            model_name="user",
            name="search_text",
            field=accounts.user_search.SearchTextField(blank=True, default="", editable=False),
        ),
        migrations.RunPython(fill_search_text, migrations.RunPython.noop),
        # Built once the column is filled (faster than growing it row by row).
        migrations.RunPython(create_search_keys_index, drop_search_keys_index),
        migrations.AddIndex(
            model_name="user",
            index=models.Index(fields=["-date_joined", "-id"], name="accounts_user_joined_id"),
        ),
    ]
