"""URLs of the CSV import pages (included under ``imports/``)."""
from django.urls import path

from . import views

urlpatterns = [
    path("", views.import_list, name="import_list"),
    path("new/", views.import_create, name="import_create"),
    path("<int:pk>/", views.import_detail, name="import_detail"),
    path("<int:pk>/progress/", views.import_progress, name="import_progress"),
    path("<int:pk>/errors.csv", views.import_errors, name="import_errors"),
]
