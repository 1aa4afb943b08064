"""Journeys people make, in a real browser, with the mouse and again with the keyboard alone:
from a search to the section; from a paste to "This fixed it"; from a paste through the help
desk's resolution to the same error (another account) answered with that section first.

Keyboard runs press only Tab, Shift+Tab, Enter and Space and type text: at every stop the
focused control must show its focus outline, and on every page of the journey every visible
control must be reachable with Tab. Drives conftest's `browser` against the live server.
"""

import re

import pytest

from kb.importer import import_content

pytestmark = pytest.mark.browser
sync_api = pytest.importorskip("playwright.sync_api")
expect = sync_api.expect

FILLER = (
    "Check the request, the policy that applies to it and the account it runs in\\. "
    "Most problems of this kind come from a setting that differs between environments\\.\n\n"
) * 8
# Two sections that answer the paste almost equally well: what the help desk teaches decides.
S3 = f"""\
# Troubleshooting Amazon S3 access<a name="troubleshoot_s3"></a>

Use this page when a request to Amazon S3 is denied\\.

## Access denied to objects by a bucket policy<a name="bucket-policy"></a>

`GetObject` fails with `AccessDenied` when the bucket policy does not allow you to read the object\\.

{FILLER}
## Access denied to objects by an access point policy<a name="access-point"></a>

`GetObject` fails with `AccessDenied` when the access point policy does not allow you to read the object\\.

{FILLER}
## Requester pays buckets<a name="requester-pays"></a>

Requests to a requester pays bucket must include the request payer header, or they are denied\\.

{FILLER}
## Copying objects between Regions<a name="copy-regions"></a>

{FILLER}
"""
ARTICLE = "/kb/g/troubleshoot_s3/"
PASTE = (
    "An error occurred (AccessDenied) when calling the GetObject operation: User: arn:aws:iam::{account}:user/bob "
    "is not authorized to perform: s3:GetObject on resource: arn:aws:s3:::reports/q1.csv"
)
FOCUSABLE = (
    "a[href], button:not([disabled]), input:not([type=hidden]):not([disabled]), select:not([disabled]), "
    "textarea:not([disabled]), summary, [tabindex]:not([tabindex='-1'])"
)
# Whether the focused element shows an outline: the site's own, or the browser's focus ring
# (style `auto`, as on the admin's sign-in form).
FOCUS_STOP = """() => {
  const el = document.activeElement;
  if (!el || el === document.body) return null;
  const style = getComputedStyle(el);
  const outline = style.outlineStyle === 'auto' || (style.outlineStyle !== 'none' && parseFloat(style.outlineWidth) >= 2);
  const outlined = el.matches(':focus-visible') && outline;
  return {stop: el.dataset.kbdStop ?? null, outlined, html: el.outerHTML.slice(0, 120)};
}"""


@pytest.fixture
def guide(transactional_db, write_guide, settings) -> None:
    settings.KB_RATE_LIMIT_ENABLED = False
    import_content([write_guide("g", {"troubleshoot_s3.md": S3}, title="Storage Guide")])


@pytest.fixture
def staff(django_user_model):
    return django_user_model.objects.create_user("desk", password="desk-password", is_staff=True)


class Person:
    """Someone using one page: fills fields, chooses options and activates controls."""

    def __init__(self, page):
        self.page = page


class Mouse(Person):
    """Points and clicks, as most people do."""

    def fill(self, field, text: str) -> None:
        field.fill(text)

    def choose(self, field, option: str) -> None:
        field.select_option(label=option)

    def activate(self, control) -> None:
        control.click()


class Keyboard(Person):
    """Tab, Shift+Tab, Enter, Space and typing only; checks the focus outline at every stop."""

    def focus(self, target) -> None:
        target.wait_for()
        for _ in range(300):
            if target.evaluate("el => el === document.activeElement"):
                return
            target_is_above = target.evaluate(
                "el => !!document.activeElement && document.activeElement !== document.body"
                " && !!(el.compareDocumentPosition(document.activeElement) & Node.DOCUMENT_POSITION_FOLLOWING)"
            )
            self.page.keyboard.press("Shift+Tab" if target_is_above else "Tab")
            stop = self.page.evaluate(FOCUS_STOP)
            assert stop is None or stop["outlined"], f"no visible focus on {stop['html']}"
        raise AssertionError(f"could not reach {target} with Tab")

    def fill(self, field, text: str) -> None:
        self.focus(field)
        self.page.keyboard.insert_text(text)  # as pasted

    def choose(self, field, option: str) -> None:
        self.focus(field)
        self.page.keyboard.type(option)  # a closed select's type-ahead

    def activate(self, control) -> None:
        self.focus(control)
        is_link = control.evaluate("el => el.tagName === 'A'")
        self.page.keyboard.press("Enter" if is_link else "Space")


def unreachable_controls(page) -> list[str]:
    """The visible controls that Tab never reaches (going round the page from wherever focus
    starts), and the stops on the way that showed no focus outline."""
    count = page.evaluate(
        """(selector) => {
          const controls = [...document.querySelectorAll(selector)].filter(el => el.checkVisibility());
          controls.forEach((el, i) => { el.dataset.kbdStop = i; });
          return controls.length;
        }""",
        FOCUSABLE,
    )
    seen, problems = set(), []
    for _ in range(2 * count + 4):  # focus may start mid-page (a #fragment) and wrap round
        page.keyboard.press("Tab")
        stop = page.evaluate(FOCUS_STOP)
        if stop is None:
            continue
        if not stop["outlined"]:
            problems.append(f"no visible focus: {stop['html']}")
        seen.add(stop["stop"])
        if len(seen - {None}) == count:
            break
    missing = page.evaluate(
        "(seen) => [...document.querySelectorAll('[data-kbd-stop]')]"
        ".filter(el => !seen.includes(el.dataset.kbdStop)).map(el => el.outerHTML.slice(0, 120))",
        [stop for stop in seen if stop is not None],
    )
    return problems + [f"not reachable: {html}" for html in missing]


@pytest.fixture(params=[Mouse, Keyboard], ids=["mouse", "keyboard"])
def way(request):
    return request.param


def start(open_page, way):
    page = open_page()
    return page, way(page)


def go(page, person, url_pattern, control=None) -> None:
    """Activate `control` (or press Enter in the focused field) and arrive at the page it
    leads to; with the keyboard, check that Tab reaches all of that page."""
    with page.expect_navigation(url=url_pattern):
        if control is None:
            page.keyboard.press("Enter")
        else:
            person.activate(control)
    if isinstance(person, Keyboard):
        problems = unreachable_controls(page)
        assert not problems, "\n".join(problems)


def test_search_result_opens_the_article_at_its_section(open_page, guide, way):
    page, person = start(open_page, way)
    page.goto("/")
    person.fill(page.get_by_role("searchbox", name="Search the knowledge base"), "requester pays header")
    go(page, person, "**/search/?q=*")

    go(page, person, f"**{ARTICLE}#requester-pays", page.get_by_role("link", name="Requester pays buckets"))

    assert page.evaluate("window.scrollY") > 1000, "the section is far down the article"
    expect(page.get_by_role("heading", name="Requester pays buckets")).to_be_in_viewport()


def paste_error(page, person, account: str) -> None:
    page.goto("/troubleshoot/")
    person.fill(page.get_by_label("Error message or symptom"), PASTE.format(account=account))
    go(page, person, re.compile(r".*/troubleshoot/[^/]+/$"), page.get_by_role("button", name="Find a fix"))


def recommended_titles(page) -> list[str]:
    return page.locator(".recommendations > li .result-title").all_inner_texts()


def test_paste_then_this_fixed_it(open_page, guide, way):
    page, person = start(open_page, way)
    paste_error(page, person, "111122223333")
    assert recommended_titles(page)[:2] == [
        "Access denied to objects by a bucket policy", "Access denied to objects by an access point policy",
    ]

    go(page, person, "**/fixed/", page.get_by_role("button", name="This fixed it").first)

    expect(page.get_by_role("heading", name="Glad that fixed it")).to_be_visible()


def test_the_help_desk_resolution_answers_the_same_error_next_time(open_page, guide, staff, way):
    page, person = start(open_page, way)
    paste_error(page, person, "111122223333")
    first, target = recommended_titles(page)[:2]
    target_href = page.get_by_role("link", name=target).get_attribute("href")
    go(page, person, re.compile(r".*/troubleshoot/[^/]+/#rec-\d+$"), page.get_by_role("button", name="Not this").first)
    expect(page.get_by_role("heading", name="None of these helped?")).to_be_visible()
    go(page, person, "**/case/", page.get_by_role("link", name="Contact the help desk"))
    person.fill(page.get_by_label("Name"), "Pat")
    person.fill(page.get_by_label("Email"), "pat@example.com")
    go(page, person, "**/case/", page.get_by_role("button", name="Send to the help desk"))
    reference = re.fullmatch(r"Case (\S+)", page.get_by_role("heading", level=1).inner_text()).group(1)

    desk, member = start(open_page, way)
    desk.goto("/desk/")
    desk.wait_for_url("**/admin/login/**")
    member.fill(desk.get_by_label("Username"), "desk")
    member.fill(desk.get_by_label("Password"), "desk-password")
    go(desk, member, "**/desk/", desk.get_by_role("button", name="Log in"))
    go(desk, member, f"**/desk/cases/{reference}/", desk.get_by_role("link", name=reference))
    member.choose(desk.get_by_label("Status"), "Resolved")
    member.fill(desk.get_by_label("Section that resolved it"), target_href)
    go(desk, member, f"**/desk/cases/{reference}/", desk.get_by_role("button", name="Save"))
    expect(desk.get_by_role("status")).to_have_text(f"Case {reference} saved.")

    paste_error(page, person, "444455556666")
    assert recommended_titles(page)[:2] == [target, first]
    why = page.locator(".recommendations > li").first.locator(".why")
    expect(why).to_contain_text("Fixed the same error for others")
