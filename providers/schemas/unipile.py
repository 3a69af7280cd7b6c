"""Unipile request/response schemas.

Source: the Unipile API reference, "Send an email" (https://developer.unipile.com/docs/send-email;
``POST https://{subdomain}.unipile.com:{port}/api/v1/emails``, operation MailsController_sendMail):
the multipart/form-data schema, the 201 response and the typed error schemas.

The document's schema describes objects and arrays inside a multipart/form-data body; we send
each such field (``from``, ``to``, ``cc``, ``bcc``, ``custom_headers``, ``tracking_options``) as a
JSON-encoded form value, the encoding Unipile's published examples and SDK use. The fake decodes
them and validates the result against this schema.
"""

DEFAULT_BASE_URL = "https://api1.unipile.com:13111"  # servers[0] with its default variables

_attendee = {
    "type": "object",
    "properties": {"display_name": {"type": "string"}, "identifier": {"type": "string"}},
    "required": ["identifier"],
}

#: custom_headers[].name: "Must start with 'X-' or 'x-' or be in this list: (Unscribe-List, Reply-To, Content-Type)"
CUSTOM_HEADER_NAME_PATTERN = r"^([Xx]-.+|Unscribe-List|Reply-To|Content-Type)$"
CUSTOM_HEADER_NAMES = ("Unscribe-List", "Reply-To", "Content-Type")

SEND_EMAIL_REQUEST = {
    "type": "object",
    "properties": {
        "account_id": {"type": "string", "minLength": 1},
        "from": {"type": "object", "properties": {"display_name": {"type": "string"}, "identifier": {"type": "string"}}},
        "to": {"type": "array", "items": _attendee},
        "cc": {"type": "array", "items": _attendee},
        "bcc": {"type": "array", "items": _attendee},
        "subject": {"type": "string"},
        "body": {"type": "string"},
        "reply_to": {"type": "string"},
        "custom_headers": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"name": {"type": "string", "pattern": CUSTOM_HEADER_NAME_PATTERN}, "value": {"type": "string"}},
                "required": ["name", "value"],
            },
        },
        "tracking_options": {
            "type": "object",
            "properties": {"opens": {"type": "boolean"}, "links": {"type": "boolean"}, "label": {"type": "string"},
                           "custom_domain": {"type": "string"}},
        },
        "attachments": {"type": "array", "items": {"type": "string"}},
    },
    "required": ["account_id", "to", "body"],
    "additionalProperties": False,
}

#: Fields sent as JSON-encoded form values.
JSON_FIELDS = ("from", "to", "cc", "bcc", "custom_headers", "tracking_options")

SEND_EMAIL_RESPONSE = {
    "type": "object",
    "properties": {"object": {"enum": ["EmailSent"]}, "tracking_id": {"type": "string", "minLength": 1}},
    "required": ["object", "tracking_id"],
}

#: Typed errors of the document: status → every ``type`` it lists.
ERROR_TYPES = {
    401: ("errors/missing_credentials", "errors/multiple_sessions", "errors/invalid_checkpoint_solution",
          "errors/checkpoint_error", "errors/invalid_credentials", "errors/expired_credentials",
          "errors/insufficient_privileges", "errors/disconnected_account", "errors/disconnected_feature",
          "errors/invalid_credentials_but_valid_account_imap", "errors/expired_link", "errors/wrong_account",
          "errors/captcha_not_supported"),
    403: ("errors/account_restricted", "errors/account_mismatch", "errors/insufficient_permissions",
          "errors/session_mismatch", "errors/feature_not_subscribed", "errors/subscription_required",
          "errors/unknown_authentication_context", "errors/action_required", "errors/resource_access_restricted"),
    404: ("errors/resource_not_found", "errors/invalid_resource_identifier"),
    422: ("errors/invalid_account", "errors/invalid_recipient", "errors/no_connection_with_recipient",
          "errors/blocked_recipient", "errors/user_unreachable", "errors/unprocessable_entity",
          "errors/action_already_performed", "errors/invalid_message", "errors/invalid_post",
          "errors/not_allowed_inmail", "errors/insufficient_credits", "errors/cannot_resend_yet",
          "errors/cannot_resend_within_24hrs", "errors/limit_exceeded", "errors/already_invited_recently",
          "errors/cannot_invite_attendee", "errors/parent_mail_not_found", "errors/invalid_reply_subject",
          "errors/invalid_headers", "errors/send_as_denied", "errors/invalid_folder", "errors/invalid_thread",
          "errors/limit_too_high", "errors/unauthorized", "errors/sender_rejected", "errors/recipient_rejected",
          "errors/ip_rejected_by_server", "errors/provider_unreachable", "errors/account_configuration_error",
          "errors/cant_send_message", "errors/realtime_client_not_initialized"),
    500: ("errors/unexpected_error", "errors/provider_error", "errors/authentication_intent_error"),
    503: ("errors/no_client_session", "errors/no_channel", "errors/no_handler", "errors/network_down",
          "errors/service_unavailable"),
    504: ("errors/request_timeout",),
}

ERROR = {
    "type": "object",
    "properties": {"title": {"type": "string"}, "detail": {"type": "string"}, "instance": {"type": "string"},
                   "type": {"type": "string"}, "status": {"type": "number"}},
    "required": ["title", "type", "status"],
}
