"""Every page type in a real browser: nothing wider than the window at a phone's and a desktop's
width, however long the pasted text, URL or code; and no serious or critical axe-core finding in
the light or the dark colour scheme.

One test per check walks all pages and reports every offender at once; the content, a paste,
a case and a signed-in member of staff are made once per test. Drives conftest's `browser`.
"""

from dataclasses import dataclass

import pytest
from django.conf import settings as django_settings
from django.test import Client

from kb.guided.flow import open_case, record_feedback, start_diagnosis
from kb.importer import import_content
from kb.models import Section

pytestmark = pytest.mark.browser
axe_playwright = pytest.importorskip("axe_playwright_python.sync_playwright")

WIDTHS = (320, 1280)
SCHEMES = ("light", "dark")
# axe-core's impact levels that fail the audit; "minor" and "moderate" are reported by axe only.
FAILING_IMPACTS = {"serious", "critical"}

LONG_LINE = "x-amz-debug=" + "0123456789abcdef" * 188  # one unbroken 3,000-character token
LONG_URL = "https://docs.example.com/" + "very-long-path-segment/" * 60 + "?query=" + "y" * 400
WIDE_CODE = "aws iam simulate-principal-policy " + " ".join(f"--option-{n}=value-{n}" for n in range(120))
PASTE = (
    "An error occurred (AccessDenied) when calling the GetObject operation: User: arn:aws:iam::111122223333:user/bob "
    f"is not authorized to perform: s3:GetObject on resource: arn:aws:s3:::reports/{'z' * 600} {LONG_LINE} "
    f"see {LONG_URL}"
)
ARTICLE = f"""\
# Troubleshooting long output<a name="troubleshoot_long"></a>

Pastes and logs come in one line\\.

## Access denied by a bucket policy<a name="bucket-policy"></a>

`GetObject` fails with `AccessDenied` when the bucket policy does not allow it\\. The log says
`{LONG_LINE}` and points at <{LONG_URL}>\\.

    {WIDE_CODE}

{LONG_LINE}

| Setting | Value |
| --- | --- |
| `{LONG_LINE[:400]}` | {LONG_URL} |
"""
INDEX = "# Long Guide\n\n## Contents\n+ [Troubleshooting long output](troubleshoot_long.md)\n"


@dataclass
class Site:
    """What the pages need: the person's private links and the member of staff's session."""

    answer: str
    case: str
    case_form: str
    desk_case: str
    staff_session: str


@pytest.fixture
def site(transactional_db, write_guide, django_user_model) -> Site:
    import_content([write_guide("long", {"index.md": INDEX, "troubleshoot_long.md": ARTICLE}, title="Long Guide")])
    escalated = start_diagnosis(PASTE, {"activity": "", "service": ""})
    case = open_case(escalated, name="Pat " + "P" * 190, email="pat@example.com", details=LONG_LINE)
    record_feedback(Section.objects.get(anchor="bucket-policy"), "not_this", escalated)
    unsent = start_diagnosis(PASTE, {"activity": "", "service": ""})
    staff = django_user_model.objects.create_user("staffer", password="pw", is_staff=True)
    client = Client()
    client.force_login(staff)
    client.get("/search/", {"q": PASTE})  # logged, for the insights page
    client.get("/search/", {"q": LONG_LINE})
    return Site(
        answer=f"/troubleshoot/{escalated.token}/",
        case=f"/troubleshoot/{escalated.token}/case/",
        case_form=f"/troubleshoot/{unsent.token}/case/",
        desk_case=f"/desk/cases/{case.reference}/",
        staff_session=client.cookies[django_settings.SESSION_COOKIE_NAME].value,
    )


def public_pages(site: Site) -> dict[str, str]:
    return {
        "home": "/",
        "guide": "/kb/long/",
        "article": "/kb/long/troubleshoot_long/",
        "topics": "/topics/",
        "search with results": "/search/?q=" + PASTE,
        "search with none": "/search/?q=" + LONG_LINE,
        "troubleshoot form": "/troubleshoot/?q=" + PASTE,
        "answer": site.answer,
        "case": site.case,
        "case form": site.case_form,
        # Many short segments: the live server looks a path up on disk, and one long name is an OSError there.
        "404": "/kb/" + "/".join(["no-such-page"] * 200) + "/",
    }


def desk_pages(site: Site) -> dict[str, str]:
    return {"desk queue": "/desk/", "desk case": site.desk_case, "insights": "/desk/insights/"}


def visit(page, url: str) -> None:
    response = page.goto(url)
    assert response is not None and response.status < 500, f"{url}: {response and response.status}"
    # Closed <details> (the answer page's "Your message") take no room until opened; the
    # promise lets the page's toggle handlers run before anything is measured.
    page.evaluate("""() => { document.querySelectorAll('details').forEach(d => d.open = true);
        return new Promise(done => requestAnimationFrame(() => requestAnimationFrame(done))); }""")


def overflow(page) -> int:
    """How many pixels the page is wider than the window (0 when it fits)."""
    return page.evaluate("document.documentElement.scrollWidth - window.innerWidth")


def refused_form(page) -> None:
    """Send a form without its CSRF token, as a page kept open past its cookie would: 403."""
    with page.expect_navigation():
        page.evaluate("""() => { const form = document.createElement('form');
            form.method = 'post'; form.action = '/feedback/'; document.body.append(form); form.submit(); }""")
    assert page.get_by_role("heading", name="That form could not be accepted").is_visible()


def over_the_limit(page, settings) -> None:
    """Search until the rate limit answers 429 (a shared counter may be spent already)."""
    settings.KB_RATE_LIMIT_ENABLED = True
    settings.KB_RATE_LIMITS = {**settings.KB_RATE_LIMITS, "search": "1/d"}
    try:
        statuses = [page.goto("/search/?q=limits").status for _ in range(2)]
    finally:
        settings.KB_RATE_LIMIT_ENABLED = False
    assert statuses[-1] == 429, statuses


def every_page(open_page, site: Site, settings, **options):
    """(name, page) for each page type, the desk's signed in as staff; `options` go to open_page."""
    public, staff = open_page(**options), open_page(session=site.staff_session, **options)
    for name, url in public_pages(site).items():
        visit(public, url)
        yield name, public
    refused_form(public)
    yield "403", public
    over_the_limit(public, settings)
    yield "429", public
    for name, url in desk_pages(site).items():
        visit(staff, url)
        yield name, staff


def test_no_page_is_wider_than_the_window(open_page, site, settings):
    too_wide = [
        f"{name} at {width}px: {excess}px too wide"
        for width in WIDTHS
        for name, page in every_page(open_page, site, settings, width=width)
        if (excess := overflow(page)) > 0
    ]
    assert not too_wide, "\n".join(too_wide)


def test_no_serious_accessibility_violations_in_either_colour_scheme(open_page, site, settings):
    axe = axe_playwright.Axe()
    found = []
    for scheme in SCHEMES:
        for name, page in every_page(open_page, site, settings, scheme=scheme):
            for violation in axe.run(page).response["violations"]:
                if violation["impact"] in FAILING_IMPACTS:
                    targets = [node["target"] for node in violation["nodes"]][:3]
                    found.append(f"{name} ({scheme}): {violation['id']} {violation['help']} at {targets}")
    assert not found, "\n".join(found)
