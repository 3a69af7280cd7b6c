"""Shared pieces of the scripting commands: JSON on stdout, clear errors with a non-zero exit."""
from __future__ import annotations

import json
import os
import sys
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from ..crypto import CredentialDecryptionError
from ..models import SentMessage, Team, TimelineEvent


class JsonCommand(BaseCommand):
    """A command whose ``run(**options)`` returns a JSON-serialisable object printed on stdout.

    ValidationError and CredentialDecryptionError become CommandError (message on stderr, exit 1).
    """

    def run(self, **options) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    def handle(self, *args, **options):
        try:
            result = self.run(**options)
        except ValidationError as err:
            raise CommandError(validation_text(err)) from err
        except CredentialDecryptionError as err:
            raise CommandError(str(err)) from err
        self.stdout.write(json.dumps(result, indent=2, default=str, ensure_ascii=False))


def validation_text(err: ValidationError) -> str:
    if hasattr(err, "error_dict"):
        return "; ".join(f"{field}: {' '.join(msgs)}" for field, msgs in err.message_dict.items())
    return " ".join(err.messages)


def get_team(name: str) -> Team:
    """The team named ``name`` (case-insensitive); CommandError if there is none."""
    try:
        return Team.objects.get(name__iexact=name)
    except Team.DoesNotExist as err:
        raise CommandError(f"No team named {name!r}. Create it with `manage.py create_team`.") from err


def read_secret(*, env_var: str, from_stdin: bool, what: str, required: bool = True) -> str:
    """A secret from stdin (first line) when ``from_stdin``, else from environment variable ``env_var``.

    Secrets are never taken from argv (visible in `ps` and shell history). Raises CommandError when required and missing.
    """
    value = sys.stdin.readline().rstrip("\r\n") if from_stdin else os.environ.get(env_var, "")
    if required and not value:
        raise CommandError(f"No {what}: set the {env_var} environment variable or pass it on stdin with --password-stdin.")
    return value


def sent_message_as_dict(message: SentMessage) -> dict[str, Any]:
    """A SentMessage as a JSON-ready dict (no bodies, no credentials)."""
    return {
        "id": message.pk, "status": message.status, "subject": message.subject, "to": message.to, "cc": message.cc,
        "bcc": message.bcc, "reply_to": message.reply_to, "mailbox": message.mailbox_id, "contact": message.contact.email,
        "message_id": message.message_id, "idempotency_key": str(message.idempotency_key), "attempts": message.attempts,
        "provider": message.provider, "provider_message_id": message.provider_message_id,
        "provider_thread_id": message.provider_thread_id, "error_code": message.error_code,
        "error_message": message.error_message, "attachments": [a.filename for a in message.attachments.all()],
        "created_at": message.created_at, "sent_at": message.sent_at, "failed_at": message.failed_at,
        "due_at": message.due_at, "hold_reason": message.hold_reason, "recipient_results": message.recipient_results,
        "headers": dict(message.headers),
    }


def timeline_event_as_dict(event: TimelineEvent) -> dict[str, Any]:
    """A TimelineEvent as a JSON-ready dict."""
    return {"at": event.created_at, "kind": event.kind, "summary": event.summary,
            "sent_message": event.sent_message_id, "data": event.data}
