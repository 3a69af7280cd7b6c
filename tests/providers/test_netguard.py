"""SSRF checks for mail hosts (providers.netguard)."""
import socket

import pytest

from providers.netguard import HostNotAllowed, address_problem, check_mail_host, unwrap_ip


@pytest.fixture(autouse=True)
def public_only(settings):
    settings.OUTREACH_ALLOW_PRIVATE_MAIL_HOSTS = False
    settings.OUTREACH_SMTP_PORTS = [25, 465, 587, 2525]
    settings.OUTREACH_IMAP_PORTS = [143, 993]


@pytest.mark.parametrize("host,reason", [
    ("127.0.0.1", "loopback"),
    ("2130706433", "loopback"),          # decimal spelling
    ("0x7f.1", "loopback"),              # hex + short form
    ("127.1", "loopback"),
    ("localhost", "loopback"),
    ("::1", "loopback"),
    ("::ffff:127.0.0.1", "loopback"),    # IPv4-mapped
    ("64:ff9b::7f00:1", "loopback"),     # NAT64
    ("2002:7f00:1::", "loopback"),       # 6to4
    ("10.1.2.3", "private"),
    ("192.168.0.10", "private"),
    ("::ffff:10.0.0.1", "private"),
    ("169.254.169.254", "cloud metadata"),
    ("fe80::1", "link-local"),
    ("224.0.0.1", "multicast"),
    ("0.0.0.0", "unspecified"),
    ("240.0.0.1", "reserved"),
    ("100.64.0.1", "non-public"),
])
def test_non_public_addresses_are_refused(host, reason):
    with pytest.raises(HostNotAllowed) as exc:
        check_mail_host(host, 587, kind="smtp")
    assert reason in exc.value.message
    assert exc.value.field == "smtp_host"


def test_public_address_is_accepted_and_pinned():
    resolved = check_mail_host("8.8.8.8", 465, kind="smtp")
    assert (resolved.host, resolved.ip, resolved.port) == ("8.8.8.8", "8.8.8.8", 465)


def test_name_resolving_to_a_private_address_is_refused(monkeypatch):
    def fake_getaddrinfo(host, port, *args, **kwargs):
        assert host == "mail.rebind.example"
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.216.34", port)),
                (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.0.0.5", port))]
    monkeypatch.setattr(socket, "getaddrinfo", fake_getaddrinfo)
    with pytest.raises(HostNotAllowed, match="resolves to 10.0.0.5, which is a private address"):
        check_mail_host("mail.rebind.example", 587, kind="smtp")


@pytest.mark.parametrize("host", ["smtp.gmail.com", "imap.gmail.com", "SMTP.GoogleMail.com"])
def test_gmail_is_refused_with_oauth_hint(host):
    with pytest.raises(HostNotAllowed, match="OAuth"):
        check_mail_host(host, 587, kind="smtp")


def test_unusual_port_is_refused():
    with pytest.raises(HostNotAllowed, match="port 8080 is not a usual SMTP port") as exc:
        check_mail_host("8.8.8.8", 8080, kind="smtp")
    assert exc.value.field == "smtp_port"
    with pytest.raises(HostNotAllowed, match="IMAP port 587"):
        check_mail_host("8.8.8.8", 587, kind="imap")


def test_unresolvable_host_says_host_not_found():
    with pytest.raises(HostNotAllowed, match="Host not found: no-such-host.invalid"):
        check_mail_host("no-such-host.invalid", 587, kind="smtp")


def test_private_allowed_setting_admits_loopback_but_never_metadata(settings):
    settings.OUTREACH_ALLOW_PRIVATE_MAIL_HOSTS = True
    assert check_mail_host("127.0.0.1", 587, kind="smtp").ip == "127.0.0.1"
    assert address_problem("169.254.169.254", allow_private=True) == "a cloud metadata address"
    assert address_problem("::ffff:169.254.169.254", allow_private=True) == "a cloud metadata address"


def test_unwrap_ip_forms():
    import ipaddress
    assert str(unwrap_ip(ipaddress.ip_address("::ffff:1.2.3.4"))) == "1.2.3.4"
    assert str(unwrap_ip(ipaddress.ip_address("64:ff9b::102:304"))) == "1.2.3.4"
    assert str(unwrap_ip(ipaddress.ip_address("2002:102:304::1"))) == "1.2.3.4"
    assert str(unwrap_ip(ipaddress.ip_address("2606:4700::1111"))) == "2606:4700::1111"
