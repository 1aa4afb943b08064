"""Title suggestions as you type (kb/search/suggestions.py): read from a list each worker
keeps per content generation, so what they offer must follow every import."""

from kb.importer import import_content
from kb.search.suggestions import SUGGESTIONS, suggest_titles

ARTICLE = """\
# Signing in<a name="signing-in"></a>

## I cannot sign in<a name="cannot-sign-in"></a>

Reset the password\\.

## Ça ne marche pas<a name="ca-marche-pas"></a>

Non\\.
"""


def test_suggestions_follow_a_reimport(db, write_guide):
    folder = write_guide("g", {"signing-in.md": ARTICLE})
    import_content([folder])
    assert [s["title"] for s in suggest_titles("sign")] == ["I cannot sign in"]
    (folder / "signing-in.md").write_text(ARTICLE.replace("I cannot sign in", "Signing in fails"))
    import_content([folder])
    assert [s["title"] for s in suggest_titles("sign")] == ["Signing in fails"]
    assert suggest_titles("sign")[0]["url"] == "/kb/g/signing-in/#cannot-sign-in"


def test_suggestions_match_letters_beyond_ascii_in_any_case(db, write_guide):
    import_content([write_guide("g", {"signing-in.md": ARTICLE})])
    assert [s["title"] for s in suggest_titles("ça MARCHE")] == ["Ça ne marche pas"]


def test_suggestions_are_capped(db, write_guide):
    sections = "".join(f'\n## Topic {i}<a name="t{i}"></a>\n\nText\\.\n' for i in range(SUGGESTIONS + 3))
    import_content([write_guide("g", {"many.md": "# Many<a name=\"many\"></a>\n" + sections})])
    assert len(suggest_titles("topic")) == SUGGESTIONS
