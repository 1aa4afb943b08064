"""What a pasted AWS error says, in plain words.

Reads the raw text (the principal and account matter here, unlike in search) and reports
only what the text supports: error codes, the action and operation, the principal and
account, the resource, whether a denial is explicit or implicit and which policy type
the message names, and credential problems. Nothing is guessed.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import asdict, dataclass, field

from kb.search.entities import POLICY_TYPES
from kb.search.query import AnalysedQuery, analyse

PRINCIPAL = re.compile(
    r"\b(?:User|Principal)\s*:\s*(arn:aws[\w-]*:(?:iam|sts)::(?P<account>[^:\s]*):(?P<kind>[\w-]+)/?(?P<name>[^\s\"',]*))",
    re.IGNORECASE,
)
RESOURCE = re.compile(r"\bon resource:?\s*[\"']?(?P<resource>[^\s\"',;]+(?:\s+[^\s\"',;]+)?)", re.IGNORECASE)
ACCOUNT_ID = re.compile(r"^\d{12}$")

EXPLICIT = re.compile(r"explicit(?:ly)?\s+den(?:y|ied)", re.IGNORECASE)
IMPLICIT = re.compile(
    r"\bno [\w -]{0,40}(?:polic(?:y|ies)|boundar(?:y|ies)) allows?\b|implicit(?:ly)?\s+den(?:y|ied)", re.IGNORECASE
)
NOT_AUTHORIZED = re.compile(r"not authori[sz]ed to perform|AccessDenied|access denied|UnauthorizedOperation|"
                            r"Forbidden|\b403\b", re.IGNORECASE)
CREDENTIAL_PROBLEMS = [
    ("expired", re.compile(r"ExpiredToken|token (?:has |is )?expired|expired token|session (?:has )?expired|"
                           r"request has expired|RequestExpired", re.IGNORECASE)),
    ("invalid", re.compile(r"InvalidClientTokenId|security token included in the request is invalid|"
                           r"InvalidAccessKeyId|access key id you provided does not exist|UnrecognizedClient",
                           re.IGNORECASE)),
    ("signature", re.compile(r"SignatureDoesNotMatch|signature we calculated does not match|"
                             r"IncompleteSignature", re.IGNORECASE)),
    ("mfa", re.compile(r"\bMFA\b|multi-factor|MultiFactorAuthentication", re.IGNORECASE)),
]
SIGN_IN = re.compile(r"\b(?:can(?:no|')t|unable to|fail(?:ed|s)? to) (?:sign|log) ?in\b|sign-in|"
                     r"password|console login|authentication information (?:is|you entered is) incorrect|ログイン",
                     re.IGNORECASE)

CREDENTIAL_WORDS = {
    "expired": "The credentials or token have expired.",
    "invalid": "The credentials were not recognised (invalid or unknown access key or token).",
    "signature": "The request signature does not match: the secret key or signing method is wrong.",
    "mfa": "Multi-factor authentication (MFA) is involved.",
}


@dataclass
class ErrorAnalysis:
    codes: list[str] = field(default_factory=list)
    actions: list[str] = field(default_factory=list)
    operations: list[str] = field(default_factory=list)
    statuses: list[str] = field(default_factory=list)
    service: str = ""
    principal: dict = field(default_factory=dict)
    account: str = ""
    resource: str = ""
    access_denied: bool = False
    denial: str = ""  # "explicit", "implicit" or "" when the text does not say
    policy_types: list[str] = field(default_factory=list)
    credential_problems: list[str] = field(default_factory=list)
    sign_in: bool = False
    summary: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return asdict(self)

    @property
    def signature(self) -> str:
        """Groups errors of the same kind, whoever hit them and on which resource."""
        parts = [
            ",".join(sorted(c.lower() for c in self.codes)),
            ",".join(sorted(a.lower() for a in self.actions)),
            ",".join(sorted(o.lower() for o in self.operations)),
            self.denial,
            ",".join(sorted(self.policy_types)),
            ",".join(sorted(self.credential_problems)),
        ]
        return hashlib.sha256("|".join(parts).encode()).hexdigest()[:32]

    @property
    def is_specific(self) -> bool:
        """Whether the signature says anything (a vague question has no error signature)."""
        return bool(self.codes or self.actions or self.operations or self.policy_types or self.credential_problems)


def explain(text: str, query: AnalysedQuery | None = None) -> ErrorAnalysis:
    """Analyse a pasted error or a described symptom."""
    query = query or analyse(text)
    raw = query.raw
    result = ErrorAnalysis(
        codes=query.codes, actions=query.actions, operations=query.operations, statuses=query.statuses
    )
    principal = PRINCIPAL.search(raw)
    if principal:
        result.principal = _describe_principal(principal.group("kind"), principal.group("name"), principal.group(1))
        if ACCOUNT_ID.match(principal.group("account")):
            result.account = principal.group("account")
    resource = RESOURCE.search(raw)
    if resource:
        result.resource = resource.group("resource").split(" because")[0].split(" with")[0].rstrip(".")
    result.service = _service(query)
    result.access_denied = bool(NOT_AUTHORIZED.search(raw))
    result.denial = "explicit" if EXPLICIT.search(raw) else "implicit" if IMPLICIT.search(raw) else ""
    result.policy_types = [label for pattern, label in POLICY_TYPES if pattern.search(raw)]
    result.credential_problems = [name for name, pattern in CREDENTIAL_PROBLEMS if pattern.search(raw)]
    result.sign_in = bool(SIGN_IN.search(raw))
    result.summary = _summary(result)
    return result


def _describe_principal(kind: str, name: str, arn: str) -> dict:
    kinds = {
        "user": "IAM user", "role": "IAM role", "assumed-role": "assumed-role session",
        "federated-user": "federated user", "root": "root user", "group": "IAM group",
    }
    described = {"type": kinds.get(kind.lower(), kind), "arn": arn}
    if kind.lower() == "assumed-role" and "/" in name:
        described["role"], described["session"] = name.split("/", 1)
    elif name:
        described["name"] = name
    return described


def _service(query: AnalysedQuery) -> str:
    """The service the error is about: its action's, else the first the text names besides
    IAM and STS (a principal's ARN says who called, not which service refused)."""
    entities = query.entities
    if entities.actions:
        return entities.actions[0].split(":", 1)[0]
    return next((s for s in entities.services if s not in ("iam", "sts")), "")


def _summary(a: ErrorAnalysis) -> list[str]:
    lines = []
    if a.codes:
        lines.append(f"The error code is {', '.join(a.codes)}.")
    who = a.principal.get("type", "")
    if a.principal:
        name = a.principal.get("name") or a.principal.get("role", "")
        who = f"the {a.principal['type']}" + (f" {name}" if name else "")
        if a.account:
            who += f" in account {a.account}"
    if a.actions and a.access_denied:
        subject = who[:1].upper() + who[1:] if who else "The caller"
        target = f" on {a.resource}" if a.resource else ""
        lines.append(f"{subject} is not allowed to perform {', '.join(a.actions)}{target}.")
    elif a.access_denied:
        lines.append("The request was denied" + (f" for {who}" if who else "") + ".")
    if a.operations:
        lines.append(f"It happened when calling the {', '.join(a.operations)} operation.")
    if a.denial == "explicit":
        where = f" in a {' / '.join(a.policy_types)}" if a.policy_types else ""
        lines.append(f"A policy explicitly denies it{where}: an explicit deny overrides any allow.")
    elif a.denial == "implicit":
        where = f"no {' / '.join(a.policy_types)}" if a.policy_types else "no policy"
        lines.append(f"It is an implicit denial: {where} allows the action.")
    elif a.policy_types:
        lines.append(f"The message mentions a {', '.join(a.policy_types)}.")
    lines.extend(CREDENTIAL_WORDS[p] for p in a.credential_problems)
    if a.sign_in and not a.access_denied:
        lines.append("This is about signing in.")
    if a.statuses:
        lines.append(f"HTTP status {', '.join(a.statuses)}.")
    return lines
