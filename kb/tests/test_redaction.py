"""Secret redaction: credentials people paste never reach storage, and the error around them does.

Over-redacting is a failure too: the help desk reads these logs, and an ARN or request id
that became [REDACTED] can no longer be matched to anything.
"""

import base64
import json
import random
import string

import pytest
from django.apps import apps
from django.core import serializers

from kb.models import Case, SearchLog
from kb.redaction import REDACTED, redact
from kb.tests.test_guided import FILES, no_rate_limits, paste  # noqa: F401  (a fixture)

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


# --- The secret corpus: synthetic values shaped like the real ones, made afresh here --------

RNG = random.Random(1207)
ALNUM = string.ascii_letters + string.digits


def rand(length: int, alphabet: str = ALNUM) -> str:
    return "".join(RNG.choice(alphabet) for _ in range(length))


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


JWT = ".".join([
    b64url(json.dumps({"alg": "HS256", "typ": "JWT"}).encode()),
    b64url(json.dumps({"sub": "1234567890", "name": "alice", "iat": 1516239022}).encode()),
    b64url(RNG.randbytes(32)),
])
PEM_BODY = [base64.b64encode(RNG.randbytes(48)).decode() for _ in range(6)]
PEM = "-----BEGIN RSA PRIVATE KEY-----\n" + "\n".join(PEM_BODY) + "\n-----END RSA PRIVATE KEY-----"

# (kind, secret, the line it was pasted in). The first nine are the kinds issue 12 found
# stored; the rest are one sample for each other detect-secrets rule in use.
CORPUS = [
    ("github-token", (gh := "ghp_" + rand(36)), f"remote: Invalid username or password. https://x:{gh}@github.com"),
    ("github-token-bare", (gh2 := "ghp_" + rand(36)), f"GITHUB_TOKEN {gh2} is not valid for this repository"),
    ("slack-webhook", (hook := f"https://hooks.slack.com/services/T{rand(8).upper()}/B{rand(10).upper()}/{rand(24)}"),
     f"curl -X POST {hook} -d @payload.json returned 404"),
    ("slack-bot-token", (xoxb := f"xoxb-{RNG.randrange(10**11, 10**12)}-{RNG.randrange(10**12, 10**13)}-{rand(24)}"),
     f"slack_sdk.errors.SlackApiError: invalid_auth for token {xoxb}"),
    ("jwt-bearer", JWT, f"curl -H 'Authorization: Bearer {JWT}' https://api.example.com/v1/orders"),
    ("opaque-bearer-token", (bearer := rand(32)), f"< HTTP/1.1 401 for Authorization: Bearer {bearer}"),
    ("basic-auth-header", (basic := base64.b64encode(f"deploy:{rand(16)}".encode()).decode()),
     f"> Authorization: Basic {basic}"),
    ("pem-private-key", PEM_BODY[3], f"Could not load the key:\n{PEM}\nexit status 1"),
    ("stripe-key", (stripe := "sk_live_" + rand(24)), f"Invalid API Key provided: {stripe}"),
    ("google-api-key", (google := "AIza" + rand(35, ALNUM + "_-")),
     f"GET https://maps.googleapis.com/maps/api/geocode/json?address=x&key={google} REQUEST_DENIED"),
    ("azure-connection-string", (azure := base64.b64encode(RNG.randbytes(64)).decode()),
     f"DefaultEndpointsProtocol=https;AccountName=reports;AccountKey={azure};EndpointSuffix=core.windows.net"),
    ("gitlab-token", (gl := "glpat-" + rand(20)), f"fatal: Authentication failed using {gl}"),
    ("npm-token", (npm := "npm_" + rand(36)), f"//registry.npmjs.org/:_authToken={npm}"),
    ("openai-key", (oa := f"sk-{rand(20)}T3BlbkFJ{rand(20)}"), f"openai.AuthenticationError: {oa}"),
    ("pypi-token", (pypi := "pypi-AgEIcHlwaS5vcmc" + rand(70)), f"twine upload -p {pypi} dist/*"),
    ("sendgrid-key", (sg := f"SG.{rand(22)}.{rand(43)}"), f"SENDGRID {sg} rejected"),
    ("square-secret", (sq := "sq0csp-" + rand(43)), f"square client secret {sq}"),
    ("telegram-token", (tg := f"{RNG.randrange(10**8, 10**9)}:AA{rand(33)}"), f"bot {tg} unauthorized"),
    ("twilio-key", (tw := "SK" + rand(32, string.ascii_lowercase + string.digits)), f"twilio key {tw}"),
    ("discord-token", (dc := f"M{rand(23)}.{rand(6)}.{rand(27)}"), f"discord login failed {dc}"),
    ("artifactory-token", (af := "AKC" + rand(60)), f"X-JFrog-Art-Api: {af}"),
    ("mailchimp-key", (mc := rand(32, string.ascii_lowercase + string.digits) + "-us6"), f"mailchimp {mc}"),
    ("keyword-in-json", (kw := rand(12)), f'{{"api_key": "{kw}", "region": "eu-west-1"}}'),
    ("aws-secret-in-code", (aws := rand(40, ALNUM + "/+")), f'boto3.client("s3", aws_secret_key="{aws}")'),
    ("quoted-random-string", (ent := rand(40, ALNUM + "+/")), f'{{"data": "{ent}"}}'),
]
REQUEST_ID = "5f1c8a2e-3b4d-4c6e-9f0a-1b2c3d4e5f60"
ROLE_ARN = "arn:aws:iam::123456789012:role/Deploy"
CONTEXT = f"RequestId: {REQUEST_ID} on {ROLE_ARN}"


@pytest.mark.parametrize(("secret", "line"), [pytest.param(s, line, id=kind) for kind, s, line in CORPUS])
def test_every_kind_of_secret_is_redacted_and_ids_beside_it_survive(secret, line):
    redacted = redact(f"{line} {CONTEXT}")
    assert secret not in redacted and REDACTED in redacted
    assert redacted.endswith(CONTEXT)


def test_a_private_key_loses_its_body_and_keeps_its_markers():
    assert redact(f"key:\n{PEM}\ndone") == (
        f"key:\n-----BEGIN RSA PRIVATE KEY-----\n{REDACTED}\n-----END RSA PRIVATE KEY-----\ndone"
    )
    cut_off = redact("-----BEGIN OPENSSH PRIVATE KEY-----\n" + PEM_BODY[0])
    assert PEM_BODY[0] not in cut_off


@pytest.mark.parametrize(
    "text",
    [
        pytest.param('"x-amz-id-2": "pZxj0m5nXg2i4bBk8c/Yh1+YqF3aLpQm9eW6tVuR0sE="', id="extended-request-id"),
        pytest.param('"x-amz-cf-id": "Bi5rMtKdvo8JXfUxHg2_Gr0gnGgUMnT-9uWGe3WbVNx0h_nW4WA2Yg=="', id="cloudfront-id"),
        pytest.param(f'"RequestId": "{REQUEST_ID}"', id="quoted-request-id"),
        pytest.param('"RoleName": "StepFunctionsLambdaRoleForOrderProcessing1"', id="quoted-role-name"),
        pytest.param(f'"Arn": "{ROLE_ARN}", "Account": "123456789012"', id="quoted-arn-and-account"),
        pytest.param("https://cdn.example.com/assets/app.9f86d081884c7d659a2feaa0c55ad015.js", id="hash-in-url"),
        pytest.param('"sha256": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"', id="quoted-digest"),
        pytest.param('"ETag": "d41d8cd98f00b204e9800998ecf8427e"', id="quoted-etag"),
        pytest.param('"ImageId": "ami-0abcdef1234567890", "SubnetId": "subnet-0123456789abcdef0"', id="resource-ids"),
        pytest.param("Error: ERR_OSSL_EVP_UNSUPPORTED (code 0x308010C)", id="error-code"),
        pytest.param("The security token included in the request is invalid. Refresh the token and retry.",
                     id="token-in-words"),
        pytest.param('{"Code": "InvalidClientTokenId", "Type": "Sender"}', id="token-error-code"),
        pytest.param("aws s3 cp s3://my-bucket/2024/03/05/report.csv . --region us-east-1", id="s3-path"),
        pytest.param("2024-03-05T12:00:01.123456Z 7f3e2d1c INFO auth key rotated by operator", id="log-line"),
        pytest.param("git@github.com:org/repo.git ssh://git@github.com/org/repo.git", id="ssh-urls"),
    ],
)
def test_look_alikes_survive(text):
    assert redact(text) == text


# --- Every store: search log, diagnosis, case --------------------------------------------------

STORED_PASTE = f"AccessDenied {CONTEXT} account 123456789012\n" + "\n".join(line for _, _, line in CORPUS)


@pytest.fixture
def guide(db, write_guide) -> None:
    from kb.importer import import_content

    import_content([write_guide("g", FILES)])


def stored_text() -> str:
    return "".join(serializers.serialize("json", m.objects.all()) for m in apps.get_app_config("kb").get_models())


def test_pasted_secrets_are_stored_redacted_everywhere_and_ids_survive(client, guide):
    client.get("/search/", {"q": STORED_PASTE})
    diagnosis = paste(client, STORED_PASTE)
    client.post(f"/troubleshoot/{diagnosis.token}/case/", {"name": "Bob", "email": "bob@example.com",
                                                              "details": STORED_PASTE})
    stored = {"search log": SearchLog.objects.get().query, "diagnosis": diagnosis.error_text,
              "case": Case.objects.get().details}
    everything = stored_text()
    for kind, secret, _ in CORPUS:
        assert json.dumps(secret)[1:-1] not in everything, kind
    for where, text in stored.items():
        for kept in (REQUEST_ID, ROLE_ARN, "123456789012", "AccessDenied"):
            assert kept in text, (where, kept)
