"""WSGI entry point (``gunicorn outreach.wsgi``). A WSGI server is a deployment, so the default profile
here is ``outreach.settings.production``; ``DJANGO_SETTINGS_MODULE`` chooses another (``runserver`` and
``runapp`` have already set it to the local profile when they load this module)."""
import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "outreach.settings.production")
application = get_wsgi_application()
