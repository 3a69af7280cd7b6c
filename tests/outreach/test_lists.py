"""List machinery at scale: keyset pages, totals, "all matching" bulk actions, company
autocomplete, set-based bulk writes, query counts that do not grow with rows, migrations."""
from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from outreach import selectors
from outreach.models import Contact, Lead, SentMessage, TimelineEvent
from outreach.dbindexes import SEARCH_SHARDS, contact_search_text, trigram_fragments
from outreach.pagination import (format_total, keyset_page, list_page, order_by_keyset, page_plan, planner_estimate,
                                 sort_fields, total_of)
from outreach.selectors import ListQuery, Selection
from outreach.services.contacts import contacts_make_leads, leads_set_status
from tests.factories import make_contact, make_lead, make_mailbox, make_sent_message, make_team_user

pytestmark = pytest.mark.django_db


def _emails(page: str) -> list[str]:
    return re.findall(r'<a href="/contacts/\d+/">([^<]+)</a>', page)


def _next_link(page: str, rel: str = "next") -> str | None:
    match = re.search(rf'<a class="btn" href="([^"]+)" rel="{rel}">', page)
    return match.group(1).replace("&amp;", "&") if match else None


# --- Keyset pages -------------------------------------------------------------------------------


@pytest.mark.parametrize("order", ["email", "-email", "name", "-name", "company", "-company", "created", "-created"])
def test_every_row_exactly_once_across_pages_while_rows_are_inserted(user_client, team, order):
    # Many equal sort values (companies, names) so the id tiebreaker matters.
    Contact.objects.bulk_create([
        Contact(team=team, email=f"c{i:03d}@example.com", company=f"Co {i % 4}", last_name=f"L{i % 3}")
        for i in range(130)])
    original = set(Contact.objects.values_list("email", flat=True))
    url, seen, inserted = reverse("contact_list") + f"?o={order}", [], 0
    while url:
        page = user_client.get(url).content.decode()
        seen += _emails(page)
        # Someone imports between page loads: rows land before, inside and after this page.
        for email in (f"a{inserted:03d}@example.com", f"m{inserted:03d}@example.com", f"z{inserted:03d}@example.com"):
            make_contact(team, email, company=f"Co {inserted % 4}", last_name="L1")
        inserted += 1
        link = _next_link(page)
        url = reverse("contact_list") + link if link else None
    assert len(seen) == len(set(seen)), "a row was shown twice"
    assert original <= set(seen), "a row was skipped"


@pytest.mark.parametrize("order", ["sent", "-sent"])
def test_keyset_pages_forwards_and_backwards_with_nulls(team, order):
    mailbox, contact = make_mailbox(team), make_contact(team)
    now = timezone.now()
    for i in range(23):  # every third message not sent yet (sent_at NULL), some equal times
        make_sent_message(mailbox, contact, subject=f"m{i}", sent_at=None if i % 3 == 0 else now - timedelta(minutes=i // 2))
    qs, _ = selectors.sent_message_list(team=team, query=ListQuery(order=order))
    # The pages' own order (NULL largest): SQLite's plain ORDER BY puts NULL first ascending.
    ordered = order_by_keyset(qs, sort_fields(qs))
    expected = list(ordered.values_list("pk", flat=True))
    values = [v for v in ordered.values_list("sent_at", flat=True)]
    # NULL sorts as the largest value on every backend: last ascending, first descending.
    assert (values[-1] if order == "sent" else values[0]) is None
    forward, page = [], keyset_page(qs, per_page=5)
    while True:
        forward += [m.pk for m in page.object_list]
        if not page.has_next:
            break
        page = keyset_page(qs, per_page=5, after=page.next_cursor)
    assert forward == expected
    backward, page = [], keyset_page(qs, per_page=5, last=True)
    while True:
        backward = [m.pk for m in page.object_list] + backward
        if not page.has_previous:
            break
        page = keyset_page(qs, per_page=5, before=page.previous_cursor)
    assert backward == expected


def test_previous_page_after_deletions_is_the_first_page(team):
    Contact.objects.bulk_create([Contact(team=team, email=f"p{i:02d}@example.com") for i in range(12)])
    qs, _ = selectors.contact_list(team=team, query=ListQuery(order="email"))
    second = keyset_page(qs, per_page=5, after=keyset_page(qs, per_page=5).next_cursor)
    Contact.objects.filter(email__in=["p00@example.com", "p01@example.com"]).delete()
    first = keyset_page(qs, per_page=5, before=second.previous_cursor)
    assert [c.email for c in first.object_list] == [f"p{i:02d}@example.com" for i in range(2, 5)]
    assert first.is_first and not first.has_previous


# --- Totals ---------------------------------------------------------------------------------------


def test_format_total():
    assert format_total(1234) == "1,234"
    assert format_total(1_234_567, exact=False) == "about 1.2 million"
    assert format_total(12_345_678, exact=False) == "about 12 million"
    assert format_total(345_678, exact=False) == "about 350,000"
    assert format_total(12_345, exact=False) == "about 12,000"


def test_total_is_exact_below_the_threshold_and_estimated_above(team):
    other, _ = make_team_user()
    Contact.objects.bulk_create([Contact(team=team, email=f"t{i}@example.com") for i in range(40)])
    Contact.objects.bulk_create([Contact(team=other, email=f"o{i}@example.com") for i in range(10)])
    qs = Contact.objects.for_team(team)
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE outreach_contact")  # the estimate is only as good as the statistics
    assert (total_of(qs, threshold=100).value, total_of(qs, threshold=100).exact) == (40, True)
    above = total_of(qs, threshold=10)
    if connection.vendor == "postgresql":
        assert not above.exact and 20 <= above.value <= 80 and str(above).startswith("about ")
    else:
        assert (above.value, above.exact) == (40, True)


@pytest.mark.parametrize("q", ["", "acme", "nomatch"])
def test_list_page_counts_in_the_page_query_when_few_rows_match(team, django_assert_num_queries, q):
    other, _ = make_team_user()
    Contact.objects.bulk_create([Contact(team=team, email=f"w{i:02d}@example.com", company="Acme" if i % 3 else "Beta")
                                 for i in range(30)])
    Contact.objects.bulk_create([Contact(team=other, email=f"x{i}@example.com", company="Acme") for i in range(10)])
    qs = selectors.apply_text_search(Contact.objects.for_team(team), q, contact_search_text()).order_by("email", "pk")
    expected = list(qs.values_list("pk", flat=True))
    # PostgreSQL: EXPLAIN, then the page with its count (a small table: sorted, so read whole);
    # SQLite: the page with its count.
    with django_assert_num_queries(2 if connection.vendor == "postgresql" else 1):
        first, total = list_page(qs, per_page=7)
    assert (total.value, total.exact) == (len(expected), True) and first.matched == len(expected)
    assert [c.pk for c in first.object_list] == expected[:7]
    last, total = list_page(qs, per_page=7, last=True)
    assert (total.value, total.exact) == (len(expected), True)
    assert [c.pk for c in last.object_list] == expected[-7:]
    if not expected:
        return
    # Behind a cursor the page query carries a capped count of every row (not only those after
    # the cursor): PostgreSQL: EXPLAIN (the estimate), then the page; SQLite: the page.
    with django_assert_num_queries(2 if connection.vendor == "postgresql" else 1):
        second, total = list_page(qs, per_page=7, after=first.next_cursor)
    assert second.matched == len(expected) and (total.value, total.exact) == (len(expected), True)
    assert [c.pk for c in second.object_list] == expected[7:14]
    before, total = list_page(qs, per_page=7, before=second.previous_cursor)
    assert [c.pk for c in before.object_list] == expected[:7] and (total.value, total.exact) == (len(expected), True)


@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL plans")
def test_page_plan_tells_a_sort_from_an_index_walk(team):
    Contact.objects.bulk_create([Contact(team=team, email=f"p{i:02d}@example.com", title=f"T{i % 5}") for i in range(40)])
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE outreach_contact")
        cursor.execute("SET LOCAL enable_seqscan = off")  # a 40-row table would be scanned and sorted
    contacts = Contact.objects.for_team(team)
    walk = page_plan(contacts.order_by("-created_at", "-id")[:8])  # contact_team_created, backwards
    assert not walk.reads_all and 20 <= walk.rows <= 80
    sort = page_plan(contacts.order_by("phone", "id")[:8])  # no index on phone: all rows, then a sort
    assert sort.reads_all and 20 <= sort.rows <= 80
    # A page that walks an index and finds few rows carries a capped count, exact: still the walk.
    walked = contacts.order_by("-created_at", "-id")
    page, total = list_page(walked, per_page=8)
    assert page.matched == 40 and (total.value, total.exact) == (40, True)
    assert [c.pk for c in page.object_list] == list(walked.values_list("pk", flat=True)[:8])


@pytest.mark.parametrize("where", ["first", "cursor", "last"])
def test_list_page_query_count_is_the_same_below_and_above_the_threshold(team, django_assert_num_queries, where):
    """PostgreSQL: EXPLAIN + the page, whether the total is counted (few rows) or estimated (many),
    so a list page costs as many queries at 10,000 rows as at 1,000,000. SQLite: the page, plus
    a full count behind a cursor when more rows match than the threshold."""
    contacts = Contact.objects.for_team(team)
    Contact.objects.bulk_create([Contact(team=team, email=f"c{i:03d}@example.com") for i in range(120)])
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE outreach_contact")
    qs = contacts.order_by("-created_at", "-id")
    cursor_token = keyset_page(qs, per_page=10).next_cursor
    kwargs = {"first": {}, "cursor": {"after": cursor_token}, "last": {"last": True}}[where]
    counts = {}
    for threshold in (1_000, 20):  # counted / estimated
        postgres = connection.vendor == "postgresql"
        with django_assert_num_queries(2 if postgres else (2 if where == "cursor" and threshold == 20 else 1)) as captured:
            page, total = list_page(qs, per_page=10, threshold=threshold, **kwargs)
        counts[threshold] = len(captured)
        assert len(page.object_list) == 10
        if threshold == 1_000:
            assert (total.value, total.exact) == (120, True)
        elif postgres:
            assert not total.exact and 60 <= total.value <= 240
        else:
            assert total.value == 120
    if connection.vendor == "postgresql":
        assert counts[1_000] == counts[20] == 2


def test_list_page_above_the_threshold_shows_the_estimate_and_reads_one_page(team, django_assert_num_queries):
    Contact.objects.bulk_create([Contact(team=team, email=f"e{i:02d}@example.com") for i in range(40)])
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE outreach_contact")
    qs, _ = selectors.contact_list(team=team, query=ListQuery())
    page, total = list_page(qs, per_page=5, threshold=10)
    assert len(page.object_list) == 5 and page.has_next
    if connection.vendor == "postgresql":
        assert not total.exact and 20 <= total.value <= 80 and page.matched is None
    else:
        assert (total.value, total.exact) == (40, True)


# --- Search ---------------------------------------------------------------------------------------


def test_trigram_fragments_are_one_substring_per_word():
    assert trigram_fragments("Terra") == ["err"]
    assert trigram_fragments("Nguyen") == ["guy"]
    assert trigram_fragments("acme") == ["acm"]
    # A short word after a separator: with it (a word starting so), and the separator after it.
    assert trigram_fragments("elena.ng") == ["len", ".ng"]
    assert trigram_fragments("a.b.c") == [".b.", ".c"]
    assert trigram_fragments("na.x") == ["na.", ".x"]
    assert trigram_fragments("ann@example42.com") == ["ann", "mpl", "com"]
    assert trigram_fragments("4") == trigram_fragments("ng") == trigram_fragments("__") == []
    assert trigram_fragments("Müller") == ["üll"]
    for term in ("Terra", "elena.ng", "a.b.c", "ann@example42.com", "Müller"):
        assert all(fragment in term for fragment in trigram_fragments(term))


SEARCHED = [
    ("elena.nguyen.1@example42.com", "Elena", "Nguyen", "Terra North Group 4"),
    ("elena.ng@example7.com", "Elena", "Ng", "North Terra SA 1"),
    ("helena.nguyen@nova.example.com", "Helena", "Nguyen", "Nova Prism Ltd 14"),
    ("ben.muller@example.com", "Ben", "Müller", "Terra Nimbus GmbH 0"),
    ("x_y@example.com", "X", "Y", "100% Labs"),
    ("a.b@example.com", "Ann", "Bo", "Subterranean Inc"),
]


@pytest.mark.parametrize("q", ["Terra North Group 4", "elena.ng", "4", "ng", '"terra north"', "TERRA", "müller",
                               "100%", "x_y", "_", "a.b", "nguyen 14", "erra", "ELENA.NGUYEN.1@EX", "zzz", "o n"])
def test_search_is_a_substring_of_the_searched_columns_in_any_case(team, q):
    """Every term of q must be a substring (case-insensitive) of "email first last company"; the
    index lookup by fragments (PostgreSQL) finds exactly the rows the plain check finds."""
    other, _ = make_team_user()
    for email, first, last, company in SEARCHED:
        make_contact(team, email, first_name=first, last_name=last, company=company)
        make_contact(other, email, first_name=first, last_name=last, company=company)
    terms = [t.upper() for t in selectors.search_terms(q)]
    expected = sorted(e for e, *rest in SEARCHED if all(t in " ".join((e, *rest)).upper() for t in terms))
    qs, _ = selectors.contact_list(team=team, query=ListQuery(q=q))
    assert sorted(qs.values_list("email", flat=True)) == expected
    leads = [make_lead(c) for c in Contact.objects.for_team(team)]
    found, _ = selectors.lead_list(team=team, query=ListQuery(q=q))
    assert sorted(found.values_list("contact__email", flat=True)) == expected and len(leads) == len(SEARCHED)


@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL plans")
def test_search_looks_up_one_fragment_per_word_in_the_trigram_index(team):
    """The index condition holds the fragments (ERR for Terra, ORT for North; the term "4" has
    none), not every trigram of each term; the whole terms are checked on the rows found."""
    make_contact(team, "ann@example.com", company="Terra North Group 4")
    make_contact(team, "bob@example.com", company="Terra South Group 4")
    # Every team's contacts (as a superuser's admin list): every shard's trigram index serves.
    qs = selectors.apply_text_search(Contact.objects.order_by(), "Terra North 4", contact_search_text(), team_path="team")
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        plan = qs.explain()
    index_cond = "\n".join(line for line in plan.splitlines() if "Index Cond" in line)
    assert "BitmapOr" in plan and all(f"contact_search_trgm_{k}" in plan for k in range(SEARCH_SHARDS))
    assert "'%ERR%'" in index_cond and "'%ORT%'" in index_cond
    assert "TERRA" not in index_cond and "NORTH" not in index_cond and "'%4%'" not in index_cond
    assert "strpos" in plan and "'TERRA'" in plan and "'4'" in plan
    assert list(qs.values_list("email", flat=True)) == ["ann@example.com"]


def _teams_by_shard(team, count: int = 2 * SEARCH_SHARDS + 1) -> tuple[list, list]:
    """Other teams in ``team``'s search shard and in other shards (made until both exist)."""
    same, other = [], []
    while not same or not other:
        t, _ = make_team_user()
        (same if t.pk % SEARCH_SHARDS == team.pk % SEARCH_SHARDS else other).append(t)
    return same, other


def test_the_contacts_trigram_index_is_one_partial_index_per_team_shard():
    """Every team id falls in exactly one shard index's condition (a contact is written to one
    GIN index, as before the split)."""
    from outreach.dbindexes import TrigramIndex

    shards = [index for index in Contact._meta.indexes if isinstance(index, TrigramIndex)]
    assert [index.name for index in shards] == [f"contact_search_trgm_{k}" for k in range(SEARCH_SHARDS)]
    for index in shards:
        (lookup,) = index.condition.children
        assert lookup.lhs.get_source_expressions()[0].name == "team"
        assert lookup.rhs.value == int(index.name.rsplit("_", 1)[1])
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'outreach_contact' "
                           "AND indexdef LIKE '%%gin_trgm_ops%%'")
            defs = dict(cursor.fetchall())
        assert sorted(defs) == [index.name for index in shards]
        for k in range(SEARCH_SHARDS):
            assert defs[f"contact_search_trgm_{k}"].endswith(f"WHERE (mod(team_id, (8)::bigint) = {k})")


@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL plans")
def test_a_teams_search_reads_its_shard_index_with_the_shard_in_the_query(team):
    """The list search names the team's shard (the index predicate), so the planner reads that
    partial index only, whose posting lists hold no team of another shard; the leads list (the
    contact joined) too. The shard's estimate is the team's (the extended statistics)."""
    shard = team.pk % SEARCH_SHARDS
    Contact.objects.bulk_create([Contact(team=team, email=f"c{i}@example.com", company=f"Acme {i}") for i in range(3000)])
    for i in range(30):
        make_contact(team, f"elena.ng{i}@example.com", company="Terra North Group 4")
    Lead.objects.bulk_create([Lead(team=team, contact=c) for c in Contact.objects.for_team(team)])
    with connection.cursor() as cursor:  # as autovacuum would: the GIN pending list merged, statistics
        cursor.execute(f"SELECT gin_clean_pending_list('contact_search_trgm_{shard}')")
        cursor.execute("ANALYZE outreach_contact")
        cursor.execute("ANALYZE outreach_lead")
    plans = []
    qs, _ = selectors.contact_list(team=team, query=ListQuery(q="elena.ng terra"))
    leads, _ = selectors.lead_list(team=team, query=ListQuery(q="elena.ng terra"))
    for query in (qs, leads):
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL enable_seqscan = off")
            plans.append(query.explain())
    for plan in plans:
        assert f"Bitmap Index Scan on contact_search_trgm_{shard}" in plan
        assert [k for k in range(SEARCH_SHARDS) if f"contact_search_trgm_{k}" in plan] == [shard]
    for query in (qs, leads):  # the predicate proven from the query, not a filter PostgreSQL adds
        assert f'MOD("outreach_contact"."team_id", 8) = {shard}' in str(query.query)
    assert qs.count() == 30 and leads.count() == 30
    unsharded = selectors.apply_text_search(Contact.objects.for_team(team), "elena.ng terra", contact_search_text())
    assert planner_estimate(qs) == planner_estimate(unsharded)  # not 0.5 % of it (no statistics on MOD)
    # The searched text's statistics (a partial index's are not used): a word no contact holds is
    # estimated at a few rows, not at the 4 % of the team of the default pattern selectivity
    # (121 here), above which a page walks the whole team's sort index instead.
    rare, _ = selectors.contact_list(team=team, query=ListQuery(q="zqxwv"))
    assert planner_estimate(rare) <= 20


@pytest.mark.parametrize("q", ["Terra North Group 4", "elena.ng", "4", "ng", "TERRA", "müller", "x_y", "zzz"])
def test_search_in_each_shard_and_across_shards_equals_a_plain_substring_check(team, admin_client, q):
    """The same rows in a team of the same shard, a team of another shard and across every team
    (the admin's search) as a plain case-insensitive substring check finds."""
    same, other = _teams_by_shard(team)
    teams = [team, same[0], other[0]]
    for t in teams:
        for email, first, last, company in SEARCHED:
            make_contact(t, email, first_name=first, last_name=last, company=company)
    terms = [t.upper() for t in selectors.search_terms(q)]
    expected = sorted(e for e, *rest in SEARCHED if all(t in " ".join((e, *rest)).upper() for t in terms))
    for t in teams:
        qs, _ = selectors.contact_list(team=t, query=ListQuery(q=q))
        assert sorted(qs.values_list("email", flat=True)) == expected
        assert set(qs.values_list("team_id", flat=True)) <= {t.pk}
    every = selectors.apply_text_search(Contact.objects.all(), q, contact_search_text(), team_path="team")
    plain = Contact.objects.all()
    for term in selectors.search_terms(q):
        plain = plain.alias(_t=contact_search_text()).filter(_t__icontains=term)
    assert sorted(every.values_list("pk", flat=True)) == sorted(plain.values_list("pk", flat=True))
    assert every.count() == len(expected) * len(teams)


# --- "All N matching" and set-based bulk actions --------------------------------------------------


def test_bulk_action_on_all_matching_uses_the_filter_not_the_page(user_client, team):
    Contact.objects.bulk_create([Contact(team=team, email=f"keep{i}@example.com", company="Keep") for i in range(5)]
                                + [Contact(team=team, email=f"gone{i:03d}@example.com", company="Gone") for i in range(60)])
    other, _ = make_team_user()
    make_contact(other, "gone999@example.com", company="Gone")
    url = reverse("contact_list") + "?company=Gone"
    confirm = user_client.post(url, {"action": "delete", "all": "1"})
    page = confirm.content.decode()
    assert "all 60 contacts matching" in page and "and 40 more" in page and 'name="all" value="1"' in page
    assert Contact.objects.count() == 66
    done = user_client.post(url, {"action": "delete", "all": "1", "confirmed": "yes"})
    assert done.status_code == 302
    assert [str(m) for m in user_client.get(url).context["messages"]] == ["Deleted 60 contacts."]
    assert sorted(Contact.objects.values_list("company", flat=True)) == ["Gone"] + ["Keep"] * 5  # the other team's stays


def test_make_leads_is_set_based_with_timeline_rows(team, team_user, django_assert_max_num_queries):
    user = team_user[1]
    Contact.objects.bulk_create([Contact(team=team, email=f"m{i}@example.com", company="Acme") for i in range(200)])
    make_lead(Contact.objects.get(email="m0@example.com"))
    selection = Selection(query=ListQuery(filters={"company": "Acme"}))
    with django_assert_max_num_queries(10):
        made, skipped = contacts_make_leads(team=team, selection=selection, owner=user, actor=user)
    assert (made, skipped) == (199, 1)
    assert Lead.objects.filter(team=team, owner=user).count() == 199
    assert TimelineEvent.objects.filter(kind=TimelineEvent.Kind.LEAD_CREATED, actor=user).count() == 199


def test_set_status_is_set_based_with_timeline_rows(team, team_user, django_assert_max_num_queries):
    user = team_user[1]
    Contact.objects.bulk_create([Contact(team=team, email=f"s{i}@example.com") for i in range(150)])
    Lead.objects.bulk_create([Lead(team=team, contact=c, status="won" if c.email == "s0@example.com" else "new")
                              for c in Contact.objects.filter(team=team)])
    with django_assert_max_num_queries(10):
        changed = leads_set_status(team=team, selection=Selection(query=ListQuery(filters={"status": "new"})),
                                   status="won", actor=user)
    assert changed == 149
    assert set(Lead.objects.values_list("status", flat=True)) == {"won"}
    event = TimelineEvent.objects.filter(kind=TimelineEvent.Kind.LEAD_STATUS).first()
    assert event.summary == "Lead status: New → Won." and event.data == {"from": "new", "to": "won"}
    assert TimelineEvent.objects.filter(kind=TimelineEvent.Kind.LEAD_STATUS).count() == 149


# --- Company filter -------------------------------------------------------------------------------


def test_company_filter_is_an_autocomplete_scoped_to_the_team(user_client, team):
    make_contact(team, company="Acme Corp")
    make_contact(team, company="Acme Labs")
    make_contact(team, company="Beta")
    other, _ = make_team_user()
    make_contact(other, company="Acme Secret")
    page = user_client.get(reverse("contact_list")).content.decode()
    assert f'hx-get="{reverse("contact_company_suggestions")}"' in page and '<datalist id="company-options">' in page
    assert "<option value=\"Acme" not in page  # no list of every company on each page load
    options = user_client.get(reverse("contact_company_suggestions"), {"company": "acme"}).content.decode()
    assert re.findall(r'<option value="([^"]+)">', options) == ["Acme Corp", "Acme Labs"]


COMPANIES = ["Acme Corp", "acme corp", "ACME Corp", "Acme Labs", "Acme", "Acmeo", "Beta Acme", "50% Off", "500 Co",
             "a_b", "axb", "Zeta", "", "Acme Labs"]
COMPANY_TERMS = ["acme", "ACME C", "acme labs", "50%", "a_", "corp", "", "zz", "b"]


def _company_suggestions_everywhere(team, terms=COMPANY_TERMS, limit=20) -> dict[str, list[str]]:
    return {term: selectors.company_suggestions(team=team, term=term, limit=limit) for term in terms}


def test_company_suggestions_are_distinct_names_starting_with_the_term(team):
    for i, company in enumerate(COMPANIES):
        make_contact(team, f"co{i}@example.com", company=company)
    other, _ = make_team_user()
    make_contact(other, "other@example.com", company="Acme Secret")
    got = _company_suggestions_everywhere(team)
    # A prefix, case-insensitive, by the upper-cased name in byte order; names differing only in
    # case are listed apart (each is a value of the exact company filter).
    assert got["acme"] == ["Acme", "ACME Corp", "Acme Corp", "acme corp", "Acme Labs", "Acmeo"]
    assert got["ACME C"] == ["ACME Corp", "Acme Corp", "acme corp"]
    assert got["acme labs"] == ["Acme Labs"]
    assert got["50%"] == ["50% Off"] and got["a_"] == ["a_b"]  # % and _ are plain characters
    assert got["corp"] == [] and got["zz"] == [] and got["b"] == ["Beta Acme"]
    assert got[""] == ["50% Off", "500 Co", "Acme", "ACME Corp", "Acme Corp", "acme corp", "Acme Labs", "Acmeo",
                       "axb", "a_b", "Beta Acme", "Zeta"]
    assert selectors.company_suggestions(team=team, term="acme", limit=2) == ["Acme", "ACME Corp"]


SQLITE_COMPANY_SUGGESTIONS = """
import json, sys
import django
django.setup()
from django.core.management import call_command
call_command("migrate", verbosity=0)
from outreach import selectors
from outreach.models import Contact, Team
team = Team.objects.create(name="T")
for i, company in enumerate(json.loads(sys.argv[1])):
    Contact.objects.create(team=team, email=f"co{i}@example.com", company=company)
print(json.dumps({t: selectors.company_suggestions(team=team, term=t) for t in json.loads(sys.argv[2])}))
"""


def test_company_suggestions_are_the_same_on_sqlite(team, tmp_path):
    import json
    import os
    import subprocess
    import sys

    for i, company in enumerate(COMPANIES):
        make_contact(team, f"co{i}@example.com", company=company)
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}", "DJANGO_SETTINGS_MODULE": "outreach.settings.local"}
    done = subprocess.run([sys.executable, "-c", SQLITE_COMPANY_SUGGESTIONS, json.dumps(COMPANIES), json.dumps(COMPANY_TERMS)],
                          env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1]) == _company_suggestions_everywhere(team)


# --- Query counts ---------------------------------------------------------------------------------


def _seed(team, n: int) -> None:
    mailbox = make_mailbox(team)
    contacts = Contact.objects.bulk_create([Contact(team=team, email=f"q{n}-{i}@example.com", company=f"Co {i % 7}")
                                            for i in range(n)])
    Lead.objects.bulk_create([Lead(team=team, contact=c) for c in contacts[: n // 2]])
    SentMessage.objects.bulk_create([
        SentMessage(team=team, mailbox=mailbox, contact=c, to=[c.email], subject="Hi", provider="smtp",
                    message_id=f"<q{n}-{c.pk}@x>") for c in contacts])
    TimelineEvent.objects.bulk_create([TimelineEvent(team=team, contact=contacts[0], kind="contact_updated", summary="x")
                                       for _ in range(n)])


LIST_PAGES = [
    ("contact_list", {}), ("contact_list", {"q": "q1", "o": "company"}), ("contact_list", {"company": "Co 1"}),
    ("lead_list", {}), ("lead_list", {"o": "-email"}), ("message_list", {}), ("message_list", {"o": "sent"}),
]


@pytest.mark.parametrize("name,params", LIST_PAGES)
def test_list_query_count_does_not_grow_with_rows(user_client, team, name, params, django_assert_max_num_queries):
    def queries() -> int:
        with django_assert_max_num_queries(8) as captured:
            assert user_client.get(reverse(name), params).status_code == 200
        return len(captured)

    _seed(team, 10)
    small = queries()
    _seed(team, 120)  # more than two pages
    assert queries() == small


def test_contact_page_query_count_does_not_grow_with_its_timeline(user_client, team, django_assert_max_num_queries):
    contact, mailbox = make_contact(team), make_mailbox(team)

    def queries() -> int:
        with django_assert_max_num_queries(8) as captured:
            assert user_client.get(reverse("contact_detail", args=[contact.pk])).status_code == 200
        return len(captured)

    make_sent_message(mailbox, contact)
    TimelineEvent.objects.bulk_create([TimelineEvent(team=team, contact=contact, kind="contact_updated", summary="x")
                                       for _ in range(5)])
    small = queries()
    TimelineEvent.objects.bulk_create([TimelineEvent(team=team, contact=contact, kind="contact_updated", summary="x")
                                       for _ in range(200)])
    for _ in range(60):  # the newest page holds messages (cards with their events) in both cases
        make_sent_message(mailbox, contact)
    assert queries() == small


# --- Migrations -----------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_migrations_apply_backwards_and_forwards_on_this_database():
    # The suite runs on PostgreSQL (tests/run.sh); test_migrations_apply_on_sqlite covers SQLite.
    call_command("migrate", "outreach", "0003_message_template", verbosity=0)
    call_command("migrate", "outreach", verbosity=0)
    with connection.cursor() as cursor:
        names = {c["name"] if isinstance(c, dict) else c for c in
                 connection.introspection.get_constraints(cursor, Contact._meta.db_table)}
        timeline = connection.introspection.get_constraints(cursor, TimelineEvent._meta.db_table)
    assert {"contact_team_created", "contact_team_name", "contact_team_company"} <= names
    shards = {f"contact_search_trgm_{k}" for k in range(SEARCH_SHARDS)}
    assert (shards <= names) == (connection.vendor == "postgresql") and "contact_search_trgm" not in names
    assert ("contact_company_prefix" in names) == (connection.vendor == "postgresql")
    assert _timeline_link_indexes(timeline) == {"timeline_sent_message", "timeline_inbound_message", "timeline_actor"}
    assert "timeline_stop_events" in timeline
    # 0020: sent messages lose their unused single-column indexes (the unique message_id stays);
    # backwards they come back as Django made them (with the _like twins on PostgreSQL).
    postgres = connection.vendor == "postgresql"
    assert _sent_message_field_indexes() == {"status": 0, "message_id": 0}
    assert _sent_message_unique_columns() >= {"message_id", "idempotency_key"}
    call_command("migrate", "outreach", "0019", verbosity=0)
    assert _sent_message_field_indexes() == {"status": 2 if postgres else 1, "message_id": 1 if postgres else 0}
    call_command("migrate", "outreach", verbosity=0)
    assert _sent_message_field_indexes() == {"status": 0, "message_id": 0}


def _sent_message_field_indexes() -> dict[str, int]:
    """How many plain (non-unique) single-column indexes the sent messages' status and message_id have."""
    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(cursor, SentMessage._meta.db_table)
    return {column: sum(1 for info in constraints.values() if info["index"] and not info["unique"]
                        and not info["primary_key"] and info["columns"] == [column])
            for column in ("status", "message_id")}


def _sent_message_unique_columns() -> set[str]:
    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(cursor, SentMessage._meta.db_table)
    return {info["columns"][0] for info in constraints.values() if info["unique"] and len(info["columns"]) == 1}


def _timeline_link_indexes(constraints: dict) -> set[str]:
    """Names of the plain indexes on the timeline's sent_message, inbound_message and actor columns."""
    return {name for name, info in constraints.items() if info["index"] and not info["unique"]
            and info["columns"] in (["sent_message_id"], ["inbound_message_id"], ["actor_id"])}


def test_stop_event_index_holds_every_kind_the_campaign_sweep_reads(team):
    from outreach.campaigns.services import AUTO_REPLY_KIND, STOP_EVENT_KINDS
    from outreach.models import TIMELINE_STOP_KINDS

    assert {*STOP_EVENT_KINDS, AUTO_REPLY_KIND} == set(TIMELINE_STOP_KINDS)
    if connection.vendor != "postgresql":
        return
    # The sweep's query can use the partial index (its kinds imply the index's condition).
    lookback = timezone.now() - timedelta(days=1)
    recent = TimelineEvent.objects.filter(kind__in=[*STOP_EVENT_KINDS, AUTO_REPLY_KIND], created_at__gte=lookback)
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        plan = recent.values_list("contact_id", flat=True).distinct().explain()
    assert "timeline_stop_events" in plan


SQLITE_MIGRATIONS = """
import django
django.setup()
from django.core.management import call_command
from django.db import connection
call_command("migrate", verbosity=0)
call_command("migrate", "outreach", "0003_message_template", verbosity=0)
call_command("migrate", verbosity=0)
call_command("makemigrations", "--check", "--dry-run", verbosity=0)
with connection.cursor() as cursor:
    print(sorted(connection.introspection.get_constraints(cursor, "outreach_contact")))
    print(sorted(connection.introspection.get_constraints(cursor, "outreach_timelineevent")))
    sent = connection.introspection.get_constraints(cursor, "outreach_sentmessage")
    print(sorted(name for name, info in sent.items() if info["columns"] == ["status"]))
call_command("migrate", "outreach", "0019", verbosity=0)
with connection.cursor() as cursor:
    sent = connection.introspection.get_constraints(cursor, "outreach_sentmessage")
    print(sorted(name for name, info in sent.items() if info["columns"] == ["status"]))
call_command("migrate", verbosity=0)
"""


def test_migrations_apply_on_sqlite(tmp_path):
    import os
    import subprocess
    import sys

    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}", "DJANGO_SETTINGS_MODULE": "outreach.settings.local"}
    done = subprocess.run([sys.executable, "-c", SQLITE_MIGRATIONS], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    contact, timeline, status_after, status_before = done.stdout.strip().splitlines()[-4:]
    assert status_after == "[]" and "status" in status_before  # 0020 drops it; backwards restores it
    assert "contact_team_company" in contact and "contact_search_trgm" not in contact
    assert "contact_company_prefix" not in contact  # COLLATE "C": PostgreSQL only
    assert "timeline_actor" in timeline and "timeline_stop_events" in timeline
    assert "actor_id_" not in timeline and "sent_message_id_" not in timeline  # the full FK indexes are gone


# --- Admin lists ----------------------------------------------------------------------------------


def test_admin_large_lists_do_not_count_the_table_and_search_by_contact(admin_client, team, django_assert_max_num_queries):
    from django.contrib import admin as django_admin

    from outreach.pagination import EstimatedCountPaginator

    for model in (Contact, Lead, SentMessage, TimelineEvent):
        model_admin = django_admin.site._registry[model]
        assert model_admin.show_full_result_count is False and model_admin.paginator is EstimatedCountPaginator
    ann = make_contact(team, "ann@alpha.example.com", first_name="Ann", company="Alpha")
    make_contact(team, "bob@beta.example.com", first_name="Bob", company="Beta")
    TimelineEvent.objects.create(team=team, contact=ann, kind="contact_updated", summary="Touched.")
    page = admin_client.get("/admin/outreach/contact/", {"q": "alpha ann"}).content.decode()
    assert "ann@alpha.example.com" in page and "bob@beta.example.com" not in page
    with django_assert_max_num_queries(12) as captured:
        page = admin_client.get("/admin/outreach/timelineevent/", {"q": "alpha"}).content.decode()
    assert "Touched." in page
    assert not any(re.match(r'SELECT COUNT\(\*\) AS "__count" FROM "outreach_timelineevent"\s*$', q["sql"])
                   for q in captured.captured_queries)


def test_admin_large_lists_rows_checkbox_links_and_times(admin_client, team):
    """The selection checkbox written directly renders exactly what Django's widget renders; the
    row links are reverse()'s; the created column is formatted as the UI lists and sorts."""
    from django.contrib import admin as django_admin

    contact = make_contact(team, "o'brien@example.com", first_name="<b>")
    model_admin = django_admin.site._registry[Contact]
    assert model_admin.action_checkbox(contact) == django_admin.ModelAdmin.action_checkbox(model_admin, contact)
    older = make_contact(team, "older@example.com")
    Contact.objects.filter(pk=older.pk).update(created_at=timezone.now() - timedelta(days=400))
    page = admin_client.get("/admin/outreach/contact/").content.decode()
    assert str(model_admin.action_checkbox(contact)) in page
    # Row links from one reversed route: the same URL reverse() gives for each row.
    for row in (contact, older):
        assert f'href="{reverse("admin:outreach_contact_change", args=[row.pk])}"' in page
    # The created column: the UI lists' format, and still sortable by created_at.
    assert timezone.localtime(contact.created_at).strftime("%Y-%m-%d %H:%M") in page
    created = list(model_admin.list_display).index("created") + 1  # "o" counts the checkbox column
    for order, first in ((f"{created}", "older@example.com"), (f"-{created}", "o&#x27;brien@example.com")):
        rows = re.findall(r'<th class="field-email"><a href="[^"]+">([^<]+)</a>',
                          admin_client.get("/admin/outreach/contact/", {"o": order}).content.decode())
        assert rows[0] == first, (order, rows)


# --- CSV export -----------------------------------------------------------------------------------


def _download(response) -> str:
    from django.http import StreamingHttpResponse

    assert isinstance(response, StreamingHttpResponse) and response["Content-Type"] == "text/csv; charset=utf-8"
    return b"".join(response.streaming_content).decode("utf-8")


def test_contact_export_is_the_current_filter_streamed_with_bom_and_escaped(user_client, team):
    make_contact(team, "ann@acme.example.com", first_name="=HYPERLINK(\"http://x\")", company="Acme", title="+CEO",
                 custom_fields={"Plan": "-gold", "Région": "Île-de-France"})
    make_contact(team, "bob@other.example.com", company="Other")
    page = user_client.get(reverse("contact_list"), {"company": "Acme"}).content.decode()
    assert f'href="{reverse("contact_export")}?company=Acme"' in page
    text = _download(user_client.get(reverse("contact_export"), {"company": "Acme"}))
    assert text.startswith("\ufeffEmail,First name,Last name,Company,Job title,Phone,LinkedIn URL,")
    lines = text.splitlines()
    assert lines[0].endswith(",Plan,Région") and len(lines) == 2
    assert "ann@acme.example.com,\"'=HYPERLINK(\"\"http://x\"\")\",,Acme,'+CEO," in lines[1]
    assert lines[1].endswith(",'-gold,Île-de-France")


def test_contact_export_round_trips_through_the_import(user_client, team):
    from django.core.files.base import ContentFile

    from outreach.imports.services import contacts_import

    for i in range(30):
        # Values the export formula-escapes ("+33…", "-gold", "=…", "@…") come back without the apostrophe.
        make_contact(team, f"p{i}@example.com", first_name=f"Zoë {i}" if i % 3 else f"=Zoë {i}",
                     last_name="O'Brien, Jr.", company="Acme \"Q\" SA" if i % 4 else "@Acme",
                     title="Head of\nSales", phone=f"+33 1 23 {i:02d}", linkedin_url=f"https://www.linkedin.com/in/p{i}",
                     custom_fields={"Tier": str(i % 3), "Plan": "-gold"} if i % 2 else {})
    exported = _download(user_client.get(reverse("contact_export"), {"o": "email"}))
    assert "'+33 1 23 00" in exported and "'-gold" in exported  # escaped for spreadsheets on the way out
    fields = ("email", "first_name", "last_name", "company", "title", "phone", "linkedin_url", "custom_fields")
    before = sorted(Contact.objects.filter(team=team).values_list(*fields))
    other, _ = make_team_user()
    job = contacts_import(team=other, file=ContentFile(exported.encode("utf-8"), name="contacts.csv"))
    assert job.status == "done" and job.counts()["created"] == 30 and job.counts()["rejected"] == 0
    after = sorted(Contact.objects.filter(team=other).values_list(*fields))
    # Custom fields absent from a contact come back as empty cells; everything else is identical.
    assert [row[:-1] for row in after] == [row[:-1] for row in before]
    assert [{k: v for k, v in row[-1].items() if v} for row in after] == [row[-1] for row in before]


def test_lead_export_has_status_and_owner(user_client, team, team_user):
    lead = make_lead(make_contact(team, "l@example.com"), status="won", owner=team_user[1])
    make_lead(make_contact(team, "n@example.com"), status="new")
    text = _download(user_client.get(reverse("lead_export"), {"status": "won"}))
    lines = text.splitlines()
    assert lines[0].endswith(",Lead status,Lead owner") and len(lines) == 2
    assert lines[1].startswith("l@example.com,") and lines[1].endswith(f",Won,{lead.owner.username}")
