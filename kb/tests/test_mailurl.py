"""EMAIL_URL parsing (portal/mailurl.py): what each form of the URL configures."""

import pytest
from django.core.exceptions import ImproperlyConfigured

from portal.mailurl import email_settings

SMTP = "django.core.mail.backends.smtp.EmailBackend"


def test_starttls_with_credentials_quoted_in_the_url():
    assert email_settings("smtp://user%40example.com:p%40ss:w@mail.example.com:587?tls=1&timeout=5") == {
        "EMAIL_BACKEND": SMTP, "EMAIL_HOST": "mail.example.com", "EMAIL_PORT": 587,
        "EMAIL_HOST_USER": "user@example.com", "EMAIL_HOST_PASSWORD": "p@ss:w",
        "EMAIL_USE_TLS": True, "EMAIL_USE_SSL": False, "EMAIL_TIMEOUT": 5,
    }


@pytest.mark.parametrize(
    ("url", "port", "tls", "ssl"),
    [("smtp://relay", 25, False, False), ("smtp://relay?tls=true", 587, True, False),
     ("smtps://relay", 465, False, True), ("smtp://relay:2525?ssl=1", 2525, False, True)],
)
def test_ports_default_by_security(url, port, tls, ssl):
    parsed = email_settings(url)
    assert (parsed["EMAIL_PORT"], parsed["EMAIL_USE_TLS"], parsed["EMAIL_USE_SSL"]) == (port, tls, ssl)
    assert parsed["EMAIL_HOST_USER"] == parsed["EMAIL_HOST_PASSWORD"] == "" and parsed["EMAIL_TIMEOUT"] == 10


def test_console_prints_instead_of_sending():
    assert email_settings("console://")["EMAIL_BACKEND"] == "django.core.mail.backends.console.EmailBackend"


@pytest.mark.parametrize(
    ("url", "message"),
    [("smtp://", "needs a host"), ("http://relay", "must start smtp://"), ("smtp://relay?tls=yes", "takes tls=1"),
     ("smtp://relay?verify=0", "takes tls=1"), ("smtp://relay?tls=1&ssl=1", "not both"),
     ("smtp://relay?timeout=soon", "whole seconds"), ("smtp://relay:port", "not a valid URL")],
)
def test_a_bad_url_names_the_variable_and_the_problem(url, message):
    with pytest.raises(ImproperlyConfigured, match=message) as error:
        email_settings(url)
    assert "EMAIL_URL" in str(error.value)
