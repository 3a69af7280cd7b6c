"""The error vocabulary (providers/errors.py): two families, three codes that never mix."""
from __future__ import annotations

import pytest

from providers import errors as perr
from providers.netguard import HostNotAllowed


def test_configuration_error_is_not_a_send_outcome():
    assert not issubclass(perr.ConfigurationError, perr.ProviderError)
    assert issubclass(HostNotAllowed, perr.ConfigurationError)
    with pytest.raises(perr.ConfigurationError):
        try:
            raise perr.ConfigurationError("The mailbox has no sender id.", provider="lemlist", field="lemlist_send_user_id")
        except perr.ProviderError:  # pragma: no cover - must not catch it
            pytest.fail("a ConfigurationError was caught as a ProviderError")


def test_vendor_code_our_reason_and_field_are_separate_attributes():
    err = perr.RateLimited("Fully booked.", provider="lemlist", reason="local_rate_limit", retry_after=3.0)
    assert (err.provider_code, err.reason, err.field, err.retry_after) == ("", "local_rate_limit", "", 3.0)
    err = perr.InvalidRequest("Refused.", provider="lemlist", status=400, provider_code="Invalid sendUserId",
                              field="lemlist_send_user_id", body="x" * 3000)
    assert (err.code, err.provider_code, err.reason, err.field) == ("validation", "Invalid sendUserId", "", "lemlist_send_user_id")
    assert len(err.body) == 2000 and str(err) == "Refused."
    assert perr.UnsupportedFeature("No Bcc.", feature="bcc").feature == "bcc"
    assert perr.ConfigurationError("x").code == "configuration" and not perr.ConfigurationError("x").transient


def test_a_detail_belongs_to_the_classes_that_declare_it():
    assert perr.ProviderTimeout("Slow.", retry_after=2.0).retry_after == 2.0
    assert perr.RecipientSuppressed("Bounced.").recipient == ""
    with pytest.raises(TypeError, match="retry_after"):
        perr.InvalidRequest("Refused.", retry_after=1.0)  # only transient errors say when to retry
