"""Secret redaction for anything people paste that the portal stores (search logs, diagnoses, cases).

People paste whole terminal output, which often carries credentials. Redact before
storing, never after: what is not stored cannot leak. Our own patterns cover AWS
credentials, named secrets, URL passwords, Authorization headers, PEM private keys and
Google API keys; every other kind is found by detect-secrets' plugins (Yelp's rule set:
GitHub, Slack, Stripe, JWT, Azure storage, ...), each run only where its hints appear.
Over-redacting is a failure too: request ids, ARNs and account ids must survive.
"""

import re
from functools import cache
from typing import NamedTuple

from detect_secrets.plugins.artifactory import ArtifactoryDetector
from detect_secrets.plugins.azure_storage_key import AzureStorageKeyDetector
from detect_secrets.plugins.base import BasePlugin
from detect_secrets.plugins.basic_auth import BasicAuthDetector
from detect_secrets.plugins.discord import DiscordBotTokenDetector
from detect_secrets.plugins.github_token import GitHubTokenDetector
from detect_secrets.plugins.gitlab_token import GitLabTokenDetector
from detect_secrets.plugins.high_entropy_strings import Base64HighEntropyString
from detect_secrets.plugins.jwt import JwtTokenDetector
from detect_secrets.plugins.keyword import DENYLIST as KEYWORDS
from detect_secrets.plugins.keyword import KeywordDetector
from detect_secrets.plugins.mailchimp import MailchimpDetector
from detect_secrets.plugins.openai import OpenAIDetector
from detect_secrets.plugins.pypi_token import PypiTokenDetector
from detect_secrets.plugins.sendgrid import SendGridDetector
from detect_secrets.plugins.slack import SlackDetector
from detect_secrets.plugins.square_oauth import SquareOAuthDetector
from detect_secrets.plugins.stripe import StripeDetector
from detect_secrets.plugins.telegram_token import TelegramBotTokenDetector
from detect_secrets.plugins.twilio import TwilioKeyDetector

REDACTED = "[REDACTED]"

# A PEM private key spans lines: keep its BEGIN/END lines (they say what was pasted), drop
# the body. A paste cut off before END loses everything after BEGIN.
PRIVATE_KEY_BLOCK = re.compile(
    r"(?P<begin>-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----)(?:.*?(?P<end>-----END [A-Z0-9 ]*-----)|.*)",
    re.DOTALL,
)

PATTERNS = [
    # Passwords in URLs: scheme://user:password@host
    (re.compile(r"(?P<keep>\b[a-z][a-z0-9+.-]*://[^\s:/@]*:)[^\s@/]+(?=@)", re.IGNORECASE), r"\g<keep>" + REDACTED),
    # Authorization headers (Basic, Bearer, token, ...): the credential after the scheme.
    (
        re.compile(r"(?P<keep>\b(?:proxy-)?authorization\b[\"']?\s*[:=]\s*[\"']?"
                   r"(?:(?:basic|bearer|digest|token|bot|apikey|negotiate|ntlm)\s+)?)[^\s\"',;]+", re.IGNORECASE),
        r"\g<keep>" + REDACTED,
    ),
    # Named secrets: aws_secret_access_key = ..., "SessionToken": "...", password=..., AccountKey=...
    (
        re.compile(
            # An underscore may precede the name: DB_PASSWORD=, POSTGRES_PASSWORD=.
            r"(?P<keep>(?<![A-Za-z0-9])(?:aws_secret_access_key|aws_session_token|secret_?access_?key|session_?token|"
            r"security_?token|auth_?token|x-amz-security-token|password|passwd|pwd|pw|secret|account_?key|shared_?access_?key)"
            r"\b[\"']?\s*[:=]\s*[\"']?)[^\s\"'&,;]+",
            re.IGNORECASE,
        ),
        r"\g<keep>" + REDACTED,
    ),
    # Access key ids: long-term (AKIA) and temporary (ASIA), and other AWS id prefixes for keys
    # (ABIA, ACCA and A3T from detect-secrets' AWS rule).
    (re.compile(r"\b(?:AKIA|ASIA|AGPA|AIDA|AROA|ANPA|ANVA|APKA|ABIA|ACCA|A3T[A-Z0-9])[A-Z0-9]{12,20}\b"), REDACTED),
    # Google API keys (detect-secrets has no rule for them).
    (re.compile(r"\bAIza[0-9A-Za-z_-]{35}(?![0-9A-Za-z_-])"), REDACTED),
    # Session tokens: very long base64 runs.
    (re.compile(r"(?<![A-Za-z0-9+/])[A-Za-z0-9+/]{100,}={0,2}"), REDACTED),
    # Secret access keys: 40 base64 characters, mixing cases or digits.
    (re.compile(r"(?<![A-Za-z0-9+/])(?=[A-Za-z0-9+/]*[0-9+/])(?=[A-Za-z0-9+/]*[a-z])(?=[A-Za-z0-9+/]*[A-Z])"
                r"[A-Za-z0-9+/]{40}(?![A-Za-z0-9+/=])"), REDACTED),
]

# Tuned above detect-secrets' 4.5: a 42-character role name scores 4.3, a random 40-character
# key about 4.9 (random strings shorter than about 30 characters rarely pass). Random ids
# score as high (an S3 extended request id, 5.3): ID_CONTEXT keeps those by their name.
ENTROPY_LIMIT = 4.6
ENTROPY_MIN_LENGTH = 24
EDGES = " \t\r\n\"'=:"

# Quoted high-entropy strings that are ids, not secrets: what names them comes just before.
ID_CONTEXT = re.compile(
    r"(?:\bid|[-_ ]id(?:-\d)?|request|etag|hash|digest|checksum|sha\d*|md5|fingerprint|marker|cursor|nonce|version)"
    r"[\"']?\s*[:=]?\s*[\"']?$",
    re.IGNORECASE,
)
# Shapes an entropy check must never take for a secret: UUIDs, hex digests and numbers.
NOT_A_SECRET = re.compile(r"[0-9a-f-]+", re.IGNORECASE)

# The keyword rule's own names ("api_?key", "password", ...) spelt out: a line that names
# none of them cannot match it, and it is the slowest rule by far.
KEYWORD_HINTS = tuple(sorted({name.replace("_?", sep) for name in KEYWORDS for sep in ("", "_")}))


class Rule(NamedTuple):
    """A detect-secrets plugin and the substrings one of its finds must contain.

    Running every plugin over 20 KB of terminal output costs ~25 ms; a plugin runs only
    when one of its hints is in the text (a substring test, microseconds), and on the lines
    holding one when it reads a line at a time.
    """

    plugin: BasePlugin
    hints: tuple[str, ...]
    per_line: bool = False  # keyword and quoted-string rules: the line is the context
    fold_case: bool = False  # hints are lower case and match text of any case


@cache
def rules() -> tuple[Rule, ...]:
    """The detect-secrets plugins in use, with their hints.

    Left out: AWS (PATTERNS find its key ids, and its secret keys anywhere, not only quoted
    near a name), IP addresses and hex strings (request ids and digests are not secrets here),
    private keys (that rule finds only the BEGIN line; PRIVATE_KEY_BLOCK drops the key),
    IBM, Cloudant and SoftLayer (keyword rules slower than all the others together), and
    npm (its rule takes the rest of the line; `_authToken=` is a named secret in PATTERNS).
    Each rule has a sample in kb/tests/test_redaction.py's corpus.
    """
    return (
        Rule(ArtifactoryDetector(), ("AKC", "AP")),
        Rule(AzureStorageKeyDetector(), ("AccountKey=",)),
        Rule(BasicAuthDetector(), ("://",)),
        Rule(DiscordBotTokenDetector(), ("",)),  # no fixed part; one cheap pass over the text
        Rule(GitHubTokenDetector(), ("ghp_", "gho_", "ghu_", "ghs_", "ghr_")),
        Rule(GitLabTokenDetector(), ("gl", "GR1348941")),
        Rule(JwtTokenDetector(), ("eyJ",)),
        Rule(KeywordDetector(), KEYWORD_HINTS, per_line=True, fold_case=True),
        Rule(MailchimpDetector(), ("-us",)),
        Rule(OpenAIDetector(), ("T3BlbkFJ",)),
        Rule(PypiTokenDetector(), ("pypi-",)),
        Rule(SendGridDetector(), ("SG.",)),
        Rule(SlackDetector(), ("xox", "hooks.slack.com"), fold_case=True),
        Rule(SquareOAuthDetector(), ("sq0csp-",)),
        Rule(StripeDetector(), ("k_live_",)),
        Rule(TelegramBotTokenDetector(), (":AA",)),  # a bot token's secret half starts with AA
        Rule(TwilioKeyDetector(), ("AC", "SK")),
        Rule(Base64HighEntropyString(limit=ENTROPY_LIMIT), ('"', "'"), per_line=True),
    )


def redact(text: str) -> str:
    """`text` with credentials replaced by REDACTED and everything around them kept."""
    text = PRIVATE_KEY_BLOCK.sub(_private_key_block, text)
    for secret in sorted(_plugin_finds(text), key=len, reverse=True):
        # Whole tokens only: a short keyword value ("abc") must not eat the same letters
        # elsewhere, and some rules report only a token's prefix (GitHub's "ghp", GitLab's
        # "glpat"), so the rest of the token goes with it.
        text = re.sub(rf"(?<![A-Za-z0-9]){re.escape(secret)}[\w+/=-]*", REDACTED, text)
    for pattern, replacement in PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def _private_key_block(match: re.Match) -> str:
    return f"{match['begin']}\n{REDACTED}\n{match['end'] or ''}".rstrip("\n")


def _plugin_finds(text: str) -> set[str]:
    """Values the plugins take for secrets (no verification: nothing leaves the host)."""
    folded, lines, found = text.lower(), text.splitlines(), set()
    for rule in rules():
        if not _hinted(rule, text, folded):
            continue
        for chunk in [line for line in lines if _hinted(rule, line)] if rule.per_line else [text]:
            for value in rule.plugin.analyze_string(chunk):
                value = value.strip(EDGES)  # some rules take the space or quote around a token
                if value and value != REDACTED and _random_enough(rule.plugin, value, chunk):
                    found.add(value)
    return found


def _hinted(rule: Rule, text: str, folded: str | None = None) -> bool:
    haystack = (folded if folded is not None else text.lower()) if rule.fold_case else text
    return any(hint in haystack for hint in rule.hints)


def _random_enough(plugin: BasePlugin, value: str, line: str) -> bool:
    """A quoted string is a secret when long and random, and not an id named as one."""
    if not isinstance(plugin, Base64HighEntropyString):
        return True
    if len(value) < ENTROPY_MIN_LENGTH or NOT_A_SECRET.fullmatch(value):
        return False
    start = line.find(value)
    if ID_CONTEXT.search(line[max(0, start - 40):start].rstrip("\"' ")):
        return False
    return plugin.calculate_shannon_entropy(value) > plugin.entropy_limit
