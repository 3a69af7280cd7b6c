"""Inbound mail: the IMAP sync, classification (reply, bounce, auto-reply, unsubscribe), one-click
unsubscribe (RFC 8058), replying from the timeline and the suppression list UI.

Layout: ``models`` (InboundMessage, MailboxSyncState, UnsubscribeKey), ``parsing`` (hostile
bytes → a bounded ParsedMail), ``bounces`` (DSN parsing), ``classify`` (what a mail is and
what it refers to), ``services`` (writes), ``selectors`` (reads), ``unsubscribe`` (tokens and
outgoing headers), ``views``/``urls``/``forms``, ``tasks`` (Celery beat entry) and the
``sync_mailboxes`` command.
"""
