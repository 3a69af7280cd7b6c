"""Entry point of an import's child process (``python -m outreach.imports.child``): runs
:func:`outreach.imports.parsing.child_main`, which reads its settings from the parent (no
database, no installed app)."""

if __name__ == "__main__":
    from outreach.imports.parsing import child_main

    child_main()
