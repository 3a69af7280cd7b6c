"""CSV import internals: reading real-world files, column mapping, email checks and set-based writes.

The public entry points are the services in ``outreach.services.imports``.
"""
