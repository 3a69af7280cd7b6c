"""URLs of the campaign pages (mounted at /campaigns/)."""
from django.urls import path

from . import views

urlpatterns = [
    path("", views.campaign_list, name="campaign_list"),
    path("new/", views.campaign_create, name="campaign_create"),
    path("<int:pk>/", views.campaign_detail, name="campaign_detail"),
    path("<int:pk>/funnel/", views.campaign_funnel_fragment, name="campaign_funnel"),
    path("<int:pk>/edit/", views.campaign_edit, name="campaign_edit"),
    path("<int:pk>/state/", views.campaign_state, name="campaign_state"),
    path("<int:pk>/delete/", views.campaign_delete, name="campaign_delete"),
    path("<int:pk>/steps/new/", views.campaign_step_create, name="campaign_step_create"),
    path("<int:pk>/steps/<int:step_pk>/", views.campaign_step_edit, name="campaign_step_edit"),
    path("<int:pk>/steps/<int:step_pk>/delete/", views.campaign_step_delete, name="campaign_step_delete"),
    path("<int:pk>/enrolments/", views.enrolment_list, name="campaign_enrolments"),
]
