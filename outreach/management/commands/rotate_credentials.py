from ...services.mailboxes import credentials_rotate
from ..base import JsonCommand


class Command(JsonCommand):
    help = ("Re-encrypt every stored credential under the newest key in OUTREACH_ENCRYPTION_KEYS "
            "(put the new key first, keep the old ones after it, run this, then drop the old keys).")

    def run(self, **o):
        return credentials_rotate()
