"""Secret redaction: credentials people paste never reach storage, and the error around them does.

Over-redacting is a failure too: the help desk reads these logs, and an ARN or request id
that became [REDACTED] can no longer be matched to anything.
"""

import pytest

from kb.redaction import REDACTED, redact

SECRET_KEY = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
SESSION_TOKEN = (
    "IQoJb3JpZ2luX2VjEHoaCXVzLWVhc3QtMSJHMEUCIQDp7EXAMPLEtoKEnAbCdEfGhIjKlMnOpQrStUvWxYz0123456789"
    "AbCdEfGhIjKlMnOpQrStUvWxYz0123456789+/AbCdEfGhIjKlMnOpQrStUvWxYz0123456789EXAMPLE=="
)


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        pytest.param("aws_access_key_id = AKIAIOSFODNN7EXAMPLE", "AKIAIOSFODNN7EXAMPLE", id="access-key-id"),
        pytest.param('"AccessKeyId": "ASIAY34FZKBOKMUTVV7A",', "ASIAY34FZKBOKMUTVV7A", id="temporary-key-id"),
        pytest.param(
            "X-Amz-Credential=ASIAY34FZKBOKMUTVV7A%2F20240305%2Fus-east-1%2Fs3%2Faws4_request",
            "ASIAY34FZKBOKMUTVV7A", id="key-id-in-presigned-url",
        ),
        pytest.param(f"aws_secret_access_key = {SECRET_KEY}", SECRET_KEY, id="named-secret-key"),
        pytest.param(f'"SecretAccessKey": "{SECRET_KEY}"', SECRET_KEY, id="json-secret-key"),
        pytest.param(f"the key {SECRET_KEY} was rejected", SECRET_KEY, id="bare-secret-key"),
        pytest.param(f"export AWS_SESSION_TOKEN={SESSION_TOKEN[:60]}", SESSION_TOKEN[:60], id="named-session-token"),
        pytest.param(f'"SessionToken": "{SESSION_TOKEN}"', SESSION_TOKEN, id="json-session-token"),
        pytest.param(f"token {SESSION_TOKEN} expired", SESSION_TOKEN, id="bare-session-token"),
        pytest.param(
            "https://b.s3.amazonaws.com/k?X-Amz-Security-Token=IQoJb3JpZ2luX2VjEHoa%2B%2FabcDEF%3D&X-Amz-Date=1",
            "IQoJb3JpZ2luX2VjEHoa", id="token-in-presigned-url",
        ),
        pytest.param("postgres://admin:s3cr3t-Pw@db.example.com:5432/app", "s3cr3t-Pw", id="url-password"),
        pytest.param("git clone https://deploy:gh%40pass@git.example.com/repo.git", "gh%40pass", id="url-password-encoded"),
        pytest.param(
            "redis://:p4ssw0rd@cache.example.com:6379/0", "p4ssw0rd", id="url-password-without-user",
        ),
        pytest.param("login?user=bob&password=hunter2&next=/", "hunter2", id="password-parameter"),
        pytest.param(
            "docker run -e POSTGRES_PASSWORD=hunter2 postgres:16", "hunter2", id="password-variable",
        ),
    ],
)
def test_secrets_are_redacted(text, secret):
    redacted = redact(text)
    assert secret not in redacted
    assert REDACTED in redacted


def test_redaction_keeps_the_text_around_a_secret():
    text = f"aws_access_key_id=AKIAIOSFODNN7EXAMPLE\naws_secret_access_key={SECRET_KEY}\nregion = eu-west-1"
    assert redact(text) == f"aws_access_key_id={REDACTED}\naws_secret_access_key={REDACTED}\nregion = eu-west-1"


@pytest.mark.parametrize(
    "text",
    [
        "An error occurred (AccessDenied) when calling the AssumeRole operation: User: arn:aws:iam::123456789012:"
        "user/alice is not authorized to perform: sts:AssumeRole on resource: arn:aws:iam::123456789012:role/Deploy",
        "(Service: Amazon S3; Status Code: 403; Error Code: AccessDenied; Request ID: 7B3F3C8D2E1A0B9C; "
        "S3 Extended Request ID: pZxj0m5nXg2i4bBk8c/Yh1+YqF3aLpQm9eW6tVuR0sE=; Proxy: null)",
        "SignatureDoesNotMatch: The request signature we calculated does not match the signature you provided. "
        "Check your AWS Secret Access Key and signing method.",
        "InvalidClientTokenId: The security token included in the request is invalid. "
        "RequestId: 5f1c8a2e-3b4d-4c6e-9f0a-1b2c3d4e5f60",
        "User: arn:aws:sts::123456789012:assumed-role/AWSReservedSSO_AdministratorAccess_1a2b3c4d5e6f7a8b/alice "
        "is not authorized to perform: kms:Decrypt on resource: "
        "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab",
        "arn:aws:iam::123456789012:role/service-role/StepFunctionsLambdaRoleForOrderProcessing1",
        "ETag: 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
        "Error: password authentication failed for user \"postgres\"",
        "An error occurred (ExpiredToken) when calling the GetObject operation: The provided token has expired.",
    ],
)
def test_ordinary_error_text_is_not_redacted(text):
    assert redact(text) == text
