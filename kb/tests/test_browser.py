"""What only a real browser shows: topic links scroll to their heading, the topics filter
narrows as you type, and permalinks copy the section URL.

Drives Debian's Chromium through Playwright (conftest's `browser`) against pytest-django's live server.
"""

import pytest

from kb.importer import import_content

pytestmark = pytest.mark.browser
sync_api = pytest.importorskip("playwright.sync_api")

TOPICS = [
    ("lost-keys", "I lost my access keys"),
    ("cant-sign-in", "I can't sign in to my account"),
    ("access-denied-service", "I get access denied from a service"),
    ("access-denied-temp", "I get access denied with temporary credentials"),
    ("policy-variables", "Policy variables aren't working"),
    ("eventual-consistency", "Changes are not immediately visible"),
    ("mfa-device", "My MFA device is lost"),
    ("switch-roles", "I can't switch roles"),
    ("bucket-policy", "My bucket policy is ignored"),
    ("throttling", "Requests are throttled"),
    ("expired-token", "My security token expired"),
    ("other-region", "The resource is in another Region"),
]
ARTICLE = "/kb/b/troubleshoot_long/"
PARAGRAPH = (
    "Check the request, the policy that applies to it and the account it runs in\\. "
    "Most problems of this kind come from a setting that differs between environments\\.\n\n"
)


@pytest.fixture
def page(open_page, long_article):
    return open_page()


@pytest.fixture
def long_article(transactional_db, write_guide):
    """One article with twelve topics, each long enough that reaching the last one scrolls."""
    body = "".join(f"## {title}<a name=\"{anchor}\"></a>\n\n{PARAGRAPH * 6}" for anchor, title in TOPICS)
    source = f'# Troubleshooting everything<a name="troubleshoot_long"></a>\n\n{PARAGRAPH}{body}'
    import_content([write_guide("b", {"troubleshoot_long.md": source}, title="Browser Guide")])


def visible_topics(page) -> list[str]:
    return page.locator("[data-topic]:visible").all_inner_texts()


def test_topic_link_scrolls_to_its_heading(page):
    page.goto("/topics/")
    # The last topic but one: below the last, the page may end before it can scroll.
    page.get_by_role("link", name="My security token expired").click()

    page.wait_for_url(f"**{ARTICLE}#expired-token")
    assert page.evaluate("window.scrollY") > 2000, "the section is far down the article"
    top = page.locator("#expired-token").bounding_box()["y"]
    assert 0 <= top < 40, f"heading should be at the top of the viewport, is at {top}px"


def test_topics_filter_narrows_the_list_as_you_type(page):
    page.goto("/topics/")
    count = page.locator("#topic-count")
    assert len(visible_topics(page)) == len(TOPICS)
    assert count.inner_text() == "12 topics"

    page.get_by_label("Filter topics").press_sequentially("access den")
    sync_api.expect(count).to_have_text("2 of 12 topics match")
    assert visible_topics(page) == ["I get access denied from a service", "I get access denied with temporary credentials"]

    page.get_by_label("Filter topics").fill("no such words")
    sync_api.expect(count).to_have_text("0 of 12 topics match")
    assert visible_topics(page) == []
    sync_api.expect(page.get_by_text("No topic matches those words.")).to_be_visible()
    sync_api.expect(page.get_by_role("heading", name="Browser Guide")).to_be_hidden()

    page.get_by_label("Filter topics").fill("")
    sync_api.expect(count).to_have_text("12 topics")
    assert len(visible_topics(page)) == len(TOPICS)


def test_permalink_copies_the_section_url(page, live_server):
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_server.url)
    page.goto(f"{ARTICLE}?utm_source=mail")
    permalink = page.get_by_role("link", name="Permalink to: Requests are throttled")
    assert permalink.get_attribute("href") == "#throttling"

    permalink.click()

    page.wait_for_url(f"{live_server.url}{ARTICLE}?utm_source=mail#throttling")
    sync_api.expect(page.get_by_role("status")).to_have_text("Link to this section copied")
    assert page.evaluate("navigator.clipboard.readText()") == f"{live_server.url}{ARTICLE}#throttling"
