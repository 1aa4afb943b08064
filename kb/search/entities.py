"""AWS entities in text: the actions, API operations, error codes, policy types and services
a section or a pasted error names, and what kind of section a heading and its HTML make.

One extractor serves both sides so that they compare: the importer records what each
section's heading, lead and body name (SectionEntity rows); the query analyser reads the
same entities from a paste. Values are normalised strings such as `action:sts:assumerole`,
`operation:assumerole`, `code:accessdenied` (an `Exception` suffix and a `KMS.` namespace
are dropped; the namespace becomes a service), `policy:permissions boundary`, `service:s3`.
The rules follow AWS naming conventions, never a list of particular errors.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

# Bump when extraction or kinds change: every article is then re-rendered and re-recorded
# at the next import (it is part of the importer's RENDER_VERSION).
VERSION = "3"

# svc:Action in policies and denials; the service is lower case (IAM's form) or capitals
# (SNS:Publish), the action CamelCase (never all capitals, as in "ID:ABC123").
ACTION = re.compile(r"(?<![\w:/.-])([a-z][a-z0-9-]{1,30}|[A-Z][A-Z0-9]{1,9}):(?=[A-Z0-9]*[a-z])([A-Z][A-Za-z0-9]{2,80})\b")
CALLED_OPERATION = re.compile(r"calling the (\w+) operation", re.IGNORECASE)
CAMEL = re.compile(r"\b(?:([A-Z][A-Za-z0-9]{1,20})\.)?([A-Z][a-z0-9]+(?:[A-Z][a-z0-9]*)+)\b")
CAMEL_PART = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|\d+")
# API operations are named verb first (GetObject, AssumeRoleWithSAML): the verbs of AWS APIs.
API_VERBS = frozenset(
    """abort accept activate add allocate apply assign associate assume attach authorize batch cancel change check
    complete confirm copy create deactivate decode decrypt delete deregister describe detach disable disassociate
    enable encrypt estimate export generate get import initiate invite invoke leave list lookup modify move publish
    purchase put re-encrypt reboot receive register reject release remove replace replicate request reset restore
    resync retire revoke rotate run schedule search select send set sign simulate start stop subscribe tag
    terminate test transfer unassign unsubscribe untag update upload validate verify""".split()
)
# Words that make a CamelCase word a failure: error codes and exception names.
FAILURE_WORDS = frozenset(
    """denied invalid expired exception error errors not exceeded malformed unauthorized forbidden mismatch
    missing limit throttling throttled conflict unsupported failed failure fault unrecognized incomplete
    unavailable no such already exists rejected timeout violation incorrect unknown bad validation disabled
    unsupported unprocessable""".split()
)
LABEL_WORDS = frozenset("code message type response id name details info".split())
GENERIC_FAILURES = frozenset("error errors exception fault".split())
# First words of SDK base classes: ClientError, BotoServerError, SdkClientException.
SDK_WORDS = frozenset("client server service sdk boto botocore amazon aws".split())

POLICY_TYPES = [
    # The abbreviations only in capitals: "scp" in a message is usually the copy command.
    (re.compile(r"service control polic(?:y|ies)|(?-i:\bSCPs?\b)", re.IGNORECASE), "service control policy"),
    (re.compile(r"resource control polic(?:y|ies)|(?-i:\bRCPs?\b)", re.IGNORECASE), "resource control policy"),
    (re.compile(r"permissions? boundar(?:y|ies)", re.IGNORECASE), "permissions boundary"),
    (re.compile(r"session polic(?:y|ies)", re.IGNORECASE), "session policy"),
    (re.compile(r"identity[- ]based polic(?:y|ies)", re.IGNORECASE), "identity-based policy"),
    (re.compile(r"resource[- ]based polic(?:y|ies)|bucket polic(?:y|ies)|key polic(?:y|ies)", re.IGNORECASE),
     "resource-based policy"),
    (re.compile(r"trust polic(?:y|ies)", re.IGNORECASE), "trust policy"),
    (re.compile(r"VPC endpoint polic(?:y|ies)", re.IGNORECASE), "VPC endpoint policy"),
]

# Where a service shows in a paste or a page: ARNs, endpoint hosts, SDK packages and
# exception classes, CLI commands, and the "(Service: AmazonS3; ...)" field of Java SDK errors.
SERVICE_PATTERNS = [
    re.compile(r"\barn:aws[\w-]*:([a-z0-9-]+):", re.IGNORECASE),
    re.compile(r"\bcom\.amazonaws\.services\.([a-z0-9]+)\b"),
    re.compile(r"\bsoftware\.amazon\.awssdk\.services\.([a-z0-9]+)\b"),
    re.compile(r"@aws-sdk/client-([a-z0-9-]+)"),
    re.compile(r"aws-sdk-go(?:-v2)?/service/([a-z0-9]+)"),
    re.compile(r"\b([A-Za-z0-9]+)\.Client\.exceptions\b"),
    re.compile(r"\bclient\(\s*['\"]([a-z0-9-]+)['\"]"),
    re.compile(r"\(Service:\s*([A-Za-z0-9 ]+?)\s*[;,)]"),
]
# The CLI: `aws [--option value ...] COMMAND subcommand`; s3api is S3's low-level command.
CLI = re.compile(r"(?:^|[\s$>`'\"])aws (?:--[\w-]+(?:[ =](?!-)\S+)? )*([a-z][a-z0-9-]+) [a-z][a-z0-9-]+", re.MULTILINE)
CLI_COMMANDS = {"s3api": "s3"}
# Endpoint hosts: the service is the last label before the region (bucket.s3.dualstack.us-east-1...,
# bucket.s3-us-west-2..., sts.amazonaws.com).
HOST = re.compile(r"\b((?:[a-z0-9-]+\.)*[a-z0-9-]+)\.amazonaws\.com(?:\.cn)?\b", re.IGNORECASE)
REGION_LABEL = re.compile(r"^[a-z]{2}(?:-gov)?-[a-z]+-\d$")
REGION_SUFFIX = re.compile(r"-[a-z]{2}(?:-gov)?-[a-z]+-\d$")
HOST_QUALIFIERS = frozenset("dualstack fips".split())
SERVICE_PREFIXES = re.compile(r"^(?:Amazon|AWS)(?=[A-Z0-9 ])")
ALIASES: dict[str, str] = tomllib.loads(
    (Path(__file__).with_name("data") / "service-aliases.toml").read_text(encoding="utf-8"))["aliases"]
# Hosts and commands that name no service.
NOT_SERVICES = frozenset("aws www docs console signin portal amazon configure help".split())

# Zones of a section, strongest first: what its heading names, what its first words
# name, what its body only mentions.
HEADING, LEAD, BODY = "h", "l", "b"
LEAD_WORDS = 40

KINDS = ("troubleshooting", "procedure", "concept", "example", "reference", "tutorial")
TROUBLE_HEADING = re.compile(
    r"\b(?:errors?|fail(?:s|ed|ure)?|denied|can(?:'|no)t|unable|not working|troubleshoot\w*|issues?|problems?)\b"
    r"|^(?:I|I'm|My|Why|When I)\b", re.IGNORECASE
)
REFERENCE_HEADING = re.compile(
    r"^(?:errors|request syntax|response syntax|request parameters|response elements|uri request parameters|"
    r"request body|contents|see also|common (?:errors|parameters)|syntax|parameters|options|quotas)$", re.IGNORECASE
)


@dataclass
class Entities:
    """What a text names; each list holds normalised values without their type prefix."""

    actions: list[str] = field(default_factory=list)
    operations: list[str] = field(default_factory=list)
    codes: list[str] = field(default_factory=list)
    policy_types: list[str] = field(default_factory=list)
    services: list[str] = field(default_factory=list)

    def values(self) -> list[str]:
        """Typed values (`code:accessdenied`), as SectionEntity stores them."""
        return [f"{kind}:{value}" for kind, values in self.by_kind().items() for value in values]

    def by_kind(self) -> dict[str, list[str]]:
        return {"action": self.actions, "operation": self.operations, "code": self.codes,
                "policy": self.policy_types, "service": self.services}

    def __bool__(self) -> bool:
        return any(self.by_kind().values())


def split_camel(word: str) -> list[str]:
    return CAMEL_PART.findall(word)


def looks_like_code(word: str) -> bool:
    """Error codes are CamelCase compounds naming a failure (AccessDenied, NotFoundException),
    unlike field labels such as StatusCode, RequestId or ErrorMessage, and unlike an SDK's
    catch-all classes (S3Exception, AmazonServiceException), which name no failure."""
    parts = [p.lower() for p in split_camel(word)]
    if len(parts) < 2:
        return False
    if any(p in FAILURE_WORDS and p not in GENERIC_FAILURES for p in parts):
        return True
    return "error" in parts and parts[-1] not in LABEL_WORDS and parts[0] not in SDK_WORDS


def looks_like_operation(word: str) -> bool:
    """Verb first, and not a field label (RequestId, GetObjectOutput's fields)."""
    parts = [p.lower() for p in split_camel(word)]
    return (len(parts) >= 2 and parts[0] in API_VERBS and parts[-1] not in LABEL_WORDS
            and not looks_like_code(word))


def code_value(code: str) -> str:
    """AccessDeniedException and AccessDenied are one code; KMS.NotFoundException is NotFound."""
    bare = code.rsplit(".", 1)[-1].lower()
    return bare.removesuffix("exception") or bare


def service_value(name: str) -> str:
    """A service as its prefix in actions and ARNs: "AWSSecurityTokenService" and "STS" are sts."""
    name = SERVICE_PREFIXES.sub("", name.strip()).replace(" ", "").lower() or name.lower()
    return ALIASES.get(name, name)


def action_value(service: str, name: str) -> str:
    """sts:AssumeRole and STS:AssumeRole are one action."""
    return f"{service_value(service)}:{name.lower()}"


def host_service(host: str) -> str:
    labels = [REGION_SUFFIX.sub("", label) for label in host.lower().split(".")
              if not REGION_LABEL.match(label) and label not in HOST_QUALIFIERS]
    return labels[-1] if labels else ""


def extract(text: str) -> Entities:
    """The entities a text names, each once, in order of appearance."""
    found = Entities()
    named_actions = set()
    for match in ACTION.finditer(text):
        service, name = service_value(match.group(1)), match.group(2)
        named_actions.add(name)
        _add(found.actions, action_value(service, name))
        _add(found.services, service)
        _add(found.operations, name.lower())  # the action's API operation (or its permission-only name)
    for match in CALLED_OPERATION.finditer(text):
        _add(found.operations, match.group(1).lower())
    for match in CAMEL.finditer(text):
        namespace, word = match.groups()
        if word in named_actions:
            continue
        if looks_like_code(word):
            _add(found.codes, code_value(word))
            if namespace and not looks_like_code(namespace):
                _add(found.services, service_value(namespace))
        elif looks_like_operation(word):
            _add(found.operations, word.lower())
    found.policy_types = [label for pattern, label in POLICY_TYPES if pattern.search(text)]
    named = [service_value(m.group(1)) for pattern in SERVICE_PATTERNS for m in pattern.finditer(text)]
    named += [host_service(m.group(1)) for m in HOST.finditer(text)]
    named += [CLI_COMMANDS.get(m.group(1), m.group(1)) for m in CLI.finditer(text)]
    for service in named:
        if service and service not in NOT_SERVICES and not service.isdigit():
            _add(found.services, service)
    return found


def section_entities(title: str, text: str) -> dict[str, str]:
    """Typed value -> the strongest zone of the section that names it (HEADING, LEAD or BODY)."""
    body = text[len(title):] if text.startswith(title) else text
    words = body.split()
    lead, rest = " ".join(words[:LEAD_WORDS]), " ".join(words[LEAD_WORDS:])
    zones: dict[str, str] = {}
    for zone, part in ((HEADING, title), (LEAD, lead), (BODY, rest)):
        for value in extract(part).values():
            zones.setdefault(value, zone)
    return zones


def section_kind(title: str, html: str, article_slug: str, article_title: str, level: int) -> str:
    """What a section is, from its heading, its article and the shape of its HTML."""
    article = f"{article_slug} {article_title}".lower()
    heading = title.strip()
    if article_slug.startswith("API_") or REFERENCE_HEADING.match(heading) or (
            html.count("<tr") >= 4 and len(html) < 40 * html.count("<tr")):
        return "reference"
    if "troubleshoot" in article:
        return "troubleshooting"
    if "tutorial" in article or "tutorial" in heading.lower():
        return "tutorial"
    if TROUBLE_HEADING.search(heading):
        return "troubleshooting"
    if "example" in heading.lower() or ("example" in article and "<pre" in html):
        return "example"
    first, *rest = heading.lower().split(" ", 1)
    if "<ol" in html or (first.endswith("ing") and rest) or heading.lower().startswith(("to ", "how ")):
        return "procedure"
    return "concept"


def _add(values: list[str], value: str) -> None:
    if value not in values:
        values.append(value)
