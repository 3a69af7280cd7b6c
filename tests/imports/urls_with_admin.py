"""A URLconf for the admin test: the project's URLs with the admin's URLs rebuilt at import time
(so that an ImportJobAdmin registered by the test has its pages)."""
from django.contrib import admin
from django.urls import path

from outreach import urls as project_urls

urlpatterns = [path("admin/", admin.site.urls),
               *[p for p in project_urls.urlpatterns if str(getattr(p, "pattern", "")) != "admin/"]]
