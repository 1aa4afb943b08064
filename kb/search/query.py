"""Query analysis: what a typed question or a pasted error message is about.

`analyse()` strips what varies between occurrences of an error (account ids, ARNs'
variable parts, request ids, UUIDs, timestamps, IPs, hex, long numbers, redactions) and
keeps what identifies it (error codes, actions, operations, HTTP statuses, wording).
Its output is plain tokens: raw user text never reaches an engine's query language.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field

from .entities import ACTION, CALLED_OPERATION, Entities, extract, looks_like_code, split_camel

MAX_QUERY_CHARS = 20_000
# A paste can be long; its first words carry the error, the rest is mostly context.
MAX_TERMS = 40
MAX_PHRASES = 12
PHRASE_WORDS = 2

STOPWORDS = frozenset(
    """a about above after again against all am an and any are as at be because been before being
    below between both but by can could did do does doing down during each few for from further had
    has have having he her here hers him his how i if in into is it its itself just me more most my
    no nor not of off on once only or other our out over own same she should so some such than that
    the their them then there these they this those through to too under until up very was we were
    what when where which while who whom why will with would you your yours also may might must
    shall get got use using used please thanks hi hello error errors occurred occur failed fail
    failure message exception caught following when calling""".split()
)
# Words too common to start or end a phrase: matching them costs much and tells little.
FUNCTION_WORDS = frozenset("the a an to of in on is are was be by for and or it this that with as at from".split())
# Words in an error that only locate it (log levels, generic prefixes), never explain it.
NOISE_WORDS = frozenset("fatal warn warning info debug trace null none true false proxy sdk attempt count".split())

ARN = re.compile(r"\barn:aws[\w-]*:([\w-]*):[^\s:]*:[^\s:]*:([^\s\"',;)\]}]*)", re.IGNORECASE)
UUID = re.compile(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b", re.IGNORECASE)
TIMESTAMP = re.compile(
    r"\b\d{4}-\d{2}-\d{2}(?:[T ]\d{1,2}:\d{2}(?::\d{2})?(?:\.\d+)?(?:Z|[+-]\d{2}:?\d{2})?)?\b"
    r"|\b\d{1,2}:\d{2}:\d{2}(?:\.\d+)?\b"
)
IPV4 = re.compile(r"\b\d{1,3}(?:\.\d{1,3}){3}(?::\d+)?\b")
# Full or compressed ("::") IPv6: runs of hex groups with at least two colons.
IPV6 = re.compile(r"(?<![\w:])(?=[0-9a-f:]*::|(?:[0-9a-f]{1,4}:){2})[0-9a-f]{0,4}(?::[0-9a-f]{0,4}){2,7}(?![\w:])",
                  re.IGNORECASE)
HTTP_DATE = re.compile(
    r"\b(?:mon|tue|wed|thu|fri|sat|sun)[a-z]*,?\s+\d{1,2}[ -](?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*"
    r"[ -]\d{2,4}(?:\s+\d{1,2}:\d{2}(?::\d{2})?)?(?:\s*(?:gmt|utc|z))?",
    re.IGNORECASE,
)
ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")
EMAIL = re.compile(r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+\b")
REGION = re.compile(r"\b(?:us|eu|ap|sa|ca|me|af|il|cn)-(?:gov-)?[a-z]+-\d\b")
HEX = re.compile(r"\b0x[0-9a-f]+\b|\b(?=[0-9a-f]*\d)(?=[0-9a-f]*[a-f])[0-9a-f]{8,}\b", re.IGNORECASE)
# Request ids, host ids, encoded messages: long runs mixing letters and digits.
OPAQUE = re.compile(r"(?<![\w:])(?=[A-Za-z0-9+/=_-]*\d)(?=[A-Za-z0-9+/=_-]*[A-Za-z])[A-Za-z0-9+/=_-]{16,}(?![\w:])")
# Placeholders people put in place of their own ids. Template variables such as
# ${AWS::AccountId} or ${ACCOUNT_ID} are placeholders too; IAM policy variables
# (${aws:username}) are not: they are what a question is about.
REDACTION = re.compile(
    r"\*{2,}|<[A-Za-z_ -]{1,40}>|\[(?:obfuscated|redacted|masked)\]|\$\{(?:AWS::[^}]{0,60}|[A-Z][A-Z0-9_]{0,60})\}"
    r"|\b[xX]{3,}\b|\bREDACTED\b",
)
SOURCE_PATH = re.compile(r"[\w./\\-]+\.(?:py|rb|js|ts|go|java|cs|php|kt|scala)(?::\d+)?\b")
LONG_NUMBER = re.compile(r"\b\d{4,}\b")

ERROR_CODE = re.compile(r"\b(?:[A-Z][A-Za-z0-9]*\.)?[A-Z][a-z0-9]+(?:[A-Z][a-z0-9]*)+\b")
STATUS = re.compile(r"(?:status(?:\s*code)?|statuscode|http/\d(?:\.\d)?)\W{0,3}([1-5]\d\d)\b", re.IGNORECASE)
BARE_STATUS = re.compile(r"\b(4\d\d|5\d\d)\b")
WORD = re.compile(r"[^\W_]+(?:['’][^\W_]+)?", re.UNICODE)
CJK = re.compile(r"[\u3040-\u30ff\u3400-\u9fff\uac00-\ud7af]")


@dataclass
class AnalysedQuery:
    """A query as understood: the signals it carries and the terms to search for."""

    raw: str
    cleaned: str
    terms: list[str] = field(default_factory=list)
    phrases: list[str] = field(default_factory=list)
    codes: list[str] = field(default_factory=list)
    actions: list[str] = field(default_factory=list)
    operations: list[str] = field(default_factory=list)
    statuses: list[str] = field(default_factory=list)
    entities: Entities = field(default_factory=Entities)
    is_error: bool = False

    @property
    def is_empty(self) -> bool:
        return not self.terms

    def understood(self) -> str:
        """A short human-readable statement of what will be searched for."""
        parts = []
        if self.codes:
            parts.append("error " + ", ".join(self.codes))
        if self.actions:
            parts.append("action " + ", ".join(self.actions))
        if self.operations:
            parts.append("operation " + ", ".join(self.operations))
        if self.statuses:
            parts.append("HTTP " + ", ".join(self.statuses))
        signals = {p.lower() for p in self.codes + self.operations}
        words = [t for t in self.terms if t not in signals]
        if words:
            parts.append("words: " + " ".join(words[:20]))
        return "; ".join(parts)


def printable(text: str, *, lines: bool = True) -> str:
    """The text with line breaks as LF (spaces without `lines`) and every other control
    character (NUL included) a space: they never carry meaning in an error message."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    keep = "\n\t" if lines else ""
    return "".join(ch if ch.isprintable() or ch in keep else " " for ch in text)


def clean_text(text: str) -> str:
    """Normalise Unicode and drop terminal colour codes and control characters (line breaks become spaces)."""
    return printable(ANSI_ESCAPE.sub("", unicodedata.normalize("NFKC", text[:MAX_QUERY_CHARS])), lines=False)


def strip_noise(text: str) -> str:
    """Replace what varies between occurrences of an error with spaces."""
    text = ARN.sub(lambda m: f" {m.group(1)} {_arn_resource_type(m.group(1), m.group(2))} ", text)
    for pattern in (EMAIL, UUID, HTTP_DATE, TIMESTAMP, IPV6, IPV4, SOURCE_PATH, REDACTION, REGION, OPAQUE, HEX):
        text = pattern.sub(" ", text)
    return text


def _arn_resource_type(service: str, resource: str) -> str:
    """`role` in arn:aws:iam::1:role/x; S3 ARNs have no type (arn:aws:s3:::bucket/key)."""
    if service.lower() == "s3" or ("/" not in resource and ":" not in resource):
        return ""
    return re.split(r"[/:]", resource, maxsplit=1)[0]


def tokens(text: str) -> list[str]:
    """Lower-case word tokens; CamelCase words also yield their parts (InvalidClientTokenId -> invalid client ...)."""
    out: list[str] = []
    for match in WORD.finditer(text):
        word = match.group().replace("’", "'")
        if CJK.search(word):
            out.extend(ch for ch in word if CJK.match(ch))
            continue
        lower = word.lower()
        out.append(lower)
        parts = split_camel(word) if word.isalnum() else []
        if len(parts) > 1:
            out.extend(p.lower() for p in parts)
    return out


def _is_term(token: str) -> bool:
    if token in STOPWORDS or token in NOISE_WORDS:
        return False
    if token.isdigit():
        return False
    return len(token) > 1 or bool(CJK.match(token))


def analyse(text: str) -> AnalysedQuery:
    """Understand a query: a few words typed by a person, or a pasted error of any length."""
    raw = clean_text(text or "")
    cleaned = re.sub(r"\s+", " ", strip_noise(raw)).strip()
    query = AnalysedQuery(raw=raw, cleaned=cleaned)
    query.actions = _unique(f"{m.group(1)}:{m.group(2)}" for m in ACTION.finditer(cleaned))
    query.operations = _unique(m.group(1) for m in CALLED_OPERATION.finditer(cleaned))
    action_names = {a.split(":", 1)[1] for a in query.actions}
    query.codes = _unique(
        code for code in ERROR_CODE.findall(cleaned)
        if code not in action_names and code not in query.operations and looks_like_code(code.split(".")[-1])
    )
    # Entities come from the raw text (ARNs and endpoint hosts name services) less the
    # poster's placeholders: "Request ID:XXX" names no action.
    query.entities = extract(REDACTION.sub(" ", raw))
    query.statuses = _unique(STATUS.findall(cleaned) or (BARE_STATUS.findall(cleaned) if query.codes else []))
    query.is_error = bool(query.codes or query.actions or query.operations or query.statuses) or len(cleaned) > 80

    searchable = LONG_NUMBER.sub(" ", cleaned)
    query.terms = _unique(t for t in tokens(searchable) if _is_term(t))[:MAX_TERMS]
    # Runs of adjacent words reward sections that quote the error's wording verbatim.
    words = [w.lower() for w in WORD.findall(searchable) if not CJK.search(w)]
    runs = zip(*(words[i:] for i in range(PHRASE_WORDS)))
    query.phrases = _unique(
        " ".join(run) for run in runs
        if run[0] not in FUNCTION_WORDS and run[-1] not in FUNCTION_WORDS and any(_is_term(w) for w in run)
        and not any(w.isdigit() for w in run)
    )[:MAX_PHRASES]
    return query


def _unique(items) -> list:
    return list(dict.fromkeys(items))
