"""Fixtures for the provider contract suite: settings for talking to the fakes on 127.0.0.1 and
the parametrisation of each provider's case lists. Rows come from ``tests.factories`` (the one
set of factories) and the ``team`` fixture of ``tests/conftest.py``.

The fakes are started per test (a ThreadingHTTPServer takes milliseconds) with a fresh API key,
so rate-limiter state and recorded requests never leak between tests.
"""
from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def provider_settings(settings):
    """Fakes live on 127.0.0.1 over http; retries fast; short but realistic timeouts."""
    settings.OUTREACH_ALLOW_PRIVATE_PROVIDER_URLS = True
    settings.OUTREACH_HTTP_CONNECT_TIMEOUT = 2.0
    settings.OUTREACH_HTTP_READ_TIMEOUT = 5.0
    settings.OUTREACH_RETRY_BASE_SECONDS = 0.01
    settings.OUTREACH_RETRY_MAX_SECONDS = 0.05
    settings.OUTREACH_SEND_MAX_ATTEMPTS = 5
    return settings


def pytest_generate_tests(metafunc):
    """Parametrise ``error_case``, ``missing_id_case`` and ``unsupported_case`` from the test class' lists."""
    for fixture, attribute in (("error_case", "error_cases"), ("missing_id_case", "missing_id_cases"),
                               ("unsupported_case", "unsupported_cases")):
        if fixture in metafunc.fixturenames:
            cases = getattr(metafunc.cls, attribute, [])
            metafunc.parametrize(fixture, cases, ids=[c.id for c in cases])
