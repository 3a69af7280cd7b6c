"""Mail host checks against SSRF, and sockets pinned to the checked address.

Follows the lemlist API reference "Connect Email Account" (https://developer.lemlist.com,
``POST https://api.lemlist.com/api/user/email-accounts``: "validated against banned hosts
and SSRF checks"; "Gmail SMTP/IMAP connections are not allowed — use OAuth instead").
A host name is resolved once; every address it resolves to must be public, after
unwrapping IPv6 forms that carry an IPv4 address (IPv4-mapped, IPv4-compatible, NAT64,
6to4, Teredo). The caller then connects to that exact address (``ResolvedHost.ip``)
while TLS verifies the certificate against the host name, so DNS rebinding cannot
swap the target between the check and the connection.
"""
from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass

from django.conf import settings

from .errors import ConfigurationError

GMAIL_SUFFIXES = ("gmail.com", "googlemail.com")

#: Cloud metadata endpoints, refused even when private addresses are allowed.
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a)
    for a in ("169.254.169.254", "169.254.170.2", "100.100.100.200", "192.0.0.192", "fd00:ec2::254")
)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_NAT64_LOCAL = ipaddress.ip_network("64:ff9b:1::/48")
_IPV4_COMPAT = ipaddress.ip_network("::/96")


class HostNotAllowed(ConfigurationError):
    """The host is refused (private/reserved address, Gmail, port not a mail port, unresolvable)."""

    code = "host_not_allowed"


@dataclass(frozen=True)
class ResolvedHost:
    """A checked host: ``host`` as the user typed it (for TLS/SNI), ``ip`` to connect to, ``port``."""

    host: str
    ip: str
    port: int


def unwrap_ip(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    """Return the IPv4 address an IPv6 address carries (mapped, compatible, NAT64, 6to4, Teredo), else ``ip``."""
    if ip.version == 4:
        return ip
    if ip.ipv4_mapped:
        return ip.ipv4_mapped
    if ip.sixtofour:
        return ip.sixtofour
    if ip.teredo:
        return ip.teredo[1]
    if ip in _NAT64 or ip in _NAT64_LOCAL:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if ip in _IPV4_COMPAT and int(ip) > 1:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return ip


def address_problem(ip_text: str, *, allow_private: bool) -> str | None:
    """Why ``ip_text`` may not be connected to, or None if it may. ``allow_private`` admits
    loopback and private ranges (never cloud metadata)."""
    raw = ipaddress.ip_address(ip_text.split("%", 1)[0])
    ip = unwrap_ip(raw)
    if raw in METADATA_ADDRESSES or ip in METADATA_ADDRESSES:
        return "a cloud metadata address"
    if ip.is_multicast:
        return "a multicast address"
    if ip.is_unspecified:
        return "an unspecified address"
    if allow_private and (ip.is_loopback or ip.is_private) and not ip.is_reserved:
        return None
    if ip.is_loopback:
        return "a loopback address"
    if ip.is_link_local:
        return "a link-local address"
    if ip.is_reserved:
        return "a reserved address"
    if ip.is_private:
        return "a private address"
    if not ip.is_global:
        return "a non-public address"
    return None


def is_private_address(ip_text: str) -> bool:
    """Whether ``ip_text`` is loopback or in a private range (after unwrapping IPv6 forms that carry IPv4)."""
    ip = unwrap_ip(ipaddress.ip_address(ip_text.split("%", 1)[0]))
    return ip.is_loopback or ip.is_private


def _check_name(host: str, port: int, *, kind: str) -> str:
    """The rules on the name and port alone (no DNS); returns the cleaned host name."""
    label = kind.upper()
    host = (host or "").strip().rstrip(".")
    if not host:
        raise HostNotAllowed(f"Enter the {label} host.", field=f"{kind}_host")
    ports = settings.OUTREACH_SMTP_PORTS if kind == "smtp" else settings.OUTREACH_IMAP_PORTS
    if port not in ports:
        raise HostNotAllowed(
            f"{label} port {port} is not a usual {label} port; use one of {', '.join(map(str, ports))}.",
            field=f"{kind}_port",
        )
    lowered = host.lower()
    if any(lowered == s or lowered.endswith("." + s) for s in GMAIL_SUFFIXES):
        raise HostNotAllowed(
            f"Gmail does not allow password logins over {label} for sending tools: connect Gmail through "
            "Google OAuth (or a provider account such as leadlex) instead.",
            field=f"{kind}_host",
        )
    return host


def _check_address(host: str, address: str, *, kind: str) -> None:
    problem = address_problem(address, allow_private=settings.OUTREACH_ALLOW_PRIVATE_MAIL_HOSTS)
    if problem:
        shown = "" if address == host else f" resolves to {address}, which"
        raise HostNotAllowed(
            f"{kind.upper()} host {host}{shown} is {problem}; mail servers must be on the public internet.",
            field=f"{kind}_host",
        )


def check_mail_host(host: str, port: int, *, kind: str) -> ResolvedHost:
    """Resolve and check a mail server; ``kind`` is "smtp" or "imap".

    Returns the ResolvedHost to connect to. Raises HostNotAllowed with a message for the user
    when the port is not a usual ``kind`` port, the host is Gmail, cannot be resolved, or any of
    its addresses is refused. Honours settings.OUTREACH_ALLOW_PRIVATE_MAIL_HOSTS,
    OUTREACH_SMTP_PORTS and OUTREACH_IMAP_PORTS.
    """
    host = _check_name(host, port, kind=kind)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as err:
        raise HostNotAllowed(f"Host not found: {host} could not be resolved.", field=f"{kind}_host") from err
    addresses = list(dict.fromkeys(info[4][0] for info in infos))
    for address in addresses:
        _check_address(host, address, kind=kind)
    if not addresses:
        raise HostNotAllowed(f"Host not found: {host} has no address.", field=f"{kind}_host")
    return ResolvedHost(host=host, ip=addresses[0], port=port)


def check_connected_host(resolved: ResolvedHost, *, kind: str) -> None:
    """Check the rules of :func:`check_mail_host` again for a connection already open to ``resolved``
    (a reused session), without a DNS lookup: the socket is pinned to ``resolved.ip``, so that address
    is what must still be allowed (the settings may have changed since it was opened).
    Raises HostNotAllowed."""
    host = _check_name(resolved.host, resolved.port, kind=kind)
    _check_address(host, resolved.ip, kind=kind)


def pinned_connection(resolved: ResolvedHost, timeout: float) -> socket.socket:
    """Open a TCP connection to ``resolved.ip``:``resolved.port`` with ``timeout`` seconds."""
    return socket.create_connection((resolved.ip, resolved.port), timeout)
