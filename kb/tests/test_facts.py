"""What ranking knows of each section (kb/search/facts.py): read once per content generation
for the whole corpus, and read again when an import changes content, with or without the
shared cache that carries the generation."""

import gc
import weakref

import pytest

from kb import cache as kb_cache
from kb.importer import import_content
from kb.models import Section
from kb.search import analyse, facts
from kb.search.ranking import EntityStats, entity_lookup, specific_values

KEYS = """\
# Troubleshooting keys<a name="keys"></a>

Fix the errors you see when you use keys.

## I am not authorized to perform {action}<a name="denied"></a>

The caller needs permission for {action} on the key before it can use it.

## Key not found<a name="missing"></a>

The NotFoundException error means the key is missing or in another Region.
"""
DECRYPT = "User: arn:aws:iam::111122223333:user/dev is not authorized to perform: kms:Decrypt on resource: key/1"


@pytest.fixture
def guide(db, write_guide):
    folder = write_guide("keys", {"troubleshoot_keys.md": KEYS.format(action="kms:Decrypt")})
    import_content([folder])
    return folder


@pytest.fixture
def reads(monkeypatch):
    """How many times the corpus's facts were read from the database."""
    counted = []
    read = facts.read_corpus
    monkeypatch.setattr(facts, "read_corpus", lambda: counted.append(1) or read())
    return counted


def about_decrypt() -> list[int]:
    return entity_lookup(specific_values(analyse(DECRYPT)))


def rename_action(folder, action: str) -> None:
    (folder / "troubleshoot_keys.md").write_text(KEYS.format(action=action))
    import_content([folder])


def test_every_section_has_its_facts_and_entities(guide):
    denied = Section.objects.get(anchor="denied")
    known = facts.load_facts([denied.pk, -1])
    assert list(known) == [denied.pk]  # a section that does not exist is left out
    assert known[denied.pk].title == denied.title
    assert known[denied.pk].zones["action:kms:decrypt"] == "h"
    assert about_decrypt() == [denied.pk]
    # Where the corpus documents the paste's action: the one article that names it.
    stats = EntityStats.for_query(analyse(DECRYPT), specific_values(analyse(DECRYPT)))
    assert stats.article_share(denied.article_id) == 1.0
    assert stats.article_share(-1) == 0.0


def test_a_heading_word_is_rarer_the_fewer_headings_share_it(guide):
    known = facts.load_facts([Section.objects.get(anchor="missing").pk]).popitem()[1]
    rarity = dict(known.heading_words)
    assert set(rarity) == {"key", "found"}  # content words only: "not" is a stopword
    # "key" is in two of the three headings ("Troubleshooting keys", "Key not found"), "found" in one.
    assert rarity["found"] > rarity["key"]
    assert dict(known.article_words).keys() == {"troub", "key"}


def test_the_corpus_is_read_once_until_an_import_changes_it(guide, reads):
    about_decrypt()
    about_decrypt()
    assert len(reads) == 1

    rename_action(guide, "kms:Encrypt")

    assert about_decrypt() == []  # the section is now about another action
    assert len(reads) == 2


def test_the_corpus_is_kept_out_of_the_collectors_passes_yet_freed_when_replaced(guide):
    known = facts.corpus()
    # Tracked, yet in no generation a collection walks: frozen.
    assert gc.is_tracked(known.sections)
    assert not any(o is known.sections for o in gc.get_objects())
    replaced = weakref.ref(known)
    del known

    rename_action(guide, "kms:Encrypt")
    facts.corpus()

    assert replaced() is None  # frozen objects are still freed once nothing refers to them


def test_without_the_shared_cache_an_import_still_reaches_ranking(guide, reads, monkeypatch):
    monkeypatch.setattr(kb_cache, "content_generation", lambda: None)
    denied = Section.objects.get(anchor="denied").pk
    assert about_decrypt() == [denied]
    about_decrypt()
    assert len(reads) == 1  # the database's content version says nothing changed

    rename_action(guide, "kms:Encrypt")

    assert about_decrypt() == []
    assert facts.load_facts([denied])[denied].title == "I am not authorized to perform kms:Encrypt"


def test_a_word_in_every_heading_weighs_nothing(db, write_guide):
    import_content([write_guide("one", {"keys.md": "# Keys<a name=\"keys\"></a>\n\nAbout keys.\n"})])
    known = facts.load_facts([Section.objects.get(anchor="keys").pk]).popitem()[1]
    assert known.heading_words == (("key", 0.0),)
