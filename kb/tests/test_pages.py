"""The reading pages as a visitor gets them: home, guide contents, articles, topics, errors.

Content is a tiny guide written as markdown and loaded with the real importer.
"""

import re
from pathlib import Path

import pytest
from bs4 import BeautifulSoup
from django.conf import settings
from django.template.loader import render_to_string
from django.utils.safestring import mark_safe

from kb.importer import import_content
from kb.models import Section
from kb.templatetags.kb_tags import with_permalink

INDEX = """\
# Test Guide

## Contents
+ [Troubleshooting sign-in](troubleshoot_sign-in.md)
   + [Resetting access keys](access-keys.md)
   + [Published elsewhere](elsewhere.md)
   + [Not a web page](javascript:alert(1))
+ [Policies](policies.md)
"""

TROUBLESHOOT = """\
# Troubleshooting sign-in<a name="troubleshoot_sign-in"></a>

Use this page when you cannot sign in\\.

## I can't sign in to my account<a name="cant-sign-in"></a>

Reset your password in [the console](https://console.example.com/)\\.

## I get "access denied" & nothing else<a name="access-denied"></a>

**Note**  
Check the [policy variables](policies.md#policy-vars)\\.

### Denied by a permissions boundary<a name="denied-boundary"></a>

Look at the boundary\\.
"""

ACCESS_KEYS = """\
# Resetting access keys<a name="access-keys"></a>

## I lost my access keys<a name="lost-keys"></a>

Create a new pair\\.
"""

POLICIES = """\
# Policies<a name="policies"></a>

## Policy variables<a name="policy-vars"></a>

Use `${aws:username}`\\.
"""

ARTICLE = "/kb/g/troubleshoot_sign-in/"
PAGES = ["/", "/kb/g/", ARTICLE, "/kb/g/access-keys/", "/topics/", "/kb/g/no-such-article/"]


@pytest.fixture
def guide(db, write_guide):
    folder = write_guide(
        "g",
        {"index.md": INDEX, "troubleshoot_sign-in.md": TROUBLESHOOT, "access-keys.md": ACCESS_KEYS, "policies.md": POLICIES},
    )
    import_content([folder])


def get_page(client, url: str, status: int = 200) -> BeautifulSoup:
    response = client.get(url)
    assert response.status_code == status, url
    return BeautifulSoup(response.content, "html.parser")


def hrefs(element) -> list[str]:
    return [a["href"] for a in element.find_all("a", href=True)]


def test_tests_cache_pages_in_a_temporary_folder_not_the_development_servers(client, guide):
    """`.cache/` in the project is the development server's page cache: tests never write there."""
    location = settings.CACHES["default"]["LOCATION"]
    if settings.CACHES["default"]["BACKEND"].endswith("RedisCache"):
        pytest.skip("pages are cached in Redis")
    folder = Path(location).resolve()
    assert not folder.is_relative_to(settings.BASE_DIR.resolve()), folder
    get_page(client, "/kb/g/")
    assert any(folder.iterdir()), "the page was cached in the temporary folder"


def test_home_lists_guides_troubleshooting_topics_and_a_search_box(client, guide):
    page = get_page(client, "/")

    guides = page.find(id="guides")
    assert "/kb/g/" in hrefs(guides)
    assert "Test Guide" in guides.get_text()
    assert "3 articles" in " ".join(guides.get_text().split())

    topics = page.find("h2", string="Troubleshooting topics").find_parent("section")
    assert ARTICLE in hrefs(topics)
    assert {f"{ARTICLE}#cant-sign-in", f"{ARTICLE}#access-denied", f"{ARTICLE}#denied-boundary"} <= set(hrefs(topics))
    assert "/kb/g/policies/#policy-vars" not in hrefs(topics), "not a troubleshooting article"

    form = page.find("form", attrs={"role": "search"})
    assert form["action"] == "/search/" and form["method"] == "get"
    box = form.find("input", attrs={"name": "q"})
    assert form.find("label", attrs={"for": box["id"]}).get_text(strip=True)


def test_home_lists_guides_by_title_whatever_order_they_were_imported_in(client, db, write_guide):
    for slug, title in [("b-zeta", "Zeta Guide"), ("c-alpha", "Alpha Guide"), ("a-mid", "Middle Guide")]:
        import_content([write_guide(slug, {"policies.md": POLICIES}, title=title)])
    titles = [a.get_text(strip=True) for a in get_page(client, "/").find(id="guides").select("a[href^='/kb/']")]
    assert titles == ["Alpha Guide", "Middle Guide", "Zeta Guide"]


def test_home_and_topics_query_a_fixed_number_of_times(client, guide, django_assert_max_num_queries):
    # Templates only print what views fetched: no query per guide, article or topic
    # (plus one for the page's content version, kb/pagecache.py).
    with django_assert_max_num_queries(4):
        client.get("/")
    with django_assert_max_num_queries(2):
        client.get("/topics/")


def test_guide_page_shows_the_table_of_contents_tree(client, guide):
    page = get_page(client, "/kb/g/")
    assert page.h1.get_text(strip=True) == "Test Guide"

    contents = page.find("nav", attrs={"aria-labelledby": "contents-heading"})
    parent = contents.find("a", href=ARTICLE).find_parent("li")
    children = parent.find("ol")
    assert hrefs(children) == ["/kb/g/access-keys/", "https://docs.example.com/guide/elsewhere.html"]
    assert "external" in children.find("a", string="Published elsewhere")["class"]
    assert children.find(string=re.compile("Not a web page")), "entry kept as text"
    assert "/kb/g/policies/" in hrefs(contents)
    assert not any(href.startswith("javascript:") for href in hrefs(page))


def test_articles_the_table_of_contents_leaves_out_are_listed_after_it(client, db, write_guide):
    files = {"index.md": INDEX, "troubleshoot_sign-in.md": TROUBLESHOOT, "access-keys.md": ACCESS_KEYS,
             "policies.md": POLICIES, "orphan.md": "# Orphan page<a name=\"orphan\"></a>\n\nText\\.\n"}
    import_content([write_guide("g", files)])
    contents = get_page(client, "/kb/g/").find("nav", attrs={"aria-labelledby": "contents-heading"})
    others = contents.find("ol", attrs={"aria-labelledby": "others-heading"})
    assert hrefs(others) == ["/kb/g/orphan/"]
    assert hrefs(contents).count("/kb/g/policies/") == 1


def test_guide_without_index_lists_its_articles(client, db, write_guide):
    import_content([write_guide("plain", {"policies.md": POLICIES})])
    page = get_page(client, "/kb/plain/")
    contents = page.find("nav", attrs={"aria-labelledby": "contents-heading"})
    assert hrefs(contents) == ["/kb/plain/policies/"]


def test_article_page_shows_sections_with_permalinks(client, guide):
    page = get_page(client, ARTICLE)
    assert [h1.get_text(strip=True) for h1 in page.find_all("h1")] == ["Troubleshooting sign-in"]

    anchors = ["troubleshoot_sign-in", "cant-sign-in", "access-denied", "denied-boundary"]
    for anchor in anchors:
        heading = page.find(id=anchor)
        assert heading.name in {"h1", "h2", "h3"}
        permalink = heading.find_next_sibling("a", class_="permalink")
        assert permalink["href"] == f"#{anchor}"
        assert permalink["aria-label"] == f"Permalink to: {heading.get_text(strip=True)}"
        assert page.find("section", attrs={"aria-labelledby": anchor})
    assert len(page.select("a.permalink")) == len(anchors)

    # Titles with quotes and ampersands stay text: escaped once, no attribute injection.
    quoted = page.find(id="access-denied").find_next_sibling("a")
    assert quoted["aria-label"] == 'Permalink to: I get "access denied" & nothing else'

    on_this_page = page.find("nav", attrs={"aria-labelledby": "on-this-page-heading"})
    assert hrefs(on_this_page) == ["#cant-sign-in", "#access-denied", "#denied-boundary"]

    body = page.find(class_="article-body")
    assert body.find("a", string="the console")["class"] == ["external"]
    assert body.find("p", class_="callout-note")


def test_article_page_shows_breadcrumbs_neighbours_and_import_date(client, guide):
    page = get_page(client, "/kb/g/access-keys/")

    crumbs = page.find("nav", attrs={"aria-label": "Breadcrumb"})
    assert [li.get_text(strip=True) for li in crumbs.find_all("li")] == [
        "Home", "Test Guide", "Troubleshooting sign-in", "Resetting access keys",
    ]
    assert hrefs(crumbs) == ["/", "/kb/g/", ARTICLE, "/kb/g/access-keys/"]
    assert crumbs.find("a", attrs={"aria-current": "page"})["href"] == "/kb/g/access-keys/"

    assert page.find("a", rel="prev")["href"] == ARTICLE
    assert page.find("a", rel="next")["href"] == "/kb/g/policies/"

    imported = page.find(class_="article-meta")
    time = imported.find("time")
    assert "Imported" in imported.get_text() and re.match(r"\d{4}-\d\d-\d\dT", time["datetime"])
    assert time.get_text(strip=True)


def test_first_and_last_articles_have_one_neighbour(client, guide):
    first = get_page(client, ARTICLE)
    assert not first.find("a", rel="prev") and first.find("a", rel="next")["href"] == "/kb/g/access-keys/"
    last = get_page(client, "/kb/g/policies/")
    assert last.find("a", rel="prev")["href"] == "/kb/g/access-keys/" and not last.find("a", rel="next")


def test_aws_style_html_link_redirects_permanently(client, guide):
    response = client.get("/kb/g/policies.html")
    assert response.status_code == 301
    assert response["Location"] == "/kb/g/policies/"


def test_topics_page_lists_every_topic_by_guide_and_article(client, guide):
    page = get_page(client, "/topics/")

    guide_group = page.find("section", attrs={"aria-labelledby": "topics-g"})
    assert guide_group.h2.get_text(strip=True) == "Test Guide"
    articles = [h3.get_text(strip=True) for h3 in guide_group.find_all("h3")]
    assert articles == ["Troubleshooting sign-in", "Resetting access keys", "Policies"]

    topics = [a["href"] for item in page.select("[data-topic]") for a in item.find_all("a")]
    assert topics == [
        f"{ARTICLE}#cant-sign-in", f"{ARTICLE}#access-denied", f"{ARTICLE}#denied-boundary",
        "/kb/g/access-keys/#lost-keys", "/kb/g/policies/#policy-vars",
    ]
    assert topics == [section.get_absolute_url() for section in Section.objects.topics().order_by("article__position", "position")]

    box = page.find(attrs={"data-topic-filter": True}).find("input")
    assert page.find("label", attrs={"for": box["id"]}).get_text(strip=True) == "Filter topics"
    count = page.find(id="topic-count")
    assert count["aria-live"] == "polite" and count.get_text(strip=True) == "5 topics"


@pytest.mark.parametrize("url", ["/kb/nope/", "/kb/g/nope/", "/kb/g/nope.html", "/nope/"])
def test_unknown_pages_get_the_404_page(client, guide, url):
    response = client.get(url)
    assert response.status_code == 404
    assert "404.html" in [template.name for template in response.templates]
    page = BeautifulSoup(response.content, "html.parser")
    assert page.h1.get_text(strip=True) == "Page not found"
    assert page.find("a", href="/")


@pytest.mark.parametrize("url", PAGES)
def test_pages_have_landmarks_skip_link_and_heading_order(client, guide, url):
    page = get_page(client, url, status=404 if "no-such" in url else 200)

    for landmark in ("header", "nav", "main", "footer"):
        assert page.find(landmark), landmark
    skip = page.body.find("a")
    assert skip["href"] == "#main" and page.find("main")["id"] == "main"

    levels = [int(h.name[1]) for h in page.find_all(re.compile(r"^h[1-6]$"))]
    assert levels[0] == 1 and levels.count(1) == 1, levels
    assert all(b - a <= 1 for a, b in zip(levels, levels[1:])), f"heading level skipped: {levels}"

    for field in page.find_all("input"):
        if field.get("type") != "hidden":
            assert page.find("label", attrs={"for": field["id"]}), field


@pytest.mark.parametrize("url", PAGES)
def test_pages_have_no_inline_script_or_style(client, guide, url):
    # A Content-Security-Policy without 'unsafe-inline' must not break any page.
    html = client.get(url).content.decode()
    assert_no_inline_code(html)


def test_server_error_page_is_standalone_and_has_no_inline_code():
    page = render_to_string("500.html")
    assert "Something went wrong" in page
    assert_no_inline_code(page)


def assert_no_inline_code(html: str) -> None:
    page = BeautifulSoup(html, "html.parser")
    for script in page.find_all("script"):
        assert script.get("src") and script.has_attr("defer"), script
        assert not script.string, script
    assert not page.find("style")
    assert not page.find(attrs={"style": True})
    assert not page.find(attrs={re.compile(r"^on"): True})


def test_permalink_filter_escapes_what_is_not_already_safe():
    section = Section(anchor='x" onclick="y', title="<b>T</b>", level=2)
    assert with_permalink("<h2>T</h2><script>", section) == "&lt;h2&gt;T&lt;/h2&gt;&lt;script&gt;"

    html = with_permalink(mark_safe('<h2 id="x">T</h2><p>body</p>'), section)
    page = BeautifulSoup(html, "html.parser")
    link = page.find("a", class_="permalink")
    assert link.attrs == {
        "class": ["permalink"], "href": '#x" onclick="y', "aria-label": "Permalink to: <b>T</b>",
        "title": "Copy link to this section",
    }
    assert link.find_previous_sibling("h2") and page.find("p").get_text() == "body"


def test_permalink_goes_beside_the_first_heading_after_any_leading_content():
    section = Section(anchor="t", title="Title", level=1)
    html = with_permalink(mark_safe('<hr>\n<h1 id="t">Title</h1><p>Intro</p><h3>Unanchored</h3>'), section)
    assert html == (
        '<hr>\n<div class="section-heading"><h1 id="t">Title</h1><a class="permalink" href="#t" '
        'aria-label="Permalink to: Title" title="Copy link to this section">#</a></div><p>Intro</p><h3>Unanchored</h3>'
    )
