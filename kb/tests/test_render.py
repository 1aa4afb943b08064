"""The AWS-documentation markdown dialect as the importer stores it (kb/importer/render.py).

Each rule of issue 2 is checked on a tiny article written to disk and loaded with the real
importer; golden files pin the whole rendering of a representative sample. To regenerate
them after an intended change: `KB_REGENERATE_GOLDEN=1 python -m pytest kb/tests/test_render.py -k golden`,
then review the diff of kb/tests/golden/.
"""

import os
import string
from pathlib import Path

import pytest
from bs4 import BeautifulSoup
from django.conf import settings
from django.urls import reverse

from kb.importer import import_content
from kb.importer.render import LinkContext, Renderer, RenderError
from kb.models import Article, Section

GOLDEN = Path(__file__).parent / "golden"
SEED = Path(settings.BASE_DIR) / "content" / "iam-user-guide" / "troubleshoot_general.md"
BASE_URL = "https://docs.example.com/guide/"


@pytest.fixture
def imported(db, write_guide):
    """Return `load(text, others={}) -> Article`: import `article.md` (and `others`) in guide "g"."""

    def load(text: str, others: dict[str, str] | None = None) -> Article:
        import_content([write_guide("g", {"article.md": text, **(others or {})}, base_url=BASE_URL)])
        return Article.objects.get(guide__slug="g", slug="article")

    return load


def html_of(article: Article) -> BeautifulSoup:
    return BeautifulSoup("".join(s.html for s in article.sections.all()), "html.parser")


def only_section(article: Article) -> tuple[Section, BeautifulSoup]:
    """The article's one section, and its HTML parsed."""
    (section,) = article.sections.all()
    return section, BeautifulSoup(section.html, "html.parser")


def test_each_anchored_heading_starts_a_stored_section(imported):
    article = imported(
        '# Troubleshooting \\(general\\)<a name="top"></a>\n\n'
        "Intro\\.\n\n"
        '## I lost my keys<a name="lost-keys"></a>\n\n'
        "Make new ones & keep them\\.\n\n"
        '### In the console<a name="lost-keys-console"></a>\n\n'
        "#### A heading without an anchor\n\n"
        "stays in the section above it\\.\n\n"
        '## <a name="anchor-first"></a>Anchor written first\n'
    )
    sections = list(article.sections.all())
    assert [(s.anchor, s.title, s.level, s.position) for s in sections] == [
        ("top", "Troubleshooting (general)", 1, 0),
        ("lost-keys", "I lost my keys", 2, 1),
        ("lost-keys-console", "In the console", 3, 2),
        ("anchor-first", "Anchor written first", 2, 3),
    ]
    assert (article.title, article.anchor) == ("Troubleshooting (general)", "top")
    assert sections[1].html.startswith('<h2 id="lost-keys">I lost my keys</h2>')
    assert sections[1].text == "I lost my keys\nMake new ones & keep them."
    assert "<h4>A heading without an anchor</h4>" in sections[2].html
    assert not any("<a name" in s.html or "&lt;a name" in s.html for s in sections)


def test_a_title_without_anchor_is_still_the_first_section(imported):
    article = imported('# Plain title\n\nBody\\.\n\n## Next<a name="next"></a>\n')
    sections = [(s.anchor, s.title, s.level) for s in article.sections.all()]
    assert sections == [("", "Plain title", 1), ("next", "Next", 2)]


def test_content_before_the_title_belongs_to_the_title_section(imported):
    # Some guides open with horizontal rules; an <hr> once passed for the title heading.
    article = imported('--------\n\n--------\n\n# Configuring<a name="configuring"></a>\n\nBody\\.\n')
    (section,) = article.sections.all()
    assert section.anchor == "configuring"
    assert section.html.startswith("<hr>\n<hr>\n")
    assert '<h1 id="configuring">Configuring</h1>' in section.html


def test_inline_anchors_become_ids_on_their_element(imported):
    page = html_of(imported(
        '# Steps<a name="steps"></a>\n\n'
        '1. <a name="step-one"></a>Do this\\.\n'
        "1. Then that\\.\n\n"
        '<a name="para"></a>A paragraph with <a name="second"></a>two anchors\\.\n\n'
        "+ Run it:\n\n"
        "  ```\n"
        "  make\n"
        '  ```<a name="after-code"></a>\n\n'
        "More\\.\n"
    ))
    assert page.find(id="step-one").name == "li"
    assert page.find(id="step-one").get_text() == "Do this."
    assert page.find(id="para").name == "p"
    assert page.find(id="second") is not None
    # Text after a closing fence is not code: the anchor there survives as an id.
    assert page.find(id="after-code") is not None
    assert page.find("pre").get_text() == "make"
    assert "<a name" not in str(page)


def test_backslash_escapes_give_the_plain_character(imported):
    escaped = "".join(f"\\{char}" for char in string.punctuation)
    article = imported(
        f'# Access\\-denied \\(403\\)<a name="t"></a>\n\n'
        f"All of them: {escaped} end\\.\n\n"
        'Verify the policy \\(for example, `"Version": "2012-10-17"`\\) with `a\\_b` and `C:\\\\x`\\.\n\n'
        "```\n"
        "C:\\Program Files\\ \\. \\- \\(kept\\)\n"
        "```\n"
    )
    section, page = only_section(article)
    assert section.title == "Access-denied (403)"
    assert f"All of them: {string.punctuation} end." in section.text
    assert 'Verify the policy (for example, "Version": "2012-10-17") with a\\_b and C:\\\\x.' in section.text
    # Inside code the backslash is the author's own character.
    assert [code.get_text() for code in page.find_all("code")] == [
        '"Version": "2012-10-17"', "a\\_b", "C:\\\\x", "C:\\Program Files\\ \\. \\- \\(kept\\)"
    ]


def test_plus_bullets_nest_with_two_or_three_spaces(imported):
    page = html_of(imported(
        '# Lists<a name="lists"></a>\n\n'
        "+ Parent, nested by three\n"
        "   + Child\n"
        "      + Grandchild\n"
        "+ Parent, nested by two\n"
        "  + Child by two\n"
    ))
    top = page.find("ul")
    parents = top.find_all("li", recursive=False)
    assert [li.contents[0].strip() for li in parents] == ["Parent, nested by three", "Parent, nested by two"]
    assert parents[0].select_one(":scope > ul > li > ul > li").get_text() == "Grandchild"
    assert parents[1].select_one(":scope > ul > li").get_text() == "Child by two"


def test_a_list_may_start_right_under_a_paragraph_line(imported):
    page = html_of(imported('# Topics<a name="topics"></a>\n\n**Topics**\n+ [One](#topics)\n+ [Two](#topics)\n'))
    assert page.find("p").get_text() == "Topics"
    assert [li.get_text() for li in page.select("ul > li")] == ["One", "Two"]


def test_a_list_item_after_a_deeper_block_goes_back_to_its_own_list(imported):
    # As in the Secrets Manager guide: a bullet list whose items hold numbered steps.
    page = html_of(imported(
        '# Steps<a name="steps"></a>\n\n'
        "1. In the console, do one of the following:\n"
        "  + If you see **Browse**, choose it\\.\n\n"
        "    1. Search\\.\n\n"
        "    1. Deploy\\.\n"
        "  + If you don't see **Browse**, create it\\.\n\n"
        "    1. Name it\\.\n"
    ))
    choices = page.select("ol > li > ul > li")
    assert [li.p.get_text() for li in choices] == [
        "If you see Browse, choose it.", "If you don't see Browse, create it."
    ]
    assert [len(li.select("ol > li")) for li in choices] == [2, 1]


def test_fenced_code_inside_a_list_item_stays_in_the_item(db, write_guide):
    """The seed's temporary-credentials section: Python-Markdown's defaults end the list before the JSON."""
    import_content([write_guide("iam", {"troubleshoot_general.md": SEED.read_text()})])
    section = Article.objects.get(slug="troubleshoot_general").sections.get(
        anchor="troubleshoot_general_access-denied-temp-creds"
    )
    page = BeautifulSoup(section.html, "html.parser")
    (pre,) = page.find_all("pre")
    item = pre.find_parent("li")
    assert item is not None and item.get_text().strip().startswith("If you are accessing a resource")
    assert pre.get_text().startswith('{\n  "Version": "2012-10-17",\n  "Statement": [{\n    "Sid": "S3BucketPolicy",')
    assert len(page.find("ul").find_all("li", recursive=False)) == 5


def test_the_seed_has_its_seven_topics(db, write_guide):
    import_content([write_guide("iam", {"troubleshoot_general.md": SEED.read_text()})])
    topics = Article.objects.get(slug="troubleshoot_general").sections.filter(level=2)
    assert topics.count() == 7
    assert topics.first().title == "I lost my access keys"


def test_bold_with_spaces_inside_the_asterisks_is_still_bold(imported):
    section, page = only_section(imported(
        '# Bold<a name="bold"></a>\n\n'
        ' ** [FunctionName](#bold) **   \n'
        "In the **Buckets **list, **MD5: **`a ** b ** c` but 64 TiB\\*\\* stays\\.\n"
    ))
    assert [strong.get_text() for strong in page.find_all("strong")] == ["FunctionName", "Buckets", "MD5:"]
    assert page.find("code").get_text() == "a ** b ** c"
    assert "In the Buckets list, MD5: a ** b ** c but 64 TiB** stays." in section.text


def test_text_after_a_closing_fence_is_a_paragraph(imported):
    page = html_of(imported('# Fence<a name="fence"></a>\n\n```\nname: step\n```Parameters\n\n`ids`  \nIds\\.\n'))
    assert page.find("pre").get_text() == "name: step"
    assert page.find("pre").find_next_sibling("p").get_text() == "Parameters"


def test_pipe_tables(imported):
    page = html_of(imported(
        '# Settings<a name="settings"></a>\n\n'
        "| Setting | Default |\n"
        "| --- | --- |\n"
        "| `region` | us\\-east\\-1 |\n"
        "| a \\| b | none |\n"
    ))
    rows = [[cell.get_text() for cell in row.find_all(["th", "td"])] for row in page.find("table").find_all("tr")]
    assert rows == [["Setting", "Default"], ["region", "us-east-1"], ["a | b", "none"]]


def test_bold_note_paragraphs_are_callouts(imported):
    page = html_of(imported(
        '# Callouts<a name="callouts"></a>\n\n'
        "**Note**  \nBe careful\\.\n\n"
        "**Important**  \nBack up first\\.\n\n"
        "**Topics**\n+ [A](#callouts)\n"
    ))
    paragraphs = page.find_all("p")
    assert [p.get("class") for p in paragraphs] == [["callout", "callout-note"], ["callout", "callout-important"], None]


def test_links_go_to_the_portal_the_published_page_or_stay_in_the_page(imported):
    page = html_of(imported(
        '# Links<a name="links"></a>\n\n'
        "[in guide](other.md#other-part) [whole article](other.md) [not imported](elsewhere.md#part) "
        "[in page](#links) [external](https://aws.amazon.com/iam/)\n",
        {"other.md": '# Other<a name="other"></a>\n\n## Part<a name="other-part"></a>\n'},
    ))
    links = {a.get_text(): a for a in page.find_all("a")}
    other_url = reverse("kb:article", args=["g", "other"])
    assert links["in guide"]["href"] == f"{other_url}#other-part" == "/kb/g/other/#other-part"
    assert links["whole article"]["href"] == other_url
    assert links["in page"]["href"] == "#links"
    for name in ("in guide", "whole article", "in page"):
        assert not links[name].get("class"), name
    assert links["not imported"]["href"] == f"{BASE_URL}elsewhere.html#part"
    assert links["external"]["href"] == "https://aws.amazon.com/iam/"
    for name in ("not imported", "external"):
        assert links[name]["class"] == ["external"]
        assert {"external", "noopener", "noreferrer"} <= set(links[name]["rel"])


def test_scripts_handlers_and_javascript_urls_never_reach_stored_html(imported):
    article = imported(
        '# Hostile <img src="x.png" onerror="alert(1)">title<a name="t"></a>\n\n'
        "<script>alert('raw')</script>\n\n"
        'Text <img src="a.png" onerror="alert(2)"> <b onclick="alert(3)">bold</b> '
        '<a href="javascript:alert(4)">raw link</a> <a href=" JaVaScRiPt:alert(5)">mixed case</a>\n\n'
        "[markdown link](javascript:alert(6)) <iframe src=\"https://evil.example/\"></iframe>\n"
    )
    section, page = only_section(article)
    assert page.find(["script", "iframe"]) is None
    for element in page.find_all(True):
        assert not [name for name in element.attrs if name.startswith("on")], element
        assert "javascript" not in element.get("href", "").lower(), element
    assert "alert" not in section.html
    assert section.title == "Hostile title"
    assert "alert" not in section.text


def test_only_the_ids_the_importer_assigns_survive(imported):
    """Raw HTML in the markdown cannot reuse the page's own ids (`content`, `results-heading`)."""
    article = imported(
        '# Ids<a name="ids"></a>\n\n<div id="content">Raw <span id="results-heading">block</span></div>\n\n'
        '## Step<a name="step"></a>\n\nText <b id="main">bold</b>\\.\n\n<h3 id="site-header">Raw heading</h3>\n'
    )
    ids = [element["id"] for element in html_of(article).find_all(id=True)]
    assert ids == ["ids", "step"]


def test_a_heading_anchor_used_twice_gets_a_suffix(imported):
    article = imported(
        '# Twice<a name="twice"></a>\n\n## Description<a name="part"></a>\n\nA\\.\n\n'
        '## Cause<a name="part"></a>\n\nB\\.\n\n## Solution<a name="part"></a>\n'
    )
    assert [s.anchor for s in article.sections.all()] == ["twice", "part", "part-2", "part-3"]
    assert '<h2 id="part-2">Cause</h2>' in article.sections.get(anchor="part-2").html


def test_every_repeated_anchor_gets_a_unique_id(imported):
    article = imported('# Ids<a name="ids"></a>\n\n<a name="step"></a>First\\.\n\n<a name="step"></a>Second\\.\n')
    page = html_of(article)
    assert [p.get("id") for p in page.find_all("p")] == ["step", "step-2"]
    assert article.anchors == ["ids", "step", "step"]


def test_anchor_warnings_are_the_warnings_of_a_full_render():
    """The importer relies on this to report an unchanged article's warnings without rendering it."""
    source = (GOLDEN / "repeats.md").read_text()
    renderer = Renderer()
    rendered = renderer.render(source, LinkContext("g", BASE_URL, frozenset(), "/kb/{guide}/{article}/"))
    assert rendered.warnings == renderer.anchor_warnings(source) == [
        (7, "anchor 'part' is already used above; this one is #part-2"),
        (14, "anchor 'part' is already used above; this one is #part-3"),
        (16, "anchor 'step' is already used above; this one is #step-2"),
    ]


def test_titles_keep_entities_and_drop_inline_html(imported):
    article = imported('# R&amp;D for <b>AT&amp;T</b> <em>now</em><a name="rd"></a>\n')
    assert article.title == "R&D for AT&T now"


def test_an_article_without_a_title_heading_is_an_error():
    context = LinkContext(guide="g", base_url=BASE_URL, articles=frozenset(), article_url="/kb/{guide}/{article}/")
    with pytest.raises(RenderError) as failure:
        Renderer().render('\n\nJust text\\.\n\n## Part<a name="part"></a>\n', context)
    assert failure.value.line == 3
    with pytest.raises(RenderError):
        Renderer().render("", context)


GOLDEN_CASES = {
    # A synthetic article with every rule of the dialect, and the seed as authors write it.
    "dialect": (GOLDEN / "dialect.md", frozenset({"dialect", "other"})),
    "seed": (SEED, frozenset({"troubleshoot_general", "id_credentials_temp"})),
}


@pytest.mark.parametrize("name", sorted(GOLDEN_CASES))
def test_golden_rendering(name):
    source, articles = GOLDEN_CASES[name]
    context = LinkContext(guide="g", base_url=BASE_URL, articles=articles, article_url="/kb/{guide}/{article}/")
    rendered = Renderer().render(source.read_text(), context)
    actual = "".join(
        f"<!-- section {s.position} #{s.anchor} h{s.level}: {s.title} -->\n{s.html}\n"
        for s in rendered.sections
    )
    expected_file = GOLDEN / f"{name}.html"
    if os.environ.get("KB_REGENERATE_GOLDEN"):
        expected_file.write_text(actual)
    assert actual == expected_file.read_text()
