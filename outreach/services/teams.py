"""Teams and their users."""
from __future__ import annotations

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core import signing
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction

from ..models import Membership, Team


def team_create_with_owner(*, team_name: str, username: str, email: str, password: str) -> tuple[Team, "object"]:
    """Create a team and its first user (role owner). Returns (team, user).

    Raises ValidationError when the team name or username is taken or the password is empty.
    """
    User = get_user_model()
    team_name = team_name.strip()
    if not team_name:
        raise ValidationError("Enter a team name.")
    if not password:
        raise ValidationError("Enter a password for the first user.")
    if Team.objects.filter(name__iexact=team_name).exists():
        raise ValidationError(f"A team named {team_name!r} already exists.")
    if User.objects.filter(username=username).exists():
        raise ValidationError(f"A user named {username!r} already exists.")
    with transaction.atomic():
        team = Team.objects.create(name=team_name)
        user = User.objects.create_user(username=username, email=email, password=password)
        Membership.objects.create(user=user, team=team, role=Membership.Role.OWNER)
    return team, user


def team_add_member(*, team: Team, username: str, email: str, password: str) -> "object":
    """Create a user in ``team`` (role member). Returns the user; raises ValidationError if taken."""
    User = get_user_model()
    if User.objects.filter(username=username).exists():
        raise ValidationError(f"A user named {username!r} already exists.")
    with transaction.atomic():
        user = User.objects.create_user(username=username, email=email, password=password)
        Membership.objects.create(user=user, team=team)
    return user


def team_for_user(user) -> Team | None:
    """The user's team, or None for a user without one (e.g. a bare superuser)."""
    membership = getattr(user, "membership", None) if user.is_authenticated else None
    return membership.team if membership else None


#: Roles that manage the team: mailboxes, provider accounts and members.
ADMIN_ROLES = (Membership.Role.OWNER, Membership.Role.ADMIN)


def user_is_team_admin(user) -> bool:
    """Whether ``user`` is an owner or admin of their team (False without a team)."""
    membership = getattr(user, "membership", None) if user.is_authenticated else None
    return bool(membership) and membership.role in ADMIN_ROLES


def _require_team_admin(actor, team: Team) -> None:
    if actor is None or actor.is_superuser:
        return
    if team_for_user(actor) != team or not user_is_team_admin(actor):
        raise PermissionDenied("Only the team's owners and admins can manage its members.")


def membership_role_check(*, membership: Membership, role: str) -> None:
    """Raise ValidationError if ``membership`` may not get ``role``: an unknown role, or the team's
    last owner stepping down (a team always keeps an owner)."""
    if role not in Membership.Role.values:
        raise ValidationError(f"Unknown role {role!r}: choose one of {', '.join(Membership.Role.values)}.")
    if membership.role == Membership.Role.OWNER and role != Membership.Role.OWNER and _last_owner(membership):
        raise ValidationError(f"{membership.user} is the team's only owner: make someone else owner first.")


def _last_owner(membership: Membership) -> bool:
    return not Membership.objects.filter(team_id=membership.team_id, role=Membership.Role.OWNER).exclude(pk=membership.pk).exists()


@transaction.atomic
def membership_set_role(*, membership: Membership, role: str, actor=None) -> Membership:
    """Give ``membership`` the ``role`` ("owner", "admin", "member"). ``actor`` (None for scripts)
    must be a superuser or an owner/admin of the same team (PermissionDenied otherwise).
    Raises ValidationError as :func:`membership_role_check`. Returns the Membership."""
    _require_team_admin(actor, membership.team)
    membership = Membership.objects.select_for_update().get(pk=membership.pk)
    membership_role_check(membership=membership, role=role)
    membership.role = role
    membership.save(update_fields=["role"])
    return membership


@transaction.atomic
def membership_remove(*, membership: Membership, actor=None) -> None:
    """Remove a member from the team (the user stays, without a team, so sees nothing). ``actor``
    as in :func:`membership_set_role`. Raises ValidationError for the team's last owner."""
    _require_team_admin(actor, membership.team)
    membership = Membership.objects.select_for_update().get(pk=membership.pk)
    if membership.role == Membership.Role.OWNER and _last_owner(membership):
        raise ValidationError(f"{membership.user} is the team's only owner and cannot be removed.")
    membership.delete()


# --- Invitations: a signed, expiring link (django.core.signing), no table ----------------------

INVITATION_SALT = "outreach.team-invitation"


def invitation_create(*, team: Team, email: str, role: str = Membership.Role.MEMBER, actor=None) -> str:
    """A signed invitation token for ``email`` to join ``team`` with ``role``.

    ``actor`` must be a superuser or an owner/admin of ``team`` (PermissionDenied). The token
    carries team id, address and role, signed with SECRET_KEY (``django.core.signing``, salt
    INVITATION_SALT); it expires after settings.OUTREACH_INVITATION_MAX_AGE seconds and is good
    once (accepting creates the user, after which the address is taken). Raises ValidationError
    for a malformed address, an unknown role, or an address already in use.
    """
    from ..validation import normalize_email

    _require_team_admin(actor, team)
    email = normalize_email(email)
    if role not in Membership.Role.values:
        raise ValidationError({"role": f"Unknown role {role!r}."})
    if get_user_model().objects.filter(email__iexact=email).exists():
        raise ValidationError({"email": f"{email} already has an account here."})
    return signing.dumps({"team": team.pk, "email": email, "role": role}, salt=INVITATION_SALT, compress=True)


def invitation_read(token: str) -> dict:
    """The invitation in ``token``: {"team": Team, "email": str, "role": str}.

    Raises ValidationError with a plain message when it is expired, tampered with or its team is gone.
    """
    try:
        data = signing.loads(token, salt=INVITATION_SALT, max_age=settings.OUTREACH_INVITATION_MAX_AGE)
    except signing.SignatureExpired as err:
        raise ValidationError("This invitation has expired: ask your team's owner for a new one.") from err
    except signing.BadSignature as err:
        raise ValidationError("This invitation link is not valid (it may be incomplete).") from err
    team = Team.objects.filter(pk=data.get("team")).first()
    if team is None:
        raise ValidationError("The team of this invitation no longer exists.")
    return {"team": team, "email": data["email"], "role": data["role"]}


def invitation_accept(*, token: str, username: str, password: str):
    """Create the invited user (in the invitation's team and role) from ``token``. Returns the user.

    Raises ValidationError: the invitation's problems (:func:`invitation_read`), an address
    that already has an account (the link was used), a taken username, or a password that the
    AUTH_PASSWORD_VALIDATORS refuse ({"password": [...]}).
    """
    from django.contrib.auth.password_validation import validate_password

    invitation = invitation_read(token)
    User = get_user_model()
    username = (username or "").strip()
    if not username:
        raise ValidationError({"username": "Choose a username."})
    with transaction.atomic():
        if User.objects.filter(email__iexact=invitation["email"]).exists():
            raise ValidationError("This invitation was already used: sign in instead.")
        if User.objects.filter(username=username).exists():
            raise ValidationError({"username": f"The username {username!r} is taken."})
        user = User(username=username, email=invitation["email"])
        try:
            validate_password(password, user)
        except ValidationError as err:
            raise ValidationError({"password": err.messages}) from err
        user.set_password(password)
        user.save()
        Membership.objects.create(user=user, team=invitation["team"], role=invitation["role"])
    return user


def invitation_send(*, url: str, team: Team, email: str) -> None:
    """E-mail the invitation link ``url`` (absolute) to ``email`` through Django's mail settings (EMAIL_URL)."""
    from django.core.mail import send_mail

    hours = settings.OUTREACH_INVITATION_MAX_AGE // 3600
    send_mail(f"You are invited to {team.name} on Outreach",
              f"You have been invited to join {team.name} on Outreach.\n\nAccept within {hours} hours:\n{url}\n",
              None, [email])
