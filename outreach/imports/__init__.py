"""CSV imports of contacts and leads: the whole feature in one package.

Everything of the feature lives here: ``services`` (the public entry points), ``views``,
``forms``, ``urls``, ``admin``, ``tasks`` (the Celery task), and the pipeline: ``reading`` (files),
``mapping`` (columns → fields), ``emails`` (address checks), ``writing`` (set-based writes) and
``report`` (the error report).
"""
