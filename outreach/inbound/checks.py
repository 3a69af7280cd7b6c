"""System checks of the inbound feature (run by ``manage.py check``; registered in OutreachConfig.ready)."""
from __future__ import annotations

from django.conf import settings
from django.core import checks


@checks.register(checks.Tags.security, deploy=True)
def public_base_url_check(app_configs=None, **kwargs):
    """OUTREACH_PUBLIC_BASE_URL is required in production, on https: every outgoing message's
    one-click unsubscribe link (RFC 8058) is built from it."""
    url = settings.OUTREACH_PUBLIC_BASE_URL
    if not url:
        return [checks.Error("OUTREACH_PUBLIC_BASE_URL is not set: outgoing mail needs it for its one-click unsubscribe link.",
                             hint="Set it to the public https address of this site, e.g. https://outreach.example.com.",
                             id="outreach.E101")]
    if not settings.DEBUG and not url.startswith("https://"):
        return [checks.Error("OUTREACH_PUBLIC_BASE_URL must be an https:// URL in production (RFC 8058 one-click links).",
                             id="outreach.E102")]
    return []
