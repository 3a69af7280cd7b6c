"""Team members: the list (everyone sees it), invite by e-mail with a signed link, change role and
remove (owners/admins only), and the public page where an invited person accepts."""
from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.decorators import login_not_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_http_methods

from .. import selectors
from ..models import Membership
from ..services.teams import (invitation_accept, invitation_create, invitation_read, invitation_send,
                              membership_remove, membership_set_role, user_is_team_admin)
from .common import add_service_errors, require_team_admin, team_admin_required
from .listing import AdminListView, BulkAction, Column, ListFilter


class InviteForm(forms.Form):
    """Whom to invite and with which role."""

    email = forms.EmailField(max_length=254)
    role = forms.ChoiceField(choices=Membership.Role.choices, initial=Membership.Role.MEMBER)


class AcceptForm(forms.Form):
    """The invited person's username and password."""

    username = forms.CharField(max_length=150)
    password = forms.CharField(widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}), strip=False)


class MemberListView(AdminListView):
    """The team's members (``team/members.html``); owners/admins also get the invite form and the
    bulk actions "Set role" and "Remove" (through the membership services: the last owner stays)."""

    template_name = "team/members.html"
    title = "Members"
    noun = "member"
    noun_plural = "members"
    search_placeholder = "Search username, email, name"
    columns = (Column("User", "user"), Column("Email", "email"), Column("Role", "role"), Column("Joined", "joined", css="nowrap"))
    filters = (ListFilter("role", "Role", lambda team: Membership.Role.choices, all_label="Any role"),)
    actions = (
        BulkAction("set_role", "Set role", "bulk_set_role", choices=tuple(Membership.Role.choices)),
        BulkAction("remove", "Remove from the team", "bulk_remove", confirm=True, confirm_verb="Remove",
                   warning="They can no longer sign in to this team's data. Their messages and leads stay."),
    )

    def dispatch(self, request, *args, **kwargs):
        self.is_admin = request.user.is_authenticated and (request.user.is_superuser or user_is_team_admin(request.user))
        if not self.is_admin:
            self.actions = ()
        return super().dispatch(request, *args, **kwargs)

    def post(self, request):
        require_team_admin(request)
        return super().post(request)

    def select(self, team, query):
        return selectors.member_list(team=team, query=query)

    def selected(self, team, ids):
        return selectors.members_by_ids(team=team, ids=ids)

    def extra_context(self):
        return {"is_team_admin": self.is_admin, "invite_form": InviteForm() if self.is_admin else None}

    def _each(self, selection, call) -> tuple[int, list[str]]:
        done, problems = 0, []
        for membership in self.rows(selection).select_related("user", "team"):
            try:
                call(membership)
            except (ValidationError, PermissionDenied) as err:
                problems.extend(getattr(err, "messages", [str(err)]))
            else:
                done += 1
        for problem in problems:
            messages.error(self.request, problem)
        return done, problems

    def bulk_set_role(self, selection, value) -> str:
        n, _ = self._each(selection, lambda m: membership_set_role(membership=m, role=value, actor=self.request.user))
        return f"Role set to {Membership.Role(value).label} for {n:,} member{'s' if n != 1 else ''}."

    def bulk_remove(self, selection, value) -> str:
        n, _ = self._each(selection, lambda m: membership_remove(membership=m, actor=self.request.user))
        return f"Removed {n:,} member{'s' if n != 1 else ''} from the team."


member_list = MemberListView.as_view()


@team_admin_required
@require_http_methods(["POST"])
def member_invite(request: HttpRequest) -> HttpResponse:
    """POST from the members page: create a signed invitation, e-mail it, and show the link too
    (for teams without outgoing mail configured). Errors come back as messages."""
    team = require_team_admin(request)
    form = InviteForm(request.POST)
    if not form.is_valid():
        for errors in form.errors.values():
            for error in errors:
                messages.error(request, error)
        return redirect("member_list")
    try:
        token = invitation_create(team=team, email=form.cleaned_data["email"], role=form.cleaned_data["role"],
                                  actor=request.user)
    except ValidationError as err:
        for error in err.messages:
            messages.error(request, error)
        return redirect("member_list")
    url = request.build_absolute_uri(reverse("invitation_accept", args=[token]))
    invitation_send(url=url, team=team, email=form.cleaned_data["email"])
    messages.success(request, f"Invitation sent to {form.cleaned_data['email']}. The link, if you want to pass it on yourself: {url}")
    return redirect("member_list")


@login_not_required  # public by design: the invited person has no account yet; the signed token is the credential
@sensitive_post_parameters("password")
@require_http_methods(["GET", "POST"])
def invitation_accept_view(request: HttpRequest, token: str) -> HttpResponse:
    """GET: who invites you where, and the username/password form (``team/accept.html``); an
    expired or tampered link says so. POST: create the account, sign in, go to the contacts."""
    try:
        invitation = invitation_read(token)
    except ValidationError as err:
        return render(request, "team/accept.html", {"problem": " ".join(err.messages)}, status=400)
    form = AcceptForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            user = invitation_accept(token=token, username=form.cleaned_data["username"],
                                     password=form.cleaned_data["password"])
        except ValidationError as err:
            add_service_errors(form, err)
        else:
            login(request, user, backend="outreach.auth_backends.TeamModelBackend")
            messages.success(request, f"Welcome to {invitation['team'].name}.")
            return redirect("contact_list")
    return render(request, "team/accept.html", {"form": form, "invitation": invitation})
