"""Line fixes that turn the AWS-documentation dialect into markdown Python-Markdown reads.

Plain string work on source lines, before Markdown runs (render.py calls it from its
preprocessor): list indentation, blank lines lists need, spaced bold markers, fences.
"""

from __future__ import annotations

import re

FENCE = re.compile(r"^( *)(`{3,}|~{3,})")
LIST_MARKER = re.compile(r"^( *)([+*-]|\d+[.)])( +|$)")
# A code span (left as it is), or `**` pairs with spaces inside them.
SPACED_STRONG = re.compile(r"(`+).+?\1|(?<![\\*])\*\*([ \t]*)([^*\s](?:[^*]*?[^*\s])?)([ \t]*)\*\*(?!\*)")


def closes_fence(line: str, fence: str) -> bool:
    """Whether `line` ends the code block `fence` opened (text may follow it in this dialect)."""
    return line.strip().startswith(fence)


def tighten_strong(line: str) -> str:
    """`** Name **` and `**Name: **value` are bold in the dialect; Markdown wants the
    asterisks against the words, so the spaces move outside them."""
    return SPACED_STRONG.sub(lambda m: m.group(0) if m.group(1) else f"{m[2]}**{m[3]}**{m[4]}", line)


# What a line is to fenced code, as normalise_indentation() reports it.
TEXT, OPENS_FENCE, CODE, CLOSES_FENCE = "text", "opens", "code", "closes"


def normalise_indentation(lines: list[str]) -> list[tuple[str, str]]:
    """Re-indent list content to Python-Markdown's four spaces per level, and say of each
    line whether it is text, code, or a fence opening or closing code.

    The dialect nests lists with 2 or 3 spaces and indents fenced code inside list items
    by 2; Python-Markdown needs 4 for both. Code inside fences keeps its relative indent.
    The result has one entry per source line.
    """
    out: list[tuple[str, str]] = []
    lists = _ListLayout()
    fence: str | None = None
    shift = 0
    for line in lines:
        if fence is not None:
            if shift >= 0:
                placed = " " * shift + line if line.strip() else line
            else:
                placed = line[min(-shift, len(line) - len(line.lstrip(" "))):]
            closing = closes_fence(line, fence)
            out.append((placed, CLOSES_FENCE if closing else CODE))
            fence = None if closing else fence
            continue
        placed, shift = lists.place(line)
        if opening := FENCE.match(line):
            fence = opening.group(2)
        out.append((placed, OPENS_FENCE if opening else TEXT))
    return out


class _ListLayout:
    """Where each line sits among the open list items, one line at a time.

    Python-Markdown also needs a blank line before a list item that follows a paragraph
    line ("Topics:" then "+ item"), or that comes back out of a deeper block (it would
    file the item under the block's first line): such a line gets "\\n" in front.
    """

    def __init__(self) -> None:
        self.open_items: list[int] = []  # source indent of each open list item's marker
        self.previous_blank = True
        self.previous_text = False  # the last line was paragraph text
        self.block_indent = 0  # new indent of the first line after the last blank line

    def place(self, line: str) -> tuple[str, int]:
        """The re-indented line, and how far it moved."""
        if not line.strip(" \t\r"):  # a no-break space is text to Markdown
            self.previous_blank, self.previous_text = True, False
            return line, 0
        indent = len(line) - len(line.lstrip(" "))
        marker = LIST_MARKER.match(line) is not None
        if marker or (self.open_items and indent > 0):
            while self.open_items and self.open_items[-1] >= indent:
                self.open_items.pop()
            new_indent = 4 * len(self.open_items)
            if marker:
                self.open_items.append(indent)
        else:
            if indent == 0 and self.previous_blank:
                self.open_items = []
            new_indent = indent
        blank_before = marker and not self.previous_blank and (self.previous_text or new_indent < self.block_indent)
        if self.previous_blank or blank_before:
            self.block_indent = new_indent
        self.previous_blank = False
        self.previous_text = not (marker or FENCE.match(line) or line.startswith("#"))
        return "\n" * blank_before + " " * new_indent + line[indent:], new_indent - indent
