"""What the user list's search compares: the beginnings of a user's fields.

A search is one phrase (``Emma Moreau``, ``seed-00042``, ``+3361234``,
``alice@exa``). It finds the users with a *key* that starts with it, ignoring case
(Unicode case folding, compatibility forms: ``STRASSE`` finds ``Straße``), or whose
id it is. A user's keys are:

- the username, the email address, the display name, the given and the family
  name, and each of them from any later word on (``moreau`` in ``Emma Moreau``,
  ``pierre dupont`` in ``Jean-Pierre Dupont``, ``moreau.42@example.org`` and
  ``example.org`` in ``emma.moreau.42@example.org``); a word starts with a letter;
- the given and family names together, in both orders (``emma moreau``,
  ``moreau emma``);
- the phone number as stored (``+33612345678``), without its ``+``
  (``33612345678``), and in its country's national forms (``0612345678``,
  ``612345678``).

Why beginnings and not "contains anywhere": a beginning is found in an index by a
range of sorted keys, whose size is the number of users it finds. "Contains"
needs trigram indexes, and at a million users a common name or a number shared
by many rows (``+336``, ``seed-``) makes them read hundreds of thousands of
entries for a handful of rows (see the README, "At scale").

The keys are stored, one per line, in ``User.search_text`` (derived, never
edited): ``SearchTextField.pre_save`` computes them whenever the ORM writes the
row (``save``, ``create``, ``bulk_create``) and ``User.save`` adds the column to
``update_fields`` when one of ``SEARCHED_FIELDS`` is saved. Anything writing those
columns around the ORM (``seed_users``'s COPY, a ``QuerySet.update``) must store
``search_text_from`` too. PostgreSQL answers from a GIN index over the keys as a
``tsvector`` (a prefix query ``'phrase':*`` reads the matching keys only); other
databases compare the stored text with ``LIKE '%<newline>phrase%'``, which is the
same test: a key starts with the phrase.

The key table (PostgreSQL, migration 0016): ``accounts_search_key`` holds one row
per key of each user with the user's ``date_joined``, under a B-tree on (key,
date_joined, user_id). The GIN index gives only where the matching rows are, so a
page in date order read every match's row for its date (thousands for a common full
name among a million users); the B-tree gives each key's users in date order from
the index alone, so a page reads only its own entries
(``accounts.selectors.users.search_ids``). Triggers on ``accounts_user`` keep the
table as the rows are written, whatever writes them (the ORM, ``COPY``, an
``UPDATE``, ``TRUNCATE``); they split ``search_text`` as the GIN index's expression
does, and ``key ^@ phrase`` is the same test again.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from typing import Any

import phonenumbers
from django.db import models

# The fields the keys come from, in the order ``search_text_from`` takes them.
SEARCHED_FIELDS = ("username", "email", "phone", "display_name", "first_name", "last_name")
SEPARATOR = "\n"
# No key is longer (the longest field, an email address, has 254 characters; the
# two names together 301): a longer search cannot find anyone.
MAX_PHRASE_LENGTH = 320
_SPACES = re.compile(r"\s+")


def fold(value: str) -> str:
    """``value`` as the search compares it: compatibility forms and case folded
    (full-width letters, ligatures, ß and ss), spaces (line breaks included)
    made single, NUL dropped (PostgreSQL cannot store it)."""
    value = unicodedata.normalize("NFKC", value or "").casefold()
    value = unicodedata.normalize("NFKC", value).replace("\x00", "")
    return _SPACES.sub(" ", value).strip()


def _from_each_word(value: str) -> list[str]:
    """``value``, then ``value`` from each later word on: a letter after a
    character that is neither a letter nor a digit (not from a number: the
    ``0004242`` of ``seed-0004242`` or the ``42@…`` of an address would make a
    key per user and little sense)."""
    keys = [value]
    for i in range(1, len(value)):
        if value[i].isalpha() and not value[i - 1].isalnum():
            keys.append(value[i:])
    return keys


def _phone_keys(phone: str) -> list[str]:
    keys = [phone, phone.removeprefix("+")]
    try:
        number = phonenumbers.parse(phone, None)
    except phonenumbers.NumberParseException:
        return keys
    national = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.NATIONAL)
    keys.append("".join(c for c in national if c.isdigit()))
    keys.append(phonenumbers.national_significant_number(number))
    return keys


def search_keys(
    username: str | None,
    email: str | None,
    phone: str | None,
    display_name: str | None,
    first_name: str | None,
    last_name: str | None,
) -> list[str]:
    """A user's keys (see the module's docstring), each once, none empty."""
    keys: list[str] = []
    for value in (username, email, display_name, first_name, last_name):
        folded = fold(value or "")
        if folded:
            keys += _from_each_word(folded)
    given, family = fold(first_name or ""), fold(last_name or "")
    if given and family:
        keys += [f"{given} {family}", f"{family} {given}"]
    number = fold(phone or "")
    if number:
        keys += _phone_keys(number)
    return [key for key in dict.fromkeys(keys) if key]


def search_text_from(values: Iterable[str | None]) -> str:
    """The stored text of the values of ``SEARCHED_FIELDS`` (in that order): the
    keys, each on its own line, the first one too ("" without keys)."""
    keys = search_keys(*values)
    return "".join(SEPARATOR + key for key in keys) + SEPARATOR if keys else ""


def user_search_text(user: Any) -> str:
    """The stored search text of ``user`` (any object with ``SEARCHED_FIELDS``)."""
    return search_text_from(getattr(user, name, "") for name in SEARCHED_FIELDS)


def search_phrase(search: str) -> str:
    """The phrase a search looks for: folded, quotes around the whole of it (the
    Django admin's habit) dropped."""
    search = (search or "").strip()
    if len(search) >= 2 and search[0] == search[-1] and search[0] in "\"'":
        search = search[1:-1]
    return fold(search)


def tsquery_prefix(phrase: str) -> str:
    """A PostgreSQL ``tsquery`` matching the lexemes that start with ``phrase``
    (quoted: the phrase's spaces and operators are plain characters)."""
    return "'" + phrase.replace("\\", "\\\\").replace("'", "''") + "':*"


# PostgreSQL's table of the keys (user_id, date_joined, key): see above.
KEY_TABLE = "accounts_search_key"
# The keys of a ``search_text`` column as a tsvector, on PostgreSQL: the expression
# of the GIN index ``accounts_user_search_keys`` (migration 0011), which a query
# uses only when it writes the very same expression.
SEARCH_KEYS_SQL = "array_to_tsvector(array_remove(string_to_array({column}, E'\\n'), ''))"


class KeyStartsWith(models.Expression):
    """True for the rows with a key (a line of ``search_text``) that starts with
    ``phrase``, a folded ``search_phrase``."""

    conditional = True
    output_field = models.BooleanField()

    def __init__(self, phrase: str, column: str = "search_text") -> None:
        super().__init__()
        self.phrase = phrase
        self.column: Any = models.F(column)

    def get_source_expressions(self) -> list[Any]:
        return [self.column]

    def set_source_expressions(self, exprs: Sequence[Any]) -> None:
        (self.column,) = exprs

    def as_sql(self, compiler: Any, connection: Any) -> Any:
        column, params = compiler.compile(self.column)
        pattern = "%" + SEPARATOR + connection.ops.prep_for_like_query(self.phrase) + "%"
        return f"{column} LIKE %s ESCAPE '\\'", (*params, pattern)

    def as_postgresql(self, compiler: Any, connection: Any) -> Any:
        column, params = compiler.compile(self.column)
        keys = SEARCH_KEYS_SQL.format(column=column)
        return f"{keys} @@ %s::tsquery", (*params, tsquery_prefix(self.phrase))


class SearchTextField(models.TextField):
    """A text derived from the model's ``SEARCHED_FIELDS`` each time the ORM
    writes it (an insert, a full save, or a save whose ``update_fields`` name it)."""

    def pre_save(self, model_instance: models.Model, add: bool) -> str:
        value = user_search_text(model_instance)
        setattr(model_instance, self.attname, value)
        return value
