"""URLs of the inbound feature (included at the site root by outreach.urls; the public one-click
unsubscribe URL ``/u/TOKEN/`` is declared in outreach.urls with the other public URLs)."""
from django.urls import path

from . import views

urlpatterns = [
    path("inbox/<int:pk>/", views.inbound_detail, name="inbound_detail"),
    path("inbox/<int:pk>/reply/", views.inbound_reply, name="inbound_reply"),
    path("messages/<int:pk>/reply/", views.message_reply, name="message_reply"),
    path("suppressions/", views.suppression_list, name="suppression_list"),
    path("suppressions/add/", views.suppression_create, name="suppression_create"),
    path("suppressions/<int:pk>/delete/", views.suppression_delete, name="suppression_delete"),
]
