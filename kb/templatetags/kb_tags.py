"""Filters for printing imported content: heading permalinks and guarded TOC links.

They work on the server so permalinks exist without JavaScript; everything they add is
escaped, and they only pass through HTML that the template already marked safe.
"""

import html
import re
from urllib.parse import urlsplit

from django import template
from django.utils.html import conditional_escape, escape, format_html
from django.utils.safestring import SafeString, mark_safe

from kb.models import Section

register = template.Library()

# A section's own heading is the first heading in its stored HTML (only the article's top
# may have content before it). nh3 serialises well-formed markup and headings cannot
# nest, so the first closing tag of that level ends it.
FIRST_HEADING = re.compile(r"<h([1-6])[\s>].*?</h\1>", re.DOTALL)


@register.filter
def with_permalink(html: str, section: Section) -> SafeString:
    """Set a "#" link to the section's anchor beside the section's heading.

    Heading and link share a wrapper rather than the link going inside the heading, so
    the heading's accessible name stays its title. HTML not already marked safe is
    escaped: this filter never vouches for markup itself.
    """
    html = conditional_escape(html)
    match = FIRST_HEADING.search(html)
    if not section.anchor or not match:
        return html
    link = format_html(
        '<a class="permalink" href="#{}" aria-label="Permalink to: {}" title="Copy link to this section">#</a>',
        section.anchor,
        section.title,
    )
    # Both parts are safe: `html` was escaped or already safe, `link` escapes its values.
    before, heading, after = html[: match.start()], match.group(0), html[match.end() :]
    return mark_safe(f'{before}<div class="section-heading">{heading}{link}</div>{after}')


@register.filter
def web_url(url: str) -> str:
    """The URL when it is http(s), else "": table-of-contents hrefs are stored unsanitised."""
    return url if urlsplit(url.strip()).scheme.lower() in {"http", "https"} else ""


MARK_TAG = re.compile(r"(</?mark>)")


@register.filter
def stored_snippet(value: str) -> SafeString:
    """A snippet read back from storage, made safe again: escape, then mark.

    Stored snippets (a diagnosis's recommendations) lose their SafeString, so every part
    but the literal <mark> tags is unescaped and escaped again here.
    """
    parts = MARK_TAG.split(str(value))
    return mark_safe("".join(part if MARK_TAG.fullmatch(part) else escape(html.unescape(part)) for part in parts))


@register.simple_tag(takes_context=True)
def page_url(context: template.Context, number: int) -> str:
    """This page's query string with another page number, for pagination links."""
    params = context["request"].GET.copy()
    params["page"] = number
    return "?" + params.urlencode()
