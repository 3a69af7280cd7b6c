"""lemlist request/response schemas.

Sources: the lemlist API reference (https://developer.lemlist.com, index https://developer.lemlist.com/llms.txt),
pages "Send Email" (``POST https://api.lemlist.com/api/inbox/email``, requestBody application/json) and
"Connect Email Account" (``POST https://api.lemlist.com/api/user/email-accounts``).
"""

DEFAULT_BASE_URL = "https://api.lemlist.com/api"  # servers[0].url of both documents

SEND_EMAIL_REQUEST = {
    "type": "object",
    "properties": {
        "sendUserId": {"type": "string", "description": "Sender user ID"},
        "sendUserEmail": {"type": "string", "description": "Sender email address"},
        "sendUserMailboxId": {"type": "string", "description": "Sender mailbox ID"},
        "contactId": {"type": "string", "description": "Contact ID"},
        "leadId": {"type": "string", "description": "Lead ID"},
        "subject": {"type": "string", "description": "Email subject"},
        "message": {"type": "string", "description": "Email message (HTML)"},
        "cc": {"type": "array", "items": {"type": "string"}, "description": "CC email addresses"},
    },
    "required": ["sendUserId", "sendUserEmail", "sendUserMailboxId", "contactId", "leadId", "subject", "message"],
    "additionalProperties": False,
}

# 200: {"type": "object", "additionalProperties": true}, example {"ok": true}
SEND_EMAIL_RESPONSE = {"type": "object", "additionalProperties": True}

#: The 400 texts of the Send Email document (text/plain bodies).
SEND_EMAIL_400_TEXTS = (
    "Bad team", "Invalid sendUserId", "Invalid sendUserEmail", "Invalid sendUserMailboxId",
    "contactId or leadId is required", "Invalid leadId", "Lead not found", "Failed to send email",
)
UNAUTHORIZED_TEXT = "The authentication you supplied is incorrect"

CONNECT_ACCOUNT_REQUEST = {
    "type": "object",
    "required": ["sender_name", "sender_email", "smtp_host", "smtp_port", "smtp_login", "smtp_password",
                 "imap_host", "imap_port", "imap_login", "imap_password"],
    "properties": {
        "sender_name": {"type": "string"},
        "sender_email": {"type": "string", "format": "email"},
        "smtp_host": {"type": "string"},
        "smtp_port": {"type": "integer"},
        "smtp_login": {"type": "string"},
        "smtp_password": {"type": "string"},
        "smtp_secure": {"type": "boolean", "default": False},
        "imap_host": {"type": "string"},
        "imap_port": {"type": "integer"},
        "imap_login": {"type": "string"},
        "imap_password": {"type": "string"},
        "imap_secure": {"type": "boolean", "default": False},
        "userId": {"type": "string"},
    },
    "additionalProperties": False,
}

CONNECT_ACCOUNT_RESPONSE = {
    "type": "object",
    "properties": {"id": {"type": "string"}, "email": {"type": "string", "format": "email"}, "provider": {"type": "string"}},
    "required": ["id"],
}

#: The 400/403 texts of the Connect Email Account document.
CONNECT_ACCOUNT_400_TEXTS = ("Bad team", "Missing required fields", "Invalid host", "This SMTP mailbox already exists")
CONNECT_ACCOUNT_403_TEXT = "User is not a member of this team"
