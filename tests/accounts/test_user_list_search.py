"""The shared user list (``accounts.selectors.users``): what a search finds, on
whatever database runs the tests (one folded search text per user, so SQLite and
PostgreSQL answer the same), the filters and orders the Management API needs, and
keyset pages. The back-office's list uses the same search."""

from __future__ import annotations

import io
import re
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.actor import Actor
from accounts.admin.lists import CappedIdsPaginator
from accounts.models import User
from accounts.selectors import users as selectors
from accounts.selectors.users import (
    MAX_KEYS,
    USER_ORDERINGS,
    ids_in_order,
    search_ids,
    user_list,
    user_page,
    users_search,
)
from accounts.services.email import email_apply
from accounts.services.moderation import user_suspend
from accounts.services.phone import phone_apply, phone_remove
from accounts.services.profile import profile_update, username_change
from accounts.user_search import (
    MAX_PHRASE_LENGTH,
    fold,
    search_keys,
    search_phrase,
    user_search_text,
)
from tests.conftest import staff_signed_in

pytestmark = pytest.mark.django_db

LIST = "/admin/accounts/user/"


def found(search: str) -> set[str]:
    return {u.username for u in user_list(search=search)}


@pytest.fixture
def people(user_factory: Callable[..., User]) -> dict[str, User]:
    return {
        "alice": user_factory(
            username="alice",
            email="alice@example.org",
            display_name="Alice Martin",
            first_name="Alice",
            last_name="Martin",
            phone="+33612345678",
        ),
        "bob": user_factory(
            username="bob",
            email="bob.stone@example.com",
            display_name="Bob Stone",
            first_name="Robert",
            last_name="Stone",
            phone="+33699999999",
        ),
        "céline": user_factory(
            username="céline",
            email="celine@example.net",
            display_name="Céline Straße",
            last_name="Straße",
        ),
        "under_score": user_factory(username="under_score", email="u@example.net"),
    }


# --- What a search finds ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("search", "expected"),
    [
        # The beginning of each field, whatever the case.
        ("alice", {"alice"}),
        ("ALICE", {"alice"}),
        ("ali", {"alice"}),
        ("alice@exa", {"alice"}),
        ("bob.stone@example.com", {"bob"}),
        ("Bob Stone", {"bob"}),
        ("robert", {"bob"}),  # the given name
        ("ston", {"bob"}),  # the family name
        ("under_sc", {"under_score"}),
        # ... or from any word of a field on.
        ("martin", {"alice"}),  # the display name's second word
        ("stone@ex", {"bob"}),  # a word of the email address
        ("example.", {"alice", "bob", "céline", "under_score"}),  # the domains
        ("example.net", {"céline", "under_score"}),
        ("score", {"under_score"}),
        # The given and family names together, in both orders.
        ("Robert Stone", {"bob"}),
        ("stone rob", {"bob"}),
        ("Martin Alice", {"alice"}),
        # The phone number: as stored, without its +, national with or without 0.
        ("+33612345678", {"alice"}),
        ("+3361234", {"alice"}),
        ("336123", {"alice"}),
        ("0612345678", {"alice"}),
        ("06123", {"alice"}),
        ("612345", {"alice"}),
        # Not the middle of a word.
        ("lice", set()),
        ("tone", set()),
        ("2345678", set()),
        ("xample", set()),
        # One phrase: the words must follow each other in one key.
        ("alice 612", set()),
        ("martin stone", set()),
        ("Alice  Martin", {"alice"}),  # spaces count as one
        ('"alice martin"', {"alice"}),  # quotes around the whole search are dropped
        # Unicode case folding and compatibility forms, the same on every database.
        ("CÉLINE", {"céline"}),
        ("STRASSE", {"céline"}),
        ("straße", {"céline"}),
        ("céline STR", {"céline"}),
        ("ＡＬＩＣＥ", {"alice"}),  # full-width letters
        # LIKE's and tsquery's special characters are plain characters.
        ("under_", {"under_score"}),
        ("under%", set()),
        ("_", set()),
        ("%", set()),
        ("'", set()),
        ("\\", set()),
        ("alice:* | bob", set()),
        ("o'", set()),
        # Nothing matches across two fields.
        ("alice alice@", set()),
        # No search: everyone.
        ("", {"alice", "bob", "céline", "under_score"}),
        ("   ", {"alice", "bob", "céline", "under_score"}),
    ],
)
def test_what_a_search_finds(people: dict[str, User], search: str, expected: set[str]) -> None:
    assert found(search) == expected


def test_quotes_and_backslashes_in_a_name(user_factory: Callable[..., User]) -> None:
    user_factory(username="obrien", display_name="Seán O'Brien", email="o\\b@example.org")
    assert found("o'brien") == {"obrien"}
    assert found("seán o'b") == {"obrien"}
    assert found("brien") == {"obrien"}
    assert found("o\\b@") == {"obrien"}
    assert found("o\\") == {"obrien"}


def test_an_id_finds_its_user(people: dict[str, User], user_factory: Callable[..., User]) -> None:
    bob = people["bob"]
    numbered = user_factory(username=f"{bob.pk}-agent", email="agent@example.net")
    assert found(str(bob.pk)) == {"bob", numbered.username}
    # Only the whole id.
    assert "bob" not in found(f"{bob.pk}0000")
    # Too large for an id: a plain search (no error).
    assert found("9" * 30) == set()
    assert found("9" * (MAX_PHRASE_LENGTH + 1)) == set()


def test_the_keys(people: dict[str, User]) -> None:
    bob = User.objects.get(username="bob")
    assert bob.search_text.split("\n") == [
        "",
        "bob",
        "bob.stone@example.com",
        "stone@example.com",
        "example.com",
        "com",
        "bob stone",
        "stone",
        "robert",
        "robert stone",
        "stone robert",
        "+33699999999",
        "33699999999",
        "0699999999",
        "699999999",
        "",
    ]
    assert search_keys("x", "", "+999", "", "", "") == ["x", "+999", "999"]  # not a number
    assert user_search_text(User()) == ""
    assert fold("Ǆ\u2028ﬁ\x00  A") == "dž fi a"
    assert search_phrase(" 'Emma  Moreau' ") == "emma moreau"
    assert search_phrase('"') == '"'


@pytest.fixture
def support(user_factory: Callable[..., User]) -> Client:
    member = user_factory(username="agent", is_staff=True, email="agent@staff.test")
    member.groups.add(Group.objects.get(name="Support"))
    return staff_signed_in(member)


def test_admin_search_and_selector_agree(people: dict[str, User], support: Client) -> None:
    for search in ("robert", "CÉLINE", "example", str(people["bob"].pk), '"alice martin"'):
        response = support.get(LIST, {"q": search})
        assert response.status_code == 200
        listed = {u.username for u in response.context_data["cl"].result_list}
        assert listed == found(search), search


@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's index")
def test_postgresql_answers_a_search_from_the_keys_index(people: dict[str, User]) -> None:
    queryset = user_list(search="emma moreau")
    with connection.cursor() as cursor:
        # A few rows: make the planner show what it does with a million.
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("SET LOCAL enable_indexscan = off")
        sql, params = queryset.query.sql_with_params()
        cursor.execute("EXPLAIN " + sql, params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "accounts_user_search_keys" in plan, plan


# --- The search text follows every write -------------------------------------------------


def test_every_write_of_a_searched_field_updates_the_search_text(
    user_factory: Callable[..., User],
) -> None:
    user = user_factory(username="olduser", email="old@example.org")
    profile_update(ctx=None, user=user, changes={"display_name": "Zoé Nouveau"})
    assert found("nouveau") == {"olduser"}
    profile_update(ctx=None, user=user, changes={"first_name": "Prénom", "last_name": "Famille"})
    assert found("prénom famille") == {"olduser"}
    username_change(ctx=None, user=user, username="newuser")
    assert found("olduser") == set()
    assert found("newuser") == {"newuser"}
    email_apply(user=user, target="fresh@example.org")
    assert found("old@example") == set()
    assert found("fresh@example") == {"newuser"}
    phone_apply(user=user, target="+33611223344")
    assert found("611223344") == {"newuser"}
    phone_remove(ctx=Actor(user=user), user=user)
    assert found("611223344") == set()
    # A save of other fields leaves it as it is; a full save recomputes it.
    user.refresh_from_db()
    user.save(update_fields=["language"])
    user.display_name = "Autre"
    user.save()
    assert User.objects.get(pk=user.pk).search_text == user_search_text(user)


def test_bulk_created_and_seeded_users_have_their_search_text(db: Any) -> None:
    User.objects.bulk_create(
        [User(username="bulky", email="bulky@example.org", display_name="Bulk Person")]
    )
    assert found("bulk person") == {"bulky"}
    call_command("seed_users", count=3, stdout=io.StringIO())
    seeded = User.objects.filter(username__startswith="seed-")
    assert seeded.count() == 3
    for user in seeded:
        assert user.search_text == user_search_text(user)
    assert found("seed-0000001") == {"seed-0000001"}


# --- Filters, orders and keyset pages ----------------------------------------------------


def test_filters_combine_with_the_search(user_factory: Callable[..., User]) -> None:
    now = timezone.now()
    old = user_factory(username="old-moreau")
    User.objects.filter(pk=old.pk).update(date_joined=now - timedelta(days=400))
    fresh = user_factory(username="fresh-moreau")
    User.objects.filter(pk=fresh.pk).update(date_joined=now - timedelta(days=1))
    suspended = user_factory(username="suspended-moreau")
    user_suspend(ctx=None, user=suspended, reason="Spam")
    TOTPDevice.objects.create(user=fresh, name="Phone", confirmed=True)

    def names(**filters: Any) -> set[str]:
        return {u.username for u in user_list(search="moreau", **filters)}

    assert names() == {"old-moreau", "fresh-moreau", "suspended-moreau"}
    assert names(state="suspended") == {"suspended-moreau"}
    assert names(second_factor=True) == {"fresh-moreau"}
    assert names(second_factor=False) == {"old-moreau", "suspended-moreau"}
    assert names(joined_after=now - timedelta(days=30)) == {"fresh-moreau", "suspended-moreau"}
    # Strictly after.
    joined = User.objects.get(pk=fresh.pk).date_joined
    assert "fresh-moreau" not in names(joined_after=joined)
    assert "fresh-moreau" in names(joined_after=joined - timedelta(microseconds=1))
    assert all(u.has_second_factor == (u.pk == fresh.pk) for u in user_list(search="moreau"))


def _users_with_ties(count: int) -> list[User]:
    """``count`` users, three at a time joined at the same instant, their usernames
    in the reverse order of their joining, all named "Tie Breaker" (one key: on
    PostgreSQL the key table answers ``tie breaker``; ``tie`` starts more keys)."""
    start = timezone.now() - timedelta(days=10)
    User.objects.bulk_create(
        User(
            username=f"{'zyxwvutsrqponmlkjihgfedcba'[i]}-tie{i:02d}",
            email=f"tie{i}@example.org",
            display_name="Tie Breaker",
            password="!",
            date_joined=start + timedelta(hours=i // 3),
        )
        for i in range(count)
    )
    return list(User.objects.filter(username__contains="-tie"))


def _expected(users: list[User], ordering: str) -> list[int]:
    field, _ = USER_ORDERINGS[ordering]
    name = field.removeprefix("-")
    return [
        u.pk for u in sorted(users, key=lambda u: (getattr(u, name), u.pk), reverse=field[0] == "-")
    ]


@pytest.mark.parametrize("search", ["tie", "tie breaker"])
@pytest.mark.parametrize("ordering", sorted(USER_ORDERINGS))
def test_orders(db: Any, ordering: str, search: str) -> None:
    users = _users_with_ties(10)
    listed = [u.pk for u in user_list(search=search, ordering=ordering)]
    assert listed == _expected(users, ordering)


def test_an_unknown_ordering_is_refused(db: Any) -> None:
    with pytest.raises(ValueError, match="Unknown ordering"):
        user_list(ordering="password")
    with pytest.raises(ValueError, match="Unknown ordering"):
        user_page(User.objects.all(), ordering="?")
    with pytest.raises(ValueError, match="size"):
        user_page(User.objects.all(), size=0)


@pytest.mark.parametrize("ordering", sorted(USER_ORDERINGS))
@pytest.mark.parametrize("size", [1, 2, 3, 4, 50])
@pytest.mark.parametrize(("search", "budget"), [("", 1), ("tie", 2), ("tie breaker", 2)])
def test_keyset_pages_walk_the_whole_list_once_in_order(
    db: Any, ordering: str, size: int, search: str, budget: int, django_assert_num_queries: Any
) -> None:
    users = _users_with_ties(11)
    queryset = user_list(search=search, ordering=ordering)
    walked: list[int] = []
    after = None
    for _ in range(20):
        with django_assert_num_queries(budget):
            page = user_page(queryset, ordering=ordering, after=after, size=size)
        assert len(page.rows) <= size
        walked += [u.pk for u in page.rows]
        if page.next_after is None:
            break
        assert len(page.rows) == size
        after = page.next_after
    assert walked == _expected(users, ordering)


@pytest.mark.parametrize("search", ["tie", "tie breaker"])
@pytest.mark.parametrize("ordering", sorted(USER_ORDERINGS))
def test_keyset_pages_of_a_search_with_more_matches_than_the_cap(
    db: Any, ordering: str, search: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    users = _users_with_ties(11)
    monkeypatch.setattr("accounts.selectors.users.COUNT_CAP", 4)
    queryset = user_list(search=search, ordering=ordering)
    walked: list[int] = []
    after = None
    for _ in range(20):
        page = user_page(queryset, ordering=ordering, after=after, size=3)
        walked += [u.pk for u in page.rows]
        after = page.next_after
        if after is None:
            break
    assert walked == _expected(users, ordering)


def test_a_keyset_page_neither_repeats_nor_skips_when_rows_come_and_go(db: Any) -> None:
    users = _users_with_ties(9)
    queryset = user_list(search="tie")
    first = user_page(queryset, size=4)
    assert first.next_after is not None
    # A newer user (would shift an offset page) and the removal of a seen one.
    User.objects.create(username="newest-tie", email="newest@example.org")
    User.objects.filter(pk=first.rows[0].pk).delete()
    rest: list[int] = []
    after = first.next_after
    while after is not None:
        page = user_page(user_list(search="tie"), after=after, size=4)
        rest += [u.pk for u in page.rows]
        after = page.next_after
    assert [u.pk for u in first.rows] + rest == _expected(users, "-date_joined")


def test_the_next_cursor_is_the_last_rows_values(db: Any) -> None:
    _users_with_ties(5)
    page = user_page(user_list(ordering="username"), ordering="username", size=2)
    assert page.next_after == (page.rows[-1].username, page.rows[-1].pk)
    page = user_page(user_list(), size=2)
    assert page.next_after == (page.rows[-1].date_joined, page.rows[-1].pk)


# --- PostgreSQL's key table ---------------------------------------------------------------

postgresql_only = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="PostgreSQL's key table"
)


def _key_rows(user: User) -> set[tuple[str, Any]]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT key, date_joined FROM accounts_search_key WHERE user_id = %s", [user.pk]
        )
        return set(cursor.fetchall())


def _expected_key_rows(user: User) -> set[tuple[str, Any]]:
    user = User.objects.get(pk=user.pk)
    return {(key, user.date_joined) for key in user.search_text.split("\n") if key}


@postgresql_only
def test_the_key_table_follows_every_write(user_factory: Callable[..., User]) -> None:
    user = user_factory(username="keyed", display_name="Key Holder", phone="+33612345678")
    assert _key_rows(user) == _expected_key_rows(user)
    assert ("key holder", user.date_joined) in _key_rows(user)
    profile_update(ctx=None, user=user, changes={"display_name": "Renamed Person"})
    assert _key_rows(user) == _expected_key_rows(user)
    assert "key holder" not in {key for key, _ in _key_rows(user)}
    # Around the ORM: an UPDATE of the date, a bulk insert, COPY.
    User.objects.filter(pk=user.pk).update(date_joined=timezone.now() - timedelta(days=99))
    assert _key_rows(user) == _expected_key_rows(user)
    (bulky,) = User.objects.bulk_create([User(username="bulky", display_name="Bulk Person")])
    assert _key_rows(bulky) == _expected_key_rows(bulky)
    call_command("seed_users", count=2, stdout=io.StringIO())
    for seeded in User.objects.filter(username__startswith="seed-"):
        assert _key_rows(seeded)
        assert _key_rows(seeded) == _expected_key_rows(seeded)
    # A save that changes neither the keys nor the date leaves the rows alone.
    with connection.cursor() as cursor:
        ctids = "SELECT array_agg(ctid ORDER BY ctid) FROM accounts_search_key WHERE user_id = %s"
        cursor.execute(ctids, [user.pk])
        before = cursor.fetchone()[0]
        user.refresh_from_db()
        user.save()
        user.save(update_fields=["language"])
        cursor.execute(ctids, [user.pk])
        assert cursor.fetchone()[0] == before
    pk = user.pk
    user.delete()
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM accounts_search_key WHERE user_id = %s", [pk])
        assert cursor.fetchone()[0] == 0
    # Django's flush empties accounts_user with TRUNCATE (TransactionTestCase).
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # the test's transaction
        cursor.execute("TRUNCATE accounts_user CASCADE")
        cursor.execute("SELECT count(*) FROM accounts_search_key")
        assert cursor.fetchone()[0] == 0


@pytest.fixture
def namesakes(user_factory: Callable[..., User]) -> list[User]:
    """Users named alike (several joined at the same instant), a few variants of the
    name, and others."""
    start = timezone.now() - timedelta(days=30)
    users = []
    names = ["Emma Moreau"] * 9 + ["Emma Moreau-Durand", "Emma Morel", "Emmanuel Moreau"]
    for i, name in enumerate(names):
        first, last = name.split(" ", 1)
        users.append(
            user_factory(
                username=f"namesake{i}",
                display_name=name,
                first_name=first,
                last_name=last,
            )
        )
    users.append(user_factory(username="emmental", first_name="Emma", last_name="Ental"))
    # Two keys starting with "emma mor", one user.
    users.append(
        user_factory(
            username="twice", display_name="Emma Morel", first_name="Emma", last_name="Moreau"
        )
    )
    for i, user in enumerate(users):
        User.objects.filter(pk=user.pk).update(date_joined=start + timedelta(hours=i // 3))
    return list(User.objects.filter(pk__in=[u.pk for u in users]))


def _without_key_table(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(selectors, "search_ids", lambda *args, **kwargs: None)


@postgresql_only
@pytest.mark.parametrize("ordering", ["-date_joined", "date_joined"])
def test_the_key_table_finds_what_the_search_index_finds(
    namesakes: list[User], ordering: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    by_id = str(namesakes[4].pk)
    phrases = ["emma moreau", "EMMA MOREAU", "emma mor", "emma moreau-", "morel emma", "zzz", by_id]
    answered = {}
    for phrase in phrases:
        found = search_ids(user_list(search=phrase, ordering=ordering), limit=100, count=True)
        assert found is not None, phrase
        assert found.from_key_table, phrase
        answered[phrase] = (found.total, found.ids)
    # The search's own index, in the same order.
    _without_key_table(monkeypatch)
    for phrase in phrases:
        ids = ids_in_order(user_list(search=phrase, ordering=ordering))
        assert ids is not None
        assert answered[phrase] == (len(ids), ids), phrase
    assert answered["emma moreau"][0] == 11
    assert answered["emma mor"][0] == 12
    assert answered[by_id][0] == 1


@postgresql_only
def test_the_key_table_reads_a_page_and_leaves_other_searches_to_the_index(
    namesakes: list[User], monkeypatch: pytest.MonkeyPatch
) -> None:
    queryset = user_list(search="emma moreau")
    expected = _expected([u for u in namesakes if "emma moreau" in u.search_text], "-date_joined")
    # A page from an offset, or after a cursor; more than the cap: no ids.
    assert search_ids(queryset, offset=3, limit=4).ids == expected[3:7]
    cursor = User.objects.filter(pk=expected[2]).values_list("date_joined", "pk").get()
    assert search_ids(queryset, limit=4, after=cursor).ids == expected[3:7]
    # The count stops past the cap; the page is read all the same.
    capped = search_ids(queryset, limit=3, count=True, cap=4)
    assert capped == selectors.SearchIds(from_key_table=True, total=5, ids=expected[:3])
    # More distinct keys than MAX_KEYS start with "namesake" (every username): the
    # same query reads all the matches from the search's index instead.
    many = user_list(search="namesake")
    found = search_ids(many, limit=2, count=True)
    assert found is not None
    assert not found.from_key_table
    numbered = [u for u in namesakes if u.username.startswith("namesake")]
    assert found.ids == _expected(numbered, "-date_joined")
    assert found.total == 12 > MAX_KEYS
    assert search_ids(many, limit=2, cap=11).ids is None
    # Other conditions or orders than a search alone by date: not asked.
    assert search_ids(user_list(search="emma moreau", state="active"), limit=10) is None
    assert search_ids(user_list(search="emma moreau", ordering="username"), limit=10) is None
    # The first page of the Management API's list: one query for the ids, one for
    # the rows, the same rows as through the search's index.
    for search in ("emma moreau", "namesake"):
        queryset = user_list(search=search)
        with CaptureQueriesContext(connection) as queries:
            page = user_page(queryset, size=4)
        assert len(queries.captured_queries) == 2
        assert "accounts_search_key" in queries.captured_queries[0]["sql"]
        with monkeypatch.context() as patched:
            _without_key_table(patched)
            assert [u.pk for u in page.rows] == [u.pk for u in user_page(queryset, size=4).rows]


# --- The back-office's search pages --------------------------------------------------------


def _bulk_matching(count: int) -> None:
    now = timezone.now()
    User.objects.bulk_create(
        User(
            username=f"match{i:03d}",
            email=f"match{i}@example.org",
            display_name="Match Maker",
            password="!",
            date_joined=now - timedelta(minutes=i),
        )
        for i in range(count)
    )


@pytest.mark.parametrize("search", ["match", "match maker"])
def test_a_searchs_pages_in_the_back_office(
    support: Client, django_assert_max_num_queries: Any, search: str
) -> None:
    client = support
    _bulk_matching(60)
    client.get(LIST, {"q": search})
    pages = []
    for number in (1, 2):
        with django_assert_max_num_queries(8):
            response = client.get(LIST, {"q": search, "p": number})
        assert response.status_code == 200
        cl = response.context_data["cl"]
        assert cl.result_count == 60
        pages.append([u.username for u in cl.result_list])
    assert pages[0] == [f"match{i:03d}" for i in range(50)]
    assert pages[1] == [f"match{i:03d}" for i in range(50, 60)]
    # A search longer than any key finds no one (it was an error).
    response = client.get(LIST, {"q": "m" * (MAX_PHRASE_LENGTH + 1)})
    assert response.status_code == 200
    assert list(response.context_data["cl"].result_list) == []
    # Found by its id, as the selector finds it.
    target = User.objects.get(username="match007")
    response = client.get(LIST, {"q": str(target.pk)})
    assert target.username in {u.username for u in response.context_data["cl"].result_list}


@pytest.mark.parametrize("search", ["match", "match maker"])
@pytest.mark.parametrize("order", [("-date_joined", "-pk"), ("username", "pk")])
@pytest.mark.parametrize(("cap", "count"), [(4, 5), (7, 7), (50, 7)])
def test_a_searchs_count_and_pages_read_its_matches_once_up_to_the_cap(
    db: Any,
    monkeypatch: pytest.MonkeyPatch,
    order: tuple[str, str],
    cap: int,
    count: int,
    search: str,
) -> None:
    _bulk_matching(7)  # match000 the newest
    monkeypatch.setattr(CappedIdsPaginator, "CAP", cap)
    queryset = users_search(User.objects.order_by(*order), search)
    paginator = CappedIdsPaginator(queryset, 2)
    with CaptureQueriesContext(connection) as queries:
        assert paginator.count == count
        assert paginator.num_pages == (count + 1) // 2
    assert len(queries.captured_queries) == 1
    assert f"LIMIT {cap + 1}" in queries.captured_queries[0]["sql"].upper()
    names = [f"match{i:03d}" for i in range(7)]  # newest first, and by name
    for number in range(1, paginator.num_pages + 1):
        page = [u.username for u in paginator.page(number).object_list]
        assert page == names[:count][(number - 1) * 2 : number * 2], (number, page)


def test_the_benchmark_runs_every_case(db: Any) -> None:
    call_command("seed_users", count=5, stdout=io.StringIO())
    out = io.StringIO()
    call_command("benchmark_user_list", runs=1, stdout=out)
    lines = out.getvalue().splitlines()
    for label in ("search display name", "page in the middle", "by username, first page"):
        assert any(line.startswith(label) for line in lines), label
    rows = [line.split() for line in lines if re.search(r"\d+\.\d\s+\d+\.\d\s+\d+\s+\d+$", line)]
    # The back-office list's 7 cases, and the Management API's 11 (the same 7 and 4 more).
    assert len(rows) == 18
    assert {row[-1] for row in rows} == {"200"}
