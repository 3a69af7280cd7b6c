"""Settings profiles (cookiecutter-django's layout): ``base`` holds what every profile shares;
``local`` (the embedded default for ``manage.py``, ``runapp`` and ``celery -A outreach``),
``production`` (the default of ``outreach.wsgi``) and ``test`` (pytest, ``tests/run.sh``) each
import it and change what differs. Choose one with ``DJANGO_SETTINGS_MODULE``.
"""
import os

if os.environ.get("DJANGO_SETTINGS_MODULE", "").strip() == "outreach.settings":
    from django.core.exceptions import ImproperlyConfigured

    raise ImproperlyConfigured(
        "DJANGO_SETTINGS_MODULE=outreach.settings names the package, not a profile: use "
        "outreach.settings.local (development), outreach.settings.production or outreach.settings.test.")
