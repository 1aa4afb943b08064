"""Secret redaction for anything people paste that the portal stores (search logs, cases).

People paste whole terminal output, which often carries credentials. Redact before
storing, never after: what is not stored cannot leak.
"""

import re

REDACTED = "[REDACTED]"

PATTERNS = [
    # Passwords in URLs: scheme://user:password@host
    (re.compile(r"(?P<keep>\b[a-z][a-z0-9+.-]*://[^\s:/@]*:)[^\s@/]+(?=@)", re.IGNORECASE), r"\g<keep>" + REDACTED),
    # Named secrets: aws_secret_access_key = ..., "SessionToken": "...", password=...
    (
        re.compile(
            # An underscore may precede the name: DB_PASSWORD=, POSTGRES_PASSWORD=.
            r"(?P<keep>(?<![A-Za-z0-9])(?:aws_secret_access_key|aws_session_token|secret_?access_?key|session_?token|"
            r"security_?token|x-amz-security-token|password|passwd|pwd|pw|secret)\b[\"']?\s*[:=]\s*[\"']?)"
            r"[^\s\"'&,;]+",
            re.IGNORECASE,
        ),
        r"\g<keep>" + REDACTED,
    ),
    # Access key ids: long-term (AKIA) and temporary (ASIA), and other AWS id prefixes for keys.
    (re.compile(r"\b(?:AKIA|ASIA|AGPA|AIDA|AROA|ANPA|ANVA|APKA)[A-Z0-9]{12,20}\b"), REDACTED),
    # Session tokens: very long base64 runs.
    (re.compile(r"(?<![A-Za-z0-9+/])[A-Za-z0-9+/]{100,}={0,2}"), REDACTED),
    # Secret access keys: 40 base64 characters, mixing cases or digits.
    (re.compile(r"(?<![A-Za-z0-9+/])(?=[A-Za-z0-9+/]*[0-9+/])(?=[A-Za-z0-9+/]*[a-z])(?=[A-Za-z0-9+/]*[A-Z])"
                r"[A-Za-z0-9+/]{40}(?![A-Za-z0-9+/=])"), REDACTED),
]


def redact(text: str) -> str:
    """`text` with access key ids, secret keys, session tokens and URL passwords replaced."""
    for pattern, replacement in PATTERNS:
        text = pattern.sub(replacement, text)
    return text
