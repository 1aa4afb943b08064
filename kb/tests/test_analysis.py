"""The error analyser (kb/guided/analysis.py) on the shapes AWS errors really take.

Messages follow what the CLI, SDKs and the console print; each test says what the text
supports and checks that nothing else is reported.
"""

import re

import pytest

from kb.guided.analysis import explain

ACCOUNT = "123456789012"
USER = f"arn:aws:iam::{ACCOUNT}:user/bob"


def denied(action: str, resource: str, reason: str, *, principal: str = USER, operation: str = "") -> str:
    """An access-denied message as the CLI prints it (the `because`/`with` reason included)."""
    prefix = f"An error occurred (AccessDenied) when calling the {operation} operation: " if operation else ""
    return f"{prefix}User: {principal} is not authorized to perform: {action} on resource: {resource} {reason}"


# AWS names the policy type in its messages exactly as the analyser labels it.
POLICY_TYPES = [
    "service control policy", "permissions boundary", "session policy", "identity-based policy",
    "resource-based policy", "VPC endpoint policy",
]


def assert_grounded(text: str, analysis) -> None:
    """Every concrete value the summary states (ids, ARNs, actions, codes) is in the pasted text,
    and policy types or a denial kind appear in the summary only when they were recognised."""
    summary = " ".join(analysis.summary)
    for value in re.findall(r"\b\d{12}\b|arn:aws[^\s,]*|\b[a-z0-9-]+:[A-Z]\w+", summary):
        assert value.rstrip(".") in text, f"summary states {value!r}, which the text does not contain"
    for code in analysis.codes:
        assert code in text
    for label in POLICY_TYPES:
        if label not in analysis.policy_types:
            assert label not in summary
    if not analysis.denial:
        assert "explicit" not in summary.lower() and "implicit" not in summary.lower()


@pytest.mark.parametrize("label", POLICY_TYPES)
def test_explicit_deny_names_the_policy_type(label):
    article = "an" if label[0] in "aeiouAEIOU" else "a"
    text = denied("s3:GetObject", '"arn:aws:s3:::reports/q1.csv"', f"with an explicit deny in {article} {label}",
                  operation="GetObject")
    a = explain(text)
    assert (a.access_denied, a.denial, a.policy_types) == (True, "explicit", [label])
    assert (a.codes, a.actions, a.operations) == (["AccessDenied"], ["s3:GetObject"], ["GetObject"])
    assert any("explicitly denies" in line and label in line for line in a.summary), a.summary
    assert_grounded(text, a)


@pytest.mark.parametrize("label", POLICY_TYPES)
def test_implicit_deny_names_the_policy_type(label):
    text = denied("sqs:SendMessage", f"arn:aws:sqs:us-east-1:{ACCOUNT}:orders",
                  f"because no {label} allows the sqs:SendMessage action")
    a = explain(text)
    assert (a.access_denied, a.denial, a.policy_types) == (True, "implicit", [label])
    assert a.actions == ["sqs:SendMessage"]
    assert a.resource == f"arn:aws:sqs:us-east-1:{ACCOUNT}:orders"
    assert any("implicit denial" in line and label in line for line in a.summary), a.summary
    assert_grounded(text, a)


@pytest.mark.parametrize(
    "arn, expected",
    [
        (f"arn:aws:iam::{ACCOUNT}:user/bob", {"type": "IAM user", "name": "bob"}),
        (f"arn:aws:iam::{ACCOUNT}:role/Deployer", {"type": "IAM role", "name": "Deployer"}),
        (f"arn:aws:sts::{ACCOUNT}:assumed-role/ReadOnly/alice@example.com",
         {"type": "assumed-role session", "role": "ReadOnly", "session": "alice@example.com"}),
        (f"arn:aws:iam::{ACCOUNT}:root", {"type": "root user"}),
        (f"arn:aws:sts::{ACCOUNT}:federated-user/carol", {"type": "federated user", "name": "carol"}),
    ],
    ids=["user", "role", "assumed-role", "root", "federated-user"],
)
def test_principal_kind_name_and_account(arn, expected):
    text = denied("ec2:StopInstances", f"arn:aws:ec2:eu-west-1:{ACCOUNT}:instance/i-0abc1234def567890",
                  "because no identity-based policy allows the ec2:StopInstances action", principal=arn)
    a = explain(text)
    assert a.principal == {**expected, "arn": arn}
    assert a.account == ACCOUNT
    who = expected.get("name") or expected.get("role") or ""
    assert any(f"{expected['type']} {who}".strip() in line and ACCOUNT in line for line in a.summary), a.summary
    assert_grounded(text, a)


@pytest.mark.parametrize(
    "text, operation, action, code",
    [
        (f"An error occurred (AccessDenied) when calling the AssumeRole operation: User: {USER} is not authorized"
         f" to perform: sts:AssumeRole on resource: arn:aws:iam::{ACCOUNT}:role/Admin",
         "AssumeRole", "sts:AssumeRole", "AccessDenied"),
        ("An error occurred (AccessDenied) when calling the AssumeRoleWithWebIdentity operation: Not authorized"
         " to perform sts:AssumeRoleWithWebIdentity",
         "AssumeRoleWithWebIdentity", "sts:AssumeRoleWithWebIdentity", "AccessDenied"),
        ("An error occurred (InvalidIdentityToken) when calling the AssumeRoleWithSAML operation: Not authorized"
         " to perform sts:AssumeRoleWithSAML",
         "AssumeRoleWithSAML", "sts:AssumeRoleWithSAML", "InvalidIdentityToken"),
    ],
    ids=["AssumeRole", "AssumeRoleWithWebIdentity", "AssumeRoleWithSAML"],
)
def test_assume_role_variants(text, operation, action, code):
    a = explain(text)
    assert (a.codes, a.actions, a.operations) == ([code], [action], [operation])
    assert a.service == "sts"
    assert (a.denial, a.policy_types) == ("", [])
    assert any(f"not allowed to perform {action}" in line for line in a.summary), a.summary
    assert_grounded(text, a)



@pytest.mark.parametrize(
    "written, resource",
    [
        ("arn:aws:s3:::reports/q1.csv", "arn:aws:s3:::reports/q1.csv"),
        ('"arn:aws:s3:::reports/q1.csv"', "arn:aws:s3:::reports/q1.csv"),
    ],
    ids=["bare", "quoted"],
)
def test_resource_bare_or_quoted(written, resource):
    a = explain(denied("s3:GetObject", written, "with an explicit deny in a service control policy"))
    assert a.resource == resource
    assert any(f"s3:GetObject on {resource}." in line for line in a.summary), a.summary


@pytest.mark.parametrize(
    "text, code, problem",
    [
        ("An error occurred (ExpiredToken) when calling the GetCallerIdentity operation: "
         "The security token included in the request is expired", "ExpiredToken", "expired"),
        ("An error occurred (InvalidClientTokenId) when calling the GetCallerIdentity operation: "
         "The security token included in the request is invalid.", "InvalidClientTokenId", "invalid"),
        ("An error occurred (SignatureDoesNotMatch) when calling the ListUsers operation: The request signature "
         "we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing "
         "method. Consult the service documentation for details.", "SignatureDoesNotMatch", "signature"),
        ("An error occurred (AccessDenied) when calling the AssumeRole operation: MultiFactorAuthentication "
         "failed with invalid MFA one time pass code.", "AccessDenied", "mfa"),
    ],
    ids=["ExpiredToken", "InvalidClientTokenId", "SignatureDoesNotMatch", "MFA"],
)
def test_credential_problems(text, code, problem):
    a = explain(text)
    assert a.codes == [code]
    assert a.credential_problems == [problem]
    assert (a.denial, a.policy_types, a.principal, a.resource) == ("", [], {}, "")
    assert_grounded(text, a)


@pytest.mark.parametrize(
    "text",
    [
        "I can't sign in to the AWS Management Console with my IAM user name",
        "Unable to log in to the console: it says my password is wrong",
        "Your authentication information is incorrect. Please try again.",
    ],
    ids=["cant-sign-in", "password", "console-message"],
)
def test_console_sign_in_problems(text):
    a = explain(text)
    assert a.sign_in and not a.access_denied
    assert "This is about signing in." in a.summary
    assert (a.actions, a.principal, a.policy_types, a.denial) == ([], {}, [], "")


@pytest.mark.parametrize(
    "text",
    [
        "How do I rotate the access keys for an IAM user?",
        "what is the difference between a role and a user",
        "",
    ],
)
def test_a_plain_question_yields_nothing(text):
    a = explain(text)
    assert (a.codes, a.actions, a.operations, a.principal, a.account, a.resource) == ([], [], [], {}, "", "")
    assert (a.access_denied, a.denial, a.policy_types, a.credential_problems) == (False, "", [], [])
    assert a.summary == [] and not a.is_specific


@pytest.mark.parametrize(
    "text, access_denied",
    [
        (denied("s3:ListBucket", "arn:aws:s3:::reports", ""), True),
        ("fatal: unable to access 'https://git-codecommit.us-east-1.amazonaws.com/v1/repos/app/': "
         "The requested URL returned error: 403", True),
        ("scp backup.tar.gz ec2-user@203.0.113.25:/tmp/ fails with: Permission denied (publickey).", False),
    ],
    ids=["not-authorized", "http-403", "scp-command"],
)
def test_a_message_that_names_no_policy_type_reports_none(text, access_denied):
    a = explain(text)
    assert a.access_denied is access_denied
    assert (a.denial, a.policy_types) == ("", [])
    assert not any("polic" in line.lower() for line in a.summary), a.summary
    assert_grounded(text, a)


def test_summary_of_a_bare_access_denied_names_only_the_code():
    text = "An error occurred (AccessDenied) when calling the ListBuckets operation: Access Denied"
    a = explain(text)
    assert (a.codes, a.operations) == (["AccessDenied"], ["ListBuckets"])
    assert (a.actions, a.principal, a.resource) == ([], {}, "")
    assert a.summary == [
        "The error code is AccessDenied.",
        "The request was denied.",
        "It happened when calling the ListBuckets operation.",
    ]


SCP_DENIAL = (
    "An error occurred (AccessDenied) when calling the GetObject operation: User: arn:aws:iam::{account}:user/{user}"
    ' is not authorized to perform: s3:GetObject on resource: "arn:aws:s3:::{bucket}/data.csv" with an explicit'
    " deny in a service control policy (Service: Amazon S3; Status Code: 403; Request ID: {request})"
)


def test_signature_ignores_who_where_and_request_ids():
    first = explain(SCP_DENIAL.format(account="123456789012", user="bob", bucket="reports", request="4Z5Q7W8E9R0T1Y2U"))
    second = explain(SCP_DENIAL.format(account="210987654321", user="alice.smith", bucket="invoices-eu",
                                       request="H7K2M9P4Q1R6S3T8"))
    assert first.signature == second.signature
    assert first.account != second.account


@pytest.mark.parametrize(
    "other",
    [
        SCP_DENIAL.replace("(AccessDenied)", "(AllAccessDisabled)"),
        SCP_DENIAL.replace("explicit deny in a service control policy", "explicit deny in a permissions boundary"),
        SCP_DENIAL.replace("with an explicit deny in a service control policy",
                           "because no service control policy allows the s3:GetObject action"),
        SCP_DENIAL.replace("s3:GetObject", "s3:PutObject").replace("GetObject operation", "PutObject operation"),
    ],
    ids=["code", "policy-type", "implicit", "action"],
)
def test_signature_differs_for_a_different_error(other):
    fields = {"account": "123456789012", "user": "bob", "bucket": "reports", "request": "4Z5Q7W8E9R0T1Y2U"}
    assert explain(SCP_DENIAL.format(**fields)).signature != explain(other.format(**fields)).signature
