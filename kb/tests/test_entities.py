"""AWS entities (kb/search/entities.py): what a pasted error or a page names, normalised so
that both sides compare; where in a section it is named; what kind of section it is.

Pure functions, no database. Inputs are errors as people paste them from the CLI, the
SDKs and CloudTrail; the extractor's promise is that a paste and the section about it
yield the same values (`code:accessdenied`, `service:sts`).
"""

import pytest

from kb.search.entities import BODY, HEADING, LEAD, LEAD_WORDS, extract, section_entities, section_kind

DENIED = (
    "An error occurred (AccessDenied) when calling the AssumeRole operation: User: "
    "arn:aws:iam::123456789012:user/dev is not authorized to perform: sts:AssumeRole "
    "on resource: arn:aws:iam::123456789012:role/Admin"
)


# What a paste names


def test_denial_names_the_action_its_operation_the_code_and_services():
    found = extract(DENIED)
    assert found.actions == ["sts:assumerole"]
    # Named twice (the action and the called operation), recorded once.
    assert found.operations == ["assumerole"]
    assert found.codes == ["accessdenied"]
    assert set(found.services) == {"sts", "iam"}  # the action's service, and the ARNs'
    assert "action:sts:assumerole" in found.values()


def test_cli_error_names_the_called_operation_and_the_code():
    found = extract(
        "An error occurred (ExpiredToken) when calling the AssumeRole operation: "
        "The security token included in the request is expired"
    )
    assert found.operations == ["assumerole"]
    assert found.codes == ["expiredtoken"]
    assert found.actions == []  # no svc:Action in the text


@pytest.mark.parametrize(
    "paste, code, service",
    [
        ("KMS.NotFoundException: Key 'alias/app-data' does not exist", "notfound", "kms"),
        ("DynamoDB.ConditionalCheckFailedException: The conditional request failed", "conditionalcheckfailed", "dynamodb"),
        ("s3.Client.exceptions.NoSuchKey: An error occurred (NoSuchKey)", "nosuchkey", "s3"),
    ],
)
def test_an_exception_namespace_is_the_service_not_part_of_the_code(paste, code, service):
    found = extract(paste)
    assert found.codes == [code]
    assert found.services == [service]


@pytest.mark.parametrize(
    "arn, service",
    [
        ("arn:aws:s3:::amzn-s3-demo-bucket/report.csv", "s3"),
        ("arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab", "kms"),
        ("arn:aws-cn:lambda:cn-north-1:123456789012:function:resize", "lambda"),
        ("arn:aws-us-gov:iam::123456789012:role/deploy", "iam"),
    ],
)
def test_an_arn_names_its_service(arn, service):
    assert extract(f"on resource: {arn}").services == [service]


@pytest.mark.parametrize(
    "text, service",
    [
        ('Could not connect to the endpoint URL: "https://sts.amazonaws.com/"', "sts"),
        ("PUT https://amzn-s3-demo-bucket.s3.us-east-1.amazonaws.com/report.csv", "s3"),
        ("Could not connect to the endpoint URL: https://dynamodb.us-gov-west-1.amazonaws.com/", "dynamodb"),
        ("https://lambda.cn-north-1.amazonaws.com.cn/2015-03-31/functions", "lambda"),
    ],
)
def test_an_endpoint_host_names_its_service(text, service):
    assert extract(text).services == [service]


@pytest.mark.parametrize(
    "paste",
    [
        "com.amazonaws.services.s3.model.AmazonS3Exception: Access Denied (Service: Amazon S3; Status Code: 403; "
        "Error Code: AccessDenied; Request ID: 8D2E3F4A5B6C7D8E)",
        "Access Denied (Service: AmazonS3; Status Code: 403; Error Code: AccessDenied; Request ID: 8D2E3F4A5B6C7D8E)",
    ],
)
def test_java_sdk_error_names_service_and_code(paste):
    found = extract(paste)
    assert "s3" in found.services
    assert "accessdenied" in found.codes


@pytest.mark.parametrize(
    "text, service",
    [
        ("$ aws s3api put-object --bucket amzn-s3-demo-bucket --key a.txt --body a.txt", "s3"),  # s3api is S3
        ("`aws lambda invoke --function-name resize out.json`", "lambda"),
        ("import { LambdaClient, InvokeCommand } from '@aws-sdk/client-lambda';", "lambda"),
        ('github.com/aws/aws-sdk-go-v2/service/dynamodb', "dynamodb"),
        ("kms = boto3.client('kms')", "kms"),
    ],
)
def test_cli_commands_and_sdk_packages_name_their_service(text, service):
    assert extract(text).services == [service]


@pytest.mark.parametrize("text", ["$ aws configure set region us-east-1", "https://console.aws.amazon.com/iam/home"])
def test_cli_setup_and_console_links_name_no_service(text):
    assert extract(text).services == []


@pytest.mark.parametrize(
    "message, policy",
    [
        ("is not authorized to perform: s3:GetObject on resource: \"arn:aws:s3:::amzn-s3-demo-bucket/a.txt\" "
         "because no permissions boundary allows the s3:GetObject action", "permissions boundary"),
        ("is not authorized to perform: s3:GetObject on resource: \"arn:aws:s3:::amzn-s3-demo-bucket/a.txt\" "
         "with an explicit deny in a service control policy", "service control policy"),
        ("is not authorized to perform: kms:Decrypt because no session policy allows the kms:Decrypt action",
         "session policy"),
        ("is not authorized to perform: sqs:SendMessage because no identity-based policy allows the "
         "sqs:SendMessage action", "identity-based policy"),
        ("with an explicit deny in a resource-based policy", "resource-based policy"),
    ],
)
def test_denial_names_the_policy_type_that_decided(message, policy):
    assert extract(f"User: arn:aws:iam::123456789012:user/dev {message}").policy_types == [policy]


def test_scp_the_copy_command_is_no_policy():
    # Only the capitals are the abbreviation: "scp" in a paste is usually the copy command.
    assert extract("scp ./app.tar.gz ec2-user@10.0.0.5:/tmp  Permission denied (publickey)").policy_types == []
    assert extract("Check the SCPs attached to the account").policy_types == ["service control policy"]


# Normalisation


@pytest.mark.parametrize("pair", [("AccessDenied", "AccessDeniedException"), ("ExpiredToken", "ExpiredTokenException")])
def test_an_exception_suffix_makes_no_other_code(pair):
    short, long = pair
    assert extract(short).codes == extract(long).codes == [short.lower()]
    # A paste naming both still has one code, so a section about either matches it once.
    assert extract(f"{long}: {short}").codes == [short.lower()]


def test_action_operation_and_service_are_lower_case_whatever_the_casing():
    # Policies write SNS:Publish and sns:Publish alike; sections and pastes must meet.
    assert extract("SNS:Publish").values() == extract("sns:Publish").values() == [
        "action:sns:publish", "operation:publish", "service:sns"
    ]


@pytest.mark.parametrize("label", ["StatusCode", "RequestId", "ErrorMessage", "ErrorCode", "ErrorType"])
def test_field_labels_are_not_error_codes(label):
    assert extract(f'{{"{label}": "403"}}').codes == []


def test_request_id_label_is_not_an_operation():
    paste = "END RequestId: 1a2b3c\nREPORT RequestId: 1a2b3c Duration: 3003.12 ms\nTask timed out after 3.00 seconds"
    assert extract(paste).operations == []


@pytest.mark.parametrize("text", [
    "is not authorized to perform: execute-api:Invoke",
    "arn:aws:execute-api:us-east-1:123456789012:a1b2c3/prod/GET/items",
    "https://a1b2c3.execute-api.us-east-1.amazonaws.com/prod/items",
])
def test_execute_api_is_api_gateways_service_prefix(text):
    assert "execute-api" in extract(text).services


@pytest.mark.parametrize("host", [
    "amzn-s3-demo-bucket.s3.dualstack.us-east-1.amazonaws.com",
    "amzn-s3-demo-bucket.s3-us-west-2.amazonaws.com",
])
def test_other_s3_endpoint_forms_name_s3(host):
    assert extract(f"Could not connect to the endpoint URL: https://{host}/a.txt").services == ["s3"]


@pytest.mark.parametrize("name, service", [
    ("AWSSecurityTokenService", "sts"),
    ("AmazonIdentityManagement", "iam"),
    ("AmazonDynamoDBv2", "dynamodb"),
])
def test_java_sdk_v1_service_names_give_the_service_prefix(name, service):
    assert service in extract(f"(Service: {name}; Status Code: 403; Error Code: AccessDenied)").services


def test_java_sdk_v2_error_names_its_service_and_no_service_as_a_code():
    found = extract(
        "software.amazon.awssdk.services.s3.model.S3Exception: Access Denied "
        "(Service: S3, Status Code: 403, Request ID: 8D2E3F4A5B6C7D8E)"
    )
    assert found.services == ["s3"]
    assert "s3" not in found.codes


# Zones of a section


def section(title: str, body: str) -> dict[str, str]:
    """section_entities() as the importer calls it: a section's text starts with its heading."""
    return section_entities(title, f"{title}\n{body}")


def test_heading_lead_and_body_zones():
    filler = "word " * LEAD_WORDS
    zones = section(
        "AccessDenied when you call AssumeRole",
        f"The role's trust policy must allow sts:AssumeRole. {filler} KMS.NotFoundException can follow.",
    )
    assert zones["code:accessdenied"] == HEADING
    assert zones["operation:assumerole"] == HEADING
    assert zones["action:sts:assumerole"] == LEAD
    assert zones["policy:trust policy"] == LEAD
    assert zones["code:notfound"] == zones["service:kms"] == BODY


def test_the_lead_is_the_first_forty_words_after_the_heading():
    # The heading's words do not count towards the lead.
    before = "word " * (LEAD_WORDS - 1)
    assert section("Rotating keys", f"{before}ExpiredToken")["code:expiredtoken"] == LEAD
    assert section("Rotating keys", f"{before}word ExpiredToken")["code:expiredtoken"] == BODY


def test_the_strongest_zone_wins():
    filler = "word " * LEAD_WORDS
    zones = section(
        "ExpiredToken errors",
        f"An ExpiredToken or InvalidClientTokenId error means new credentials. {filler} ExpiredToken and InvalidClientTokenId again.",
    )
    assert zones["code:expiredtoken"] == HEADING
    assert zones["code:invalidclienttokenid"] == LEAD


# Kinds of section


@pytest.mark.parametrize(
    "kind, heading, html, article_slug, article_title",
    [
        ("troubleshooting", "Roles in other accounts", "<p>x</p>", "troubleshoot_roles", "Troubleshooting IAM roles"),
        ("troubleshooting", "I can't assume a role", "<p>x</p>", "id_roles", "IAM roles"),
        ("reference", "Request Parameters", "<p>x</p>", "API_AssumeRole", "AssumeRole"),
        # An API page's error list is reference, though "errors" is a troubleshooting word.
        ("reference", "Errors", "<p>x</p>", "kms-keys", "AWS KMS keys"),
        ("procedure", "Rotate access keys", "<ol><li>Create a key</li></ol>", "id_credentials", "Access keys"),
        ("procedure", "To rotate access keys (console)", "<p>x</p>", "id_credentials", "Access keys"),
        ("example", "Example: Deny access outside a Region", "<p>x</p>", "reference_policies", "Policies"),
        ("example", "Read-only access to a bucket", "<pre>{}</pre>", "example_policies", "Example policies"),
        ("tutorial", "Step 1: Create a role", "<p>x</p>", "tutorial_cross-account", "Tutorial: Delegate access"),
        ("concept", "Roles and temporary credentials", "<p>x</p>", "id_roles", "IAM roles"),
    ],
)
def test_section_kind(kind, heading, html, article_slug, article_title):
    assert section_kind(heading, html, article_slug, article_title, 2) == kind


def test_the_ordered_list_makes_a_heading_a_procedure():
    args = ("Rotate access keys", "id_credentials", "Access keys", 2)
    assert section_kind(args[0], "<ol><li>Create a key</li></ol>", *args[1:]) == "procedure"
    assert section_kind(args[0], "<p>Keys should be rotated.</p>", *args[1:]) == "concept"
