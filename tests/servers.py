"""Real mail servers on 127.0.0.1 for the tests: aiosmtpd (SMTP, STARTTLS or implicit TLS) and dovecot (IMAP).

Nothing here is a mock: clients talk to real sockets, real TLS (a throwaway CA, see
:func:`make_tls_files`) and real authentication. The pytest fixtures in ``tests/conftest.py``
start one of each per test session (per xdist worker) on free ports.

Whether a missing server binary is a skip or an error is decided by the environment variable
``OUTREACH_TEST_SERVERS``: ``required`` (set by ``tests/run.sh``) makes it an error.
"""
from __future__ import annotations

import asyncio
import datetime
import email
import email.policy
import imaplib
import ipaddress
import os
import pwd
import grp
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

HOST = "127.0.0.1"
#: Host name in the test certificate (besides the IP address 127.0.0.1).
TLS_HOSTNAME = "localhost"

DOVECOT_CANDIDATES = ("/usr/sbin/dovecot", "/usr/local/sbin/dovecot")


# --- helpers -------------------------------------------------------------------------


def servers_required() -> bool:
    """Return True when missing test servers must fail the run (``OUTREACH_TEST_SERVERS=required``)."""
    return os.environ.get("OUTREACH_TEST_SERVERS", "").strip().lower() == "required"


def unavailable(reason: str) -> None:
    """Skip the requesting test, or fail it when ``OUTREACH_TEST_SERVERS=required``. Never returns."""
    if servers_required():
        pytest.fail(f"{reason} (OUTREACH_TEST_SERVERS=required)", pytrace=False)
    pytest.skip(reason)


def free_port(host: str = HOST) -> int:
    """Return a TCP port on ``host`` that was free a moment ago (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def wait_for_greeting(host: str, port: int, prefix: bytes, timeout: float = 10.0, tls: ssl.SSLContext | None = None) -> bytes:
    """Connect until the server greets with a line starting with ``prefix``; return that line.

    Raises ``TimeoutError`` when no greeting arrived within ``timeout`` seconds.
    """
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=2) as raw:
                sock = tls.wrap_socket(raw, server_hostname=TLS_HOSTNAME) if tls else raw
                line = sock.recv(512)
                if line.startswith(prefix):
                    return line
                last_error = RuntimeError(f"unexpected greeting {line!r}")
        except OSError as exc:
            last_error = exc
        time.sleep(0.05)
    raise TimeoutError(f"no greeting from {host}:{port} within {timeout}s: {last_error}")


@dataclass(frozen=True)
class TLSFiles:
    """Paths of a throwaway CA and a server certificate for ``localhost`` and ``127.0.0.1``."""

    ca_file: str  #: PEM CA certificate: give it to clients (``ssl.create_default_context(cafile=...)``).
    cert_file: str  #: PEM server certificate followed by the CA certificate (chain).
    key_file: str  #: PEM private key of the server certificate (unencrypted).

    def server_context(self) -> ssl.SSLContext:
        """Return a server-side ``SSLContext`` loaded with the server certificate and key."""
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(self.cert_file, self.key_file)
        return ctx

    def client_context(self) -> ssl.SSLContext:
        """Return a verifying client ``SSLContext`` that trusts only the test CA."""
        return ssl.create_default_context(cafile=self.ca_file)


def make_tls_files(directory: str | os.PathLike) -> TLSFiles:
    """Write a new CA and a CA-signed server certificate (SAN: DNS localhost, IP 127.0.0.1) into ``directory``.

    Returns the :class:`TLSFiles` with the paths. Files are world-readable so that servers
    dropping privileges (dovecot) can read them.
    """
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    directory = Path(directory)
    now = datetime.datetime.now(datetime.timezone.utc)
    start, end = now - datetime.timedelta(days=1), now + datetime.timedelta(days=30)

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Outreach test CA")])
    ca_ski = x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key())
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
                encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(ca_ski, critical=False)
        .sign(ca_key, hashes.SHA256())
    )

    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, TLS_HOSTNAME)]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=True, key_cert_sign=False, crl_sign=False,
                encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName(TLS_HOSTNAME), x509.IPAddress(ipaddress.ip_address(HOST))]
            ),
            critical=False,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False)
        .sign(ca_key, hashes.SHA256())
    )

    pem = serialization.Encoding.PEM
    ca_file, cert_file, key_file = directory / "ca.pem", directory / "cert.pem", directory / "key.pem"
    ca_file.write_bytes(ca_cert.public_bytes(pem))
    cert_file.write_bytes(cert.public_bytes(pem) + ca_cert.public_bytes(pem))
    key_file.write_bytes(
        key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    for path in (ca_file, cert_file, key_file):
        path.chmod(0o644)
    return TLSFiles(str(ca_file), str(cert_file), str(key_file))


# --- SMTP (aiosmtpd) ------------------------------------------------------------------


@dataclass(frozen=True)
class ReceivedMessage:
    """One message accepted by :class:`SMTPTestServer`."""

    mail_from: str  #: envelope sender (MAIL FROM)
    rcpt_tos: tuple[str, ...]  #: accepted envelope recipients (RCPT TO)
    data: bytes  #: raw message bytes as received (after dot-unstuffing, CRLF line ends)
    login: str | None  #: the SMTP AUTH login used on the connection
    tls: bool  #: True when the message came over TLS (STARTTLS or implicit)

    @property
    def message(self) -> email.message.EmailMessage:
        """Return the raw bytes parsed with ``email.policy.default``."""
        return email.message_from_bytes(self.data, policy=email.policy.default)


class SMTPTestServer:
    """A real SMTP server (aiosmtpd) on 127.0.0.1 requiring TLS and AUTH with one known login.

    ``implicit_tls=False``: plain connection, ``STARTTLS`` required before anything else.
    ``implicit_tls=True``: TLS from the first byte (SMTPS, like port 465).

    Recipients whose local part starts with ``refuse`` (or listed in :attr:`refused`) get
    ``550 5.1.1 User unknown``. :meth:`fail_next_data` makes the next DATA commands fail.
    """

    username = "sender@example.test"
    password = "smtp-test-password"

    def __init__(self, tls: TLSFiles, implicit_tls: bool = False):
        self.tls = tls
        self.implicit_tls = implicit_tls
        self.host = HOST
        self.port: int | None = None
        self.ca_file = tls.ca_file
        self.refused: set[str] = set()
        self._messages: list[ReceivedMessage] = []
        self._lock = threading.Lock()
        self._data_failures: list[str] = []
        self._mail_failures: list[str] = []
        self._controller = None
        self.logins = 0  #: successful SMTP AUTH logins (one per connection that logged in)
        self.data_delay = 0.0  #: seconds handle_DATA waits before accepting (a slow server)
        self.rcpt_delay = 0.0  #: seconds handle_RCPT waits before answering
        self.mail_commands = 0  #: MAIL FROM commands received (a sender has started a transaction)

    # public API ----------------------------------------------------------------------
    @property
    def messages(self) -> list[ReceivedMessage]:
        """Return a snapshot list of the :class:`ReceivedMessage` objects received so far."""
        with self._lock:
            return list(self._messages)

    def clear(self) -> None:
        """Forget received messages, extra refused recipients and pending DATA failures."""
        with self._lock:
            self._messages.clear()
            self._data_failures.clear()
            self._mail_failures.clear()
            self.refused.clear()
            self.logins = self.mail_commands = 0
            self.data_delay = self.rcpt_delay = 0.0

    def fail_next_data(self, reply: str = "451 4.3.0 Temporary failure, try again later", count: int = 1) -> None:
        """Answer the next ``count`` DATA commands with ``reply`` (e.g. a 4xx or 5xx line) instead of accepting."""
        with self._lock:
            self._data_failures.extend([reply] * count)

    def fail_next_mail(self, reply: str = "421 4.3.2 Service shutting down, closing connection", *, skip: int = 0) -> None:
        """After ``skip`` more MAIL FROM commands, answer the next one with ``reply``; a 421 also closes the connection."""
        with self._lock:
            self._mail_failures.extend([""] * skip + [reply])

    def message_ids(self) -> list[str]:
        """The Message-ID header of every accepted message, in arrival order."""
        return [m.message["Message-ID"] for m in self.messages]

    def wait_for_messages(self, count: int, timeout: float = 10.0) -> list[ReceivedMessage]:
        """Wait until at least ``count`` messages arrived; return them (raises ``TimeoutError`` otherwise)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            messages = self.messages
            if len(messages) >= count:
                return messages
            time.sleep(0.05)
        raise TimeoutError(f"expected {count} SMTP messages, got {len(self.messages)} within {timeout}s")

    def client_context(self) -> ssl.SSLContext:
        """Return a verifying client ``SSLContext`` trusting the test CA."""
        return self.tls.client_context()

    def is_refused(self, address: str) -> bool:
        """Return True when RCPT TO ``address`` is answered with 550."""
        local = address.rsplit("@", 1)[0].lower()
        return local.startswith("refuse") or address.lower() in {a.lower() for a in self.refused}

    # aiosmtpd handler hooks --------------------------------------------------------------
    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        with self._lock:
            reply = self._mail_failures.pop(0) if self._mail_failures else ""
            self.mail_commands += 1
        if reply:
            if reply.startswith("421"):
                await server.push(reply)
                server.transport.close()
                return "421 closing"  # not seen: the connection is already closed
            return reply
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.rcpt_delay:
            await asyncio.sleep(self.rcpt_delay)
        if self.is_refused(address):
            return "550 5.1.1 User unknown"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.data_delay:
            await asyncio.sleep(self.data_delay)
        with self._lock:
            if self._data_failures:
                return self._data_failures.pop(0)
            login = session.auth_data.login if session.auth_data is not None else None
            if isinstance(login, bytes):
                login = login.decode("utf-8", "replace")
            self._messages.append(
                ReceivedMessage(
                    mail_from=envelope.mail_from,
                    rcpt_tos=tuple(envelope.rcpt_tos),
                    data=bytes(envelope.original_content or envelope.content),
                    login=login,
                    tls=bool(self.implicit_tls or session.ssl),
                )
            )
        return "250 2.0.0 Message accepted for delivery"

    def _authenticate(self, server, session, envelope, mechanism, auth_data):
        from aiosmtpd.smtp import AuthResult, LoginPassword

        if not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        ok = auth_data.login == self.username.encode() and auth_data.password == self.password.encode()
        if ok:
            with self._lock:
                self.logins += 1
        return AuthResult(success=ok, handled=False, auth_data=auth_data if ok else None)

    # lifecycle -----------------------------------------------------------------------------
    def start(self, attempts: int = 3) -> "SMTPTestServer":
        """Start the server on a free port (retrying on a port race); return ``self``."""
        from aiosmtpd.controller import Controller

        last_error: Exception | None = None
        for _ in range(attempts):
            port = free_port()
            kwargs = dict(
                hostname=self.host,
                port=port,
                server_hostname=TLS_HOSTNAME,
                authenticator=self._authenticate,
                auth_required=True,
                decode_data=False,
                enable_SMTPUTF8=True,
                ready_timeout=10,
            )
            if self.implicit_tls:
                # The connection is TLS from the start; aiosmtpd only counts STARTTLS for auth_require_tls.
                kwargs.update(ssl_context=self.tls.server_context(), auth_require_tls=False)
            else:
                kwargs.update(tls_context=self.tls.server_context(), require_starttls=True, auth_require_tls=True)
            controller = Controller(self, **kwargs)
            try:
                controller.start()
            except Exception as exc:  # port taken meanwhile, or slow start
                last_error = exc
                try:
                    controller.stop()
                except Exception:
                    pass
                continue
            self._controller, self.port = controller, port
            return self
        raise RuntimeError(f"could not start the aiosmtpd server: {last_error}")

    def stop(self) -> None:
        """Stop the server (idempotent)."""
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def __repr__(self) -> str:
        kind = "smtps" if self.implicit_tls else "smtp+starttls"
        return f"<SMTPTestServer {kind}://{self.host}:{self.port} user={self.username}>"


# --- IMAP (dovecot) ------------------------------------------------------------------


def find_dovecot() -> str | None:
    """Return the path of the dovecot binary, or None when it is not installed."""
    for candidate in DOVECOT_CANDIDATES:
        if os.access(candidate, os.X_OK):
            return candidate
    return shutil.which("dovecot")


class IMAPTestServer:
    """A real IMAP server: Debian's dovecot with a private config in a temp directory.

    One user (:attr:`username` / :attr:`password`), maildir storage, mailboxes INBOX, Sent
    (``\\Sent``), Drafts, Junk and Trash auto-created. :attr:`port` is plain IMAP (STARTTLS
    offered, plaintext login allowed); :attr:`ssl_port` is implicit TLS, both with the test CA.
    """

    username = "sender@example.test"
    password = "imap-test-password"

    def __init__(self, tls: TLSFiles, binary: str):
        self.tls = tls
        self.binary = binary
        self.host = HOST
        self.port: int | None = None
        self.ssl_port: int | None = None
        self.ca_file = tls.ca_file
        self.directory: Path | None = None
        self._process: subprocess.Popen | None = None

    # lifecycle -----------------------------------------------------------------------------
    def _write_config(self, directory: Path, port: int, ssl_port: int) -> Path:
        if os.geteuid() == 0:
            mail_user, mail_group = "nobody", grp.getgrgid(pwd.getpwnam("nobody").pw_gid).gr_name
            privileged = ""
        else:  # an unprivileged dovecot runs everything as the current user
            mail_user = pwd.getpwuid(os.geteuid()).pw_name
            mail_group = grp.getgrgid(os.getegid()).gr_name
            privileged = (
                f"default_login_user = {mail_user}\ndefault_internal_user = {mail_user}\n"
                "service imap-login {\n  chroot =\n}\n"
                "service auth {\n  user = $default_internal_user\n}\n"
            )
        mail_dir = directory / "mail"
        mail_dir.mkdir()
        for sub in ("run", "state"):
            (directory / sub).mkdir()
        if os.geteuid() == 0:
            shutil.chown(mail_dir, mail_user, mail_group)
        users = directory / "users"
        users.write_text(f"{self.username}:{{PLAIN}}{self.password}::::::\n")
        users.chmod(0o644)  # read by the auth process (user dovecot); a throwaway test password
        conf = directory / "dovecot.conf"
        conf.write_text(
            f"""# Throwaway dovecot for the Outreach tests (generated by tests/servers.py).
instance_name = outreach-test-{os.getpid()}-{port}
protocols = imap
listen = {HOST}
base_dir = {directory}/run
state_dir = {directory}/state
log_path = {directory}/dovecot.log
info_log_path = {directory}/dovecot.log
debug_log_path = {directory}/dovecot.log
shutdown_clients = yes
ssl = yes
ssl_cert = <{self.tls.cert_file}
ssl_key = <{self.tls.key_file}
ssl_min_protocol = TLSv1.2
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_failure_delay = 0
mail_location = maildir:{mail_dir}/%n
mail_fsync = never
{privileged}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {users}
}}
userdb {{
  driver = static
  args = uid={mail_user} gid={mail_group} home={mail_dir}/%n
}}
namespace inbox {{
  inbox = yes
  separator = /
  mailbox Sent {{
    special_use = \\Sent
    auto = subscribe
  }}
  mailbox Drafts {{
    special_use = \\Drafts
    auto = subscribe
  }}
  mailbox Junk {{
    special_use = \\Junk
    auto = subscribe
  }}
  mailbox Trash {{
    special_use = \\Trash
    auto = subscribe
  }}
}}
# No growing delay for logins from an IP after a failed one (tests try wrong passwords).
service anvil {{
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
service imap-login {{
  inet_listener imap {{
    address = {HOST}
    port = {port}
  }}
  inet_listener imaps {{
    address = {HOST}
    port = {ssl_port}
    ssl = yes
  }}
}}
"""
        )
        return conf

    def start(self, attempts: int = 3, timeout: float = 10.0) -> "IMAPTestServer":
        """Start dovecot in the foreground (as a child process) on free ports; return ``self``."""
        last_error = ""
        for _ in range(attempts):
            directory = Path(tempfile.mkdtemp(prefix="outreach-dovecot-"))
            directory.chmod(0o755)  # the mail user (nobody) must traverse it
            port, ssl_port = free_port(), free_port()
            conf = self._write_config(directory, port, ssl_port)
            process = subprocess.Popen(
                [self.binary, "-F", "-c", str(conf)],
                stdin=subprocess.DEVNULL,
                stdout=open(directory / "stdout.log", "wb"),
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            try:
                wait_for_greeting(HOST, port, b"* OK", timeout=timeout)
                wait_for_greeting(HOST, ssl_port, b"* OK", timeout=timeout, tls=self.tls.client_context())
            except (TimeoutError, OSError) as exc:
                last_error = f"{exc}\n{self._logs(directory)}"
                self._terminate(process)
                shutil.rmtree(directory, ignore_errors=True)
                continue
            self.directory, self.port, self.ssl_port, self._process = directory, port, ssl_port, process
            return self
        raise RuntimeError(f"could not start dovecot: {last_error}")

    @staticmethod
    def _logs(directory: Path) -> str:
        out = []
        for name in ("stdout.log", "dovecot.log"):
            path = directory / name
            if path.exists():
                out.append(f"--- {name} ---\n" + path.read_text(errors="replace")[-4000:])
        return "\n".join(out)

    @staticmethod
    def _terminate(process: subprocess.Popen) -> None:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()

    def logs(self) -> str:
        """Return the tail of dovecot's log files (for failure messages)."""
        return self._logs(self.directory) if self.directory else ""

    def stop(self) -> None:
        """Stop dovecot and delete its directory (idempotent)."""
        if self._process is not None:
            self._terminate(self._process)
            self._process = None
        if self.directory is not None:
            shutil.rmtree(self.directory, ignore_errors=True)
            self.directory = None

    # client helpers ---------------------------------------------------------------------------
    def client_context(self) -> ssl.SSLContext:
        """Return a verifying client ``SSLContext`` trusting the test CA."""
        return self.tls.client_context()

    def connect(self, tls: bool = False) -> imaplib.IMAP4:
        """Return a logged-in ``imaplib`` client (plain port, or the implicit-TLS port when ``tls``)."""
        if tls:
            client = imaplib.IMAP4_SSL(TLS_HOSTNAME, self.ssl_port, ssl_context=self.client_context(), timeout=10)
        else:
            client = imaplib.IMAP4(self.host, self.port, timeout=10)
        client.login(self.username, self.password)
        return client

    def fetch_all(self, folder: str = "Sent") -> list[bytes]:
        """Return the raw bytes of every message in ``folder``, oldest first (read-only, flags untouched)."""
        client = self.connect()
        try:
            typ, _ = client.select(_quote(folder), readonly=True)
            if typ != "OK":
                raise RuntimeError(f"cannot select {folder!r}")
            typ, data = client.uid("SEARCH", None, "ALL")
            uids = data[0].split() if data and data[0] else []
            messages = []
            for uid in uids:
                typ, parts = client.uid("FETCH", uid, "(BODY.PEEK[])")
                messages.extend(p[1] for p in parts if isinstance(p, tuple))
            return messages
        finally:
            client.logout()

    def append(self, folder: str, raw: bytes, flags: str = "") -> None:
        """Store the raw message ``raw`` in ``folder`` (e.g. a reply delivered to ``INBOX``)."""
        client = self.connect()
        try:
            typ, data = client.append(_quote(folder), flags or None, None, raw)
            if typ != "OK":
                raise RuntimeError(f"APPEND to {folder!r} failed: {data!r}")
        finally:
            client.logout()

    def reset_uidvalidity(self) -> None:
        """Make dovecot renumber INBOX: drop its UID list and indexes, so the next session sees a new
        UIDVALIDITY and new UIDs for the same messages (what a server restore or migration does)."""
        inbox = self.directory / "mail" / self.username.split("@")[0]
        for path in [inbox / "dovecot-uidlist", *inbox.glob("dovecot.index*")]:
            path.unlink(missing_ok=True)

    def clear(self) -> None:
        """Delete every message in every mailbox of the test user."""
        client = self.connect()
        try:
            typ, boxes = client.list()
            for line in boxes or []:
                name = line.decode().rsplit(' "/" ', 1)[-1]
                typ, count = client.select(name)
                if typ == "OK" and int(count[0] or 0) > 0:
                    client.store("1:*", "+FLAGS.SILENT", r"(\Deleted)")
                    client.expunge()
        finally:
            client.logout()

    def __repr__(self) -> str:
        return f"<IMAPTestServer imap://{self.host}:{self.port} imaps:{self.ssl_port} user={self.username}>"


def _quote(mailbox: str) -> str:
    return mailbox if mailbox.startswith('"') else '"' + mailbox.replace("\\", "\\\\").replace('"', '\\"') + '"'


class CapturingSMTPServer:
    """A plain-text SMTP server (aiosmtpd) on 127.0.0.1 that accepts any AUTH and records it:
    the "server an attacker controls" of the credential-extraction tests.

    ``auths``: list of (login, password) it was sent; ``ehlos``: how many sessions greeted it;
    ``messages``: raw DATA bytes. ``start()`` / ``stop()``; usable as a context manager.
    """

    def __init__(self):
        self.host = HOST
        self.port: int | None = None
        self.auths: list[tuple[str, str]] = []
        self.ehlos = 0
        self.messages: list[bytes] = []
        self._controller = None

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        self.ehlos += 1
        session.host_name = hostname
        return responses

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(bytes(envelope.original_content or envelope.content))
        return "250 OK"

    def _authenticate(self, server, session, envelope, mechanism, auth_data):
        from aiosmtpd.smtp import AuthResult, LoginPassword

        if isinstance(auth_data, LoginPassword):
            self.auths.append((auth_data.login.decode(), auth_data.password.decode()))
        return AuthResult(success=True, handled=False, auth_data=auth_data)

    def start(self) -> "CapturingSMTPServer":
        from aiosmtpd.controller import Controller

        self.port = free_port()
        self._controller = Controller(self, hostname=self.host, port=self.port, authenticator=self._authenticate,
                                      auth_require_tls=False, decode_data=False, ready_timeout=10)
        self._controller.start()
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
