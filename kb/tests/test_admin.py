"""The admin: imported content is shown, never edited there (the markdown is its source).

An edit made in the admin would reach neither cached pages nor search, so staff may look
at guides, articles, sections and what the importer derived from them, and are told where
to change them instead.
"""

import pytest

from kb.importer import import_content
from kb.models import Article, Guide, Section, SectionEmbedding, SectionEntity

GUIDE = {
    "index.md": "# Demo\n\n## Contents\n+ [Troubleshooting](troubleshoot.md)\n",
    "troubleshoot.md": (
        "# Troubleshooting<a name=\"troubleshoot\"></a>\n\n"
        "## Expired token<a name=\"expired-token\"></a>\n\n"
        "`GetObject` fails with `ExpiredToken` when temporary credentials expire\\.\n"
    ),
}


@pytest.fixture
def staff(client, django_user_model):
    client.force_login(django_user_model.objects.create_superuser("root", password="pw"))
    return client


@pytest.fixture
def imported(db, write_guide) -> Section:
    import_content([write_guide("demo", GUIDE)])
    section = Section.objects.get(anchor="expired-token")
    SectionEmbedding.objects.get_or_create(section=section, defaults={"digest": "d", "vector": b"", "heading": b""})
    return section


def rows(section: Section) -> dict[str, object]:
    """Each imported model's admin name and one of its rows."""
    return {
        "guide": section.article.guide, "article": section.article, "section": section,
        "sectionentity": SectionEntity.objects.filter(section=section).first(),
        "sectionembedding": section.embedding,
    }


def test_imported_content_is_viewable_and_says_where_it_changes(staff, imported):
    for name, row in rows(imported).items():
        assert row is not None, name
        for url in [f"/admin/kb/{name}/", f"/admin/kb/{name}/{row.pk}/change/"]:
            response = staff.get(url)
            assert response.status_code == 200, url
            assert "Imported from the guides' markdown" in response.content.decode(), url
        assert 'name="_save"' not in staff.get(f"/admin/kb/{name}/{row.pk}/change/").content.decode(), name


def test_imported_content_cannot_be_added_changed_or_deleted_in_the_admin(staff, imported):
    article = imported.article
    for name, row in rows(imported).items():
        assert staff.get(f"/admin/kb/{name}/add/").status_code == 403, name
        assert staff.post(f"/admin/kb/{name}/{row.pk}/delete/", {"post": "yes"}).status_code == 403, name
    staff.post(f"/admin/kb/article/{article.pk}/change/", {"title": "Renamed", "slug": article.slug,
                                                             "guide": article.guide_id, "position": 0})
    staff.post("/admin/kb/section/", {"action": "delete_selected", "_selected_action": [imported.pk], "post": "yes"})
    assert Article.objects.get(pk=article.pk).title == "Troubleshooting"
    assert Section.objects.filter(pk=imported.pk).exists() and Guide.objects.count() == 1
