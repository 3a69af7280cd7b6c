"""leadlex request/response schemas.

Source: the leadlex API documentation, page "Send Email" (https://docs.leadlex.com, index
https://docs.leadlex.com/llms.txt; ``POST https://data.leadlex.com/functions/v1/api-gateway/v1/email/send``):
Body Parameters, Response, and the Errors table. The document has no machine-readable schema; this one transcribes its
parameter list (``to`` string or array, subject ≤ 998 characters, one of body_html/body_text,
attachments with filename, mime_type and content_base64 or storage_path).
"""

DEFAULT_BASE_URL = "https://data.leadlex.com/functions/v1/api-gateway"

_address_list = {"type": "array", "items": {"type": "string", "minLength": 1}}

SEND_EMAIL_REQUEST = {
    "type": "object",
    "properties": {
        "to": {"oneOf": [{"type": "string", "minLength": 1}, {**_address_list, "minItems": 1}]},
        "subject": {"type": "string", "minLength": 1, "maxLength": 998},
        "body_html": {"type": "string"},
        "body_text": {"type": "string"},
        "cc": _address_list,
        "bcc": _address_list,
        "reply_to": {"type": "string"},
        "contact_id": {"type": "string", "format": "uuid"},
        "deal_id": {"type": "string", "format": "uuid"},
        "thread_id": {"type": "string"},
        "attachments": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "filename": {"type": "string", "minLength": 1},
                    "mime_type": {"type": "string"},
                    "content_base64": {"type": "string", "contentEncoding": "base64"},
                    "storage_path": {"type": "string"},
                },
                "required": ["filename"],
                "oneOf": [{"required": ["content_base64"]}, {"required": ["storage_path"]}],
                "additionalProperties": False,
            },
        },
    },
    "required": ["to", "subject"],
    "anyOf": [{"required": ["body_html"]}, {"required": ["body_text"]}],
    "additionalProperties": False,
}

SEND_EMAIL_RESPONSE = {
    "type": "object",
    "properties": {
        "data": {
            "type": "object",
            "properties": {
                "id": {"type": "string"},
                "thread_id": {"type": "string"},
                "provider": {"enum": ["gmail", "microsoft"]},
                "status": {"enum": ["queued", "sent", "failed"]},
                "sent_at": {"type": "string"},
            },
            "required": ["id", "status"],
        }
    },
    "required": ["data"],
}

#: The Errors table: HTTP status → code.
ERROR_CODES = {
    400: "validation_error",
    401: "invalid_key",
    403: "insufficient_permissions",
    409: "idempotency_conflict",
    429: "rate_limited",
    502: "provider_error",
}
