"""Message templates: saved subjects and bodies with merge fields and spintax, rendered per contact.

One feature, one place: ``engine`` (the sandboxed renderer), ``services`` (writes and rendering for a
contact), ``selectors`` (reads), ``forms``, ``views`` and ``urls``. Compose starts from a saved
template; campaigns render their steps with the same engine.
"""
