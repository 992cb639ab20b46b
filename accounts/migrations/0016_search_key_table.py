from django.db import migrations

# PostgreSQL only: a table of the keys in search_text, one row per key of each user
# with the user's date_joined, under a B-tree on (key, date_joined, user_id)
# (accounts.user_search, "The key table"). A search's first matches in date order then
# come from that index alone, without reading every matching user's row as the GIN
# index needs. Triggers keep it as accounts_user is written, whatever writes it (the
# ORM, COPY, an UPDATE, a TRUNCATE).
TABLE = """
CREATE TABLE accounts_search_key (
    user_id bigint NOT NULL,
    date_joined timestamp with time zone NOT NULL,
    key text NOT NULL
)
"""

# The keys of a search_text, as the GIN index reads them (accounts_user_search_keys).
SPLIT = """
CREATE FUNCTION accounts_search_key_split(search_text text) RETURNS SETOF text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT DISTINCT key FROM unnest(string_to_array(search_text, E'\\n')) AS key
    WHERE key <> ''
$$
"""

TRIGGERS = [
    # Inserts: one statement for all the rows (a COPY of 20 000 users is one INSERT).
    """
    CREATE FUNCTION accounts_search_key_insert() RETURNS trigger
    LANGUAGE plpgsql AS $$
    BEGIN
        INSERT INTO accounts_search_key (user_id, date_joined, key)
        SELECT u.id, u.date_joined, k.key
        FROM inserted_users AS u, accounts_search_key_split(u.search_text) AS k(key);
        RETURN NULL;
    END
    $$
    """,
    """
    CREATE TRIGGER accounts_search_key_insert AFTER INSERT ON accounts_user
    REFERENCING NEW TABLE AS inserted_users
    FOR EACH STATEMENT EXECUTE FUNCTION accounts_search_key_insert()
    """,
    # Updates: only the rows whose keys or date changed (a sign-in's last_login does not
    # fire it).
    """
    CREATE FUNCTION accounts_search_key_update() RETURNS trigger
    LANGUAGE plpgsql AS $$
    BEGIN
        DELETE FROM accounts_search_key WHERE user_id = OLD.id;
        INSERT INTO accounts_search_key (user_id, date_joined, key)
        SELECT NEW.id, NEW.date_joined, k.key
        FROM accounts_search_key_split(NEW.search_text) AS k(key);
        RETURN NULL;
    END
    $$
    """,
    """
    CREATE TRIGGER accounts_search_key_update
    AFTER UPDATE OF id, date_joined, search_text ON accounts_user
    FOR EACH ROW WHEN (
        OLD.id IS DISTINCT FROM NEW.id
        OR OLD.date_joined IS DISTINCT FROM NEW.date_joined
        OR OLD.search_text IS DISTINCT FROM NEW.search_text
    )
    EXECUTE FUNCTION accounts_search_key_update()
    """,
    """
    CREATE FUNCTION accounts_search_key_delete() RETURNS trigger
    LANGUAGE plpgsql AS $$
    BEGIN
        DELETE FROM accounts_search_key WHERE user_id IN (SELECT id FROM deleted_users);
        RETURN NULL;
    END
    $$
    """,
    """
    CREATE TRIGGER accounts_search_key_delete AFTER DELETE ON accounts_user
    REFERENCING OLD TABLE AS deleted_users
    FOR EACH STATEMENT EXECUTE FUNCTION accounts_search_key_delete()
    """,
    # No foreign key (it would forbid TRUNCATE accounts_user, as Django's flush runs it):
    # a TRUNCATE empties the table too.
    """
    CREATE FUNCTION accounts_search_key_truncate() RETURNS trigger
    LANGUAGE plpgsql AS $$
    BEGIN
        TRUNCATE accounts_search_key;
        RETURN NULL;
    END
    $$
    """,
    """
    CREATE TRIGGER accounts_search_key_truncate AFTER TRUNCATE ON accounts_user
    FOR EACH STATEMENT EXECUTE FUNCTION accounts_search_key_truncate()
    """,
]

FILL = """
INSERT INTO accounts_search_key (user_id, date_joined, key)
SELECT u.id, u.date_joined, k.key
FROM accounts_user AS u, accounts_search_key_split(u.search_text) AS k(key)
"""

# Built once the table is filled. The key index finds the keys that start with a
# phrase (``key ^@ phrase``) and each key's users in date order, with their ids (an
# index-only scan); the user index serves the triggers.
INDEXES = [
    "CREATE INDEX accounts_search_key_prefix ON accounts_search_key "
    "(key text_pattern_ops, date_joined, user_id)",
    "CREATE INDEX accounts_search_key_user ON accounts_search_key (user_id)",
    "ANALYZE accounts_search_key",
]

DROP = [
    "DROP TRIGGER IF EXISTS accounts_search_key_insert ON accounts_user",
    "DROP TRIGGER IF EXISTS accounts_search_key_update ON accounts_user",
    "DROP TRIGGER IF EXISTS accounts_search_key_delete ON accounts_user",
    "DROP TRIGGER IF EXISTS accounts_search_key_truncate ON accounts_user",
    "DROP FUNCTION IF EXISTS accounts_search_key_insert()",
    "DROP FUNCTION IF EXISTS accounts_search_key_update()",
    "DROP FUNCTION IF EXISTS accounts_search_key_delete()",
    "DROP FUNCTION IF EXISTS accounts_search_key_truncate()",
    "DROP TABLE IF EXISTS accounts_search_key",
    "DROP FUNCTION IF EXISTS accounts_search_key_split(text)",
]


def create_key_table(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(TABLE)
    schema_editor.execute(SPLIT)
    # The triggers first: creating them locks accounts_user against writes until the
    # migration commits, so the fill below misses no row.
    for statement in TRIGGERS:
        schema_editor.execute(statement)
    schema_editor.execute(FILL)
    for statement in INDEXES:
        schema_editor.execute(statement)


def drop_key_table(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for statement in DROP:
        schema_editor.execute(statement)


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0015_oauth_app_roles"),
    ]

    operations = [
        migrations.RunPython(create_key_table, drop_key_table),
    ]
