"""Query analysis: what `analyse()` keeps of a question or a pasted error, and what it drops.

What varies between two occurrences of the same error must not change what the engines
are asked for; what identifies the error must reach them. Plain unit tests, no database.
"""

import pytest

from kb.search.query import MAX_PHRASES, MAX_QUERY_CHARS, MAX_TERMS, analyse

# A real error with a gap where variable parts of a paste turn up.
ERROR = "An error occurred (AccessDenied) when calling the PutObject operation: {noise} Access Denied"


@pytest.mark.parametrize(
    "noise",
    [
        pytest.param("123456789012", id="account-id"),
        pytest.param("4442587FB7D0A2F9", id="request-id-s3"),
        pytest.param("pZxj0m5nXg2i4bBk8c/Yh1+YqF3aLpQm9eW6tVuR0sE=", id="request-id-extended"),
        pytest.param("7QJ2K9X1ZP3M4N5BV8CW", id="request-id-opaque"),
        pytest.param("5f1c8a2e-3b4d-4c6e-9f0a-1b2c3d4e5f60", id="uuid"),
        pytest.param("5F1C8A2E-3B4D-4C6E-9F0A-1B2C3D4E5F60", id="uuid-upper"),
        pytest.param("2024-03-05T12:34:56Z", id="timestamp-iso"),
        pytest.param("2024-03-05T12:34:56.789+01:00", id="timestamp-iso-offset"),
        pytest.param("2024-03-05 12:34:56,789", id="timestamp-log"),
        pytest.param("20240305T123456Z", id="timestamp-amz-date"),
        pytest.param("[12:34:56]", id="time"),
        pytest.param(
            "Tue, 05 Mar 2024 12:34:56 GMT", id="timestamp-http-date",
        ),
        pytest.param("10.0.12.34", id="ipv4"),
        pytest.param("203.0.113.7:443", id="ipv4-port"),
        pytest.param("2001:0db8:85a3:0000:0000:8a2e:0370:7334", id="ipv6-full"),
        pytest.param(
            "2001:db8:85a3::8a2e:370:7334", id="ipv6-compressed",
        ),
        pytest.param(
            "fe80::1", id="ipv6-link-local",
        ),
        pytest.param("0x7ffd5e8c", id="hex-0x"),
        pytest.param("9f86d081884c7d659a2feaa0c55ad015", id="hex-digest"),
        pytest.param("1709641234567", id="long-number"),
        pytest.param("***", id="placeholder-stars"),
        pytest.param("<ACCOUNT>", id="placeholder-angle"),
        pytest.param("<account_id>", id="placeholder-angle-lower"),
        pytest.param("XXXX", id="placeholder-xxxx"),
        pytest.param("XXXXXXXXXXXX", id="placeholder-x-account"),
        pytest.param("[REDACTED]", id="placeholder-redacted"),
        pytest.param("${AWS::AccountId}", id="placeholder-cfn"),
    ],
)
def test_variable_parts_change_nothing_the_engines_see(noise):
    plain, noisy = analyse(ERROR.format(noise="")), analyse(ERROR.format(noise=noise))
    assert noisy.terms == plain.terms
    assert noisy.understood() == plain.understood()


@pytest.mark.parametrize(
    ("arn", "kept", "dropped"),
    [
        ("arn:aws:iam::123456789012:role/deploy-role", {"iam", "role"}, {"deploy"}),
        ("arn:aws:iam::123456789012:user/division_abc/Bob", {"iam", "user"}, {"division", "abc", "bob"}),
        ("arn:aws:sts::123456789012:assumed-role/Admin/botocore-session-1709641234",
         {"sts", "assumed", "role"}, {"admin", "botocore", "session"}),
        ("arn:aws:lambda:us-east-1:123456789012:function:orders-handler",
         {"lambda", "function"}, {"orders", "handler", "east"}),
        ("arn:aws-us-gov:kms:us-gov-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab",
         {"kms", "key"}, {"gov", "west"}),
        ("arn:aws:s3:::acme-prod-logs", {"s3"}, {"acme", "prod", "logs"}),
        pytest.param(
            "arn:aws:s3:::acme-prod-logs/reports/q1.csv", {"s3"}, {"acme", "prod", "logs", "reports"},
        ),
    ],
)
def test_arns_keep_service_and_resource_type_only(arn, kept, dropped):
    terms = set(analyse(f"AccessDenied on resource: {arn}").terms)
    assert kept <= terms
    assert not dropped & terms
    assert not any(t.isdigit() for t in terms)


@pytest.mark.parametrize(
    ("text", "kind", "signal"),
    [
        ("An error occurred (AccessDenied) when calling the ListBuckets operation: Access Denied",
         "codes", "AccessDenied"),
        ("An error occurred (ExpiredToken) when calling the GetObject operation: The provided token has expired.",
         "codes", "ExpiredToken"),
        ("An error occurred (InvalidClientTokenId) when calling the GetCallerIdentity operation: "
         "The security token included in the request is invalid.", "codes", "InvalidClientTokenId"),
        ("SignatureDoesNotMatch: The request signature we calculated does not match the signature you provided.",
         "codes", "SignatureDoesNotMatch"),
        ("User: arn:aws:iam::123456789012:user/ci is not authorized to perform: sts:AssumeRole on resource: "
         "arn:aws:iam::123456789012:role/deploy", "actions", "sts:AssumeRole"),
        ("User: arn:aws:iam::123456789012:user/ci is not authorized to perform: iam:PassRole", "actions", "iam:PassRole"),
        ("An error occurred (AccessDenied) when calling the AssumeRole operation: Access denied",
         "operations", "AssumeRole"),
        ("An error occurred (ResourceNotFoundException) when calling the GetSecretValue operation: "
         "Secrets Manager can't find the specified secret.", "operations", "GetSecretValue"),
        ("(Service: Amazon S3; Status Code: 403; Error Code: AccessDenied; Request ID: 4442587FB7D0A2F9)",
         "statuses", "403"),
        ("https response error StatusCode: 400, RequestID: 5f1c8a2e-3b4d-4c6e-9f0a-1b2c3d4e5f60",
         "statuses", "400"),
        ("HTTP/1.1 403 Forbidden", "statuses", "403"),
    ],
)
def test_signals_are_recognised(text, kind, signal):
    query = analyse(text)
    assert signal in getattr(query, kind)
    assert query.is_error
    assert signal in query.understood()


@pytest.mark.parametrize(
    ("code", "words"),
    [
        ("AccessDenied", {"access", "denied"}),
        ("ExpiredToken", {"expired", "token"}),
        ("InvalidClientTokenId", {"invalid", "client", "token"}),
        ("SignatureDoesNotMatch", {"signature", "match"}),
    ],
)
def test_error_codes_are_searched_whole_and_by_their_words(code, words):
    # Docs quote the code ("AccessDenied") or spell it out ("access denied"): both must match.
    terms = set(analyse(f"An error occurred ({code}) when calling the GetObject operation").terms)
    assert {code.lower()} | words <= terms


@pytest.mark.parametrize(
    ("text", "wording", "words"),
    [
        ("User: arn:aws:iam::123456789012:user/ci is not authorized to perform: ec2:RunInstances",
         "is not authorized to perform", {"authorized", "perform"}),
        ("User: arn:aws:iam::123456789012:user/ci is not authorized to perform: s3:GetObject "
         "with an explicit deny in a service control policy",
         "explicit deny in a service control policy", {"explicit", "deny", "service", "control", "policy"}),
        ("User: arn:aws:sts::123456789012:assumed-role/ci/run-7 is not authorized to perform: s3:ListBucket "
         "because no identity-based policy allows the s3:ListBucket action",
         "no identity-based policy allows", {"identity", "based", "policy", "allows"}),
    ],
)
def test_error_wording_survives_as_terms_and_phrases(text, wording, words):
    # Every content word is searched, and runs of the wording are kept as phrases so that
    # sections quoting the error outrank those that merely share its words.
    query = analyse(text)
    assert words <= set(query.terms)
    wording = f" {wording.replace('-', ' ')} "
    assert [phrase for phrase in query.phrases if f" {phrase} " in wording], query.phrases


@pytest.mark.parametrize(
    ("paste", "code"),
    [
        ("operation error S3: GetObject, https response error StatusCode: 403, RequestID: 4442587FB7D0A2F9, "
         "HostID: pZxj0m5nXg2i4bBk8c/Yh1+YqF3aLpQm9eW6tVuR0sE=, api error AccessDenied: Access Denied", "AccessDenied"),
        ("{'Error': {'Code': 'AccessDenied', 'Message': 'Access Denied'}, 'ResponseMetadata': {'RequestId': "
         "'4442587FB7D0A2F9', 'HostId': 'abc', 'HTTPStatusCode': 403, 'RetryAttempts': 0}}", "AccessDenied"),
        pytest.param(
            '<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>Sender</Type>'
            "<Code>ExpiredToken</Code><Message>The security token included in the request is expired</Message>"
            "</Error><RequestId>5f1c8a2e-3b4d-4c6e-9f0a-1b2c3d4e5f60</RequestId></ErrorResponse>",
            "ExpiredToken",
            id="sts-xml-body",
        ),
    ],
)
def test_field_labels_are_not_error_codes(paste, code):
    assert analyse(paste).codes == [code]


def test_policy_variables_are_not_placeholders():
    assert "username" in analyse("my ${aws:username} policy variable is not replaced").terms


def test_a_question_is_not_an_error_and_keeps_its_content_words():
    query = analyse("How do I get my secret access key back after I lost it?")
    assert not query.is_error
    assert {"secret", "access", "key", "lost"} <= set(query.terms)
    assert not {"how", "do", "my", "it"} & set(query.terms)


@pytest.mark.parametrize(
    "text",
    ["", "   ", "?!.,;:-*()\"'", "*** <ACCOUNT> XXXX", "\x00\x01\x07\x7f\u200b", "123456789012 10.0.0.1"],
)
def test_text_without_content_words_is_empty(text):
    query = analyse(text)
    assert query.is_empty and query.terms == [] and query.phrases == []


def test_control_characters_separate_words_and_unicode_is_kept():
    query = analyse("Access\x00Denied\x07 ｓｔｓ：ＡｓｓｕｍｅＲｏｌｅ 権限がありません 🔥")
    assert {"access", "denied"} <= set(query.terms)
    assert "sts:AssumeRole" in query.actions  # full-width text is NFKC-normalised
    assert {"権", "限"} <= set(query.terms)


def test_terminal_colour_codes_are_not_part_of_words():
    query = analyse("\x1b[31mAccessDenied\x1b[0m: Access Denied")
    assert query.codes == ["AccessDenied"]
    assert query.terms == analyse("AccessDenied: Access Denied").terms


def test_long_pastes_are_bounded():
    query = analyse("AccessDenied " + " ".join(f"failure{i}" for i in range(5000)))
    assert len(query.raw) == MAX_QUERY_CHARS
    assert len(query.terms) <= MAX_TERMS and len(query.phrases) <= MAX_PHRASES
