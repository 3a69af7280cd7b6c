"""URLs of the template pages (mounted at /templates/)."""
from django.urls import path

from . import views

urlpatterns = [
    path("", views.message_template_list, name="message_template_list"),
    path("new/", views.message_template_create, name="message_template_create"),
    path("<int:pk>/", views.message_template_edit, name="message_template_edit"),
    path("<int:pk>/delete/", views.message_template_delete, name="message_template_delete"),
]
