"""OpenMail request/response schemas.

Source: the OpenMail API documentation, page "Send email" (index
https://openmail-docs-cc-replies.mintlify.site/llms.txt; ``POST https://api.openmail.sh/v1/inboxes/{id}/send``,
operationId sendEmail):
requestBody application/json and multipart/form-data schemas, 200 response, Error schema.
"""

DEFAULT_BASE_URL = "https://api.openmail.sh"
MAX_ATTACHMENTS_BYTES = 25 * 1024 * 1024  # "File attachments (max 25 MB total per email)"

_fields = {
    "to": {"type": "string", "format": "email"},
    "subject": {"type": "string", "minLength": 1, "maxLength": 998},
    "body": {"type": "string", "minLength": 1, "maxLength": 100000},
    "bodyHtml": {"type": "string", "maxLength": 500000},
    "threadId": {"type": "string"},
    "includeQuote": {"type": "boolean"},
    "replyTo": {"type": "string", "format": "email"},
}

SEND_EMAIL_JSON_REQUEST = {
    "type": "object",
    "required": ["to", "subject", "body"],
    "properties": dict(_fields),
    "additionalProperties": False,
}

#: multipart/form-data: the same fields plus ``attachments`` (binary parts). The fake validates the
#: text fields of a multipart body against this schema with attachments removed.
SEND_EMAIL_MULTIPART_REQUEST = {
    "type": "object",
    "required": ["to", "subject", "body"],
    "properties": {**_fields, "attachments": {"type": "array", "items": {"type": "string"}}},
    "additionalProperties": False,
}

SEND_EMAIL_RESPONSE = {
    "type": "object",
    "properties": {
        "messageId": {"type": "string"},
        "threadId": {"type": "string"},
        "providerMessageId": {"type": "string"},
        "status": {"enum": ["pending", "sent", "failed"]},
    },
}

ERROR = {"type": "object", "properties": {"error": {"type": "string"}, "message": {"type": "string"}}}
