"""Domain services: every write the UI, admin, commands and tasks perform goes through here."""
