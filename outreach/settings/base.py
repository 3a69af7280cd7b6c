"""Settings shared by every profile, read once from the environment with django-environ.

The profiles (cookiecutter-django's layout) import this module and change what differs:
``outreach.settings.local`` (the embedded default: SQLite, a filesystem Celery broker, dev keys;
``manage.py`` and ``celery -A outreach`` use it unless told otherwise), ``outreach.settings.production``
(PostgreSQL and Redis from the environment, secure cookies, HSTS; ``outreach.wsgi``'s default) and
``outreach.settings.test`` (what pytest and ``tests/run.sh`` use). Choose one with
``DJANGO_SETTINGS_MODULE``. Every variable is documented in ``.env.example``.

Nothing here touches the file system: folders (the filesystem broker's, beat's schedule file's) are
created where they are used (``outreach.celery``) and by ``runapp``.
"""
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured
import environ
from kombu import Queue

BASE_DIR = Path(__file__).resolve().parent.parent.parent
VAR_DIR = BASE_DIR / "var"

env = environ.Env()
if (BASE_DIR / ".env").is_file():
    environ.Env.read_env(BASE_DIR / ".env")

DEBUG = False

# No default outside the local profile. Left empty, Django refuses to use it ("The SECRET_KEY setting
# must not be empty") the moment anything signs or hashes, while commands that need no secret
# (makemigrations, check) still run.
SECRET_KEY = env("SECRET_KEY", default="")

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",  # intcomma for counts of up to millions of rows
    "django.contrib.postgres",  # pg_trgm index wrappers (OpClass); harmless on SQLite
    "django_htmx",
    "axes",
    "csp",
    "outreach",
    "providers",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "csp.middleware.CSPMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
    "axes.middleware.AxesMiddleware",
]

# django-axes first: it refuses a locked-out username/IP before the password is even checked.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "outreach.auth_backends.TeamModelBackend",
]

ROOT_URLCONF = "outreach.urls"
WSGI_APPLICATION = "outreach.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "outreach.context_processors.team",
            ],
        },
    },
]



def database_settings(url: str) -> dict:
    """``DATABASES["default"]`` for a database URL (django-environ syntax, e.g. ``postgres://u:p@host/db``
    or ``sqlite:////abs/path.sqlite3``): persistent connections (``CONN_MAX_AGE`` seconds, env, default
    60; 0 closes after each request or task) checked before reuse (``CONN_HEALTH_CHECKS``), and on
    SQLite the pragmas that let a web server and a worker share the file."""
    database = env.db_url_config(url)
    database["ATOMIC_REQUESTS"] = False
    database["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=60)
    database["CONN_HEALTH_CHECKS"] = True
    if database["ENGINE"].endswith("sqlite3"):
        # A worker and the web server share the file: wait for locks instead of failing.
        # WAL lets the web server read while the worker writes. synchronous=NORMAL (SQLITE_SYNCHRONOUS):
        # every commit is in the WAL before COMMIT returns, so it survives the death of any process
        # (the crash tests kill workers); an OS crash or power cut may roll back the last commits
        # (never corrupt the file), e.g. a hand-over marker, and that message would be sent again.
        # FULL syncs the WAL at every commit and closes that window; it costs the engine a fifth of its
        # throughput here (README, Benchmarks). Production runs on PostgreSQL (synchronous_commit on).
        synchronous = env.str("SQLITE_SYNCHRONOUS", default="NORMAL").upper()
        if synchronous not in ("NORMAL", "FULL", "EXTRA"):
            raise ImproperlyConfigured(f"SQLITE_SYNCHRONOUS must be NORMAL, FULL or EXTRA, not {synchronous!r}.")
        database.setdefault("OPTIONS", {}).update({
            "timeout": 20, "transaction_mode": "IMMEDIATE",
            "init_command": f"PRAGMA journal_mode=WAL; PRAGMA synchronous={synchronous};"})
    return database


#: The embedded default (the local profile): a SQLite file in the project.
EMBEDDED_DATABASE_URL = f"sqlite:///{BASE_DIR / 'db.sqlite3'}"
DATABASES = {"default": database_settings(env("DATABASE_URL", default=EMBEDDED_DATABASE_URL))}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = env("TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = env("STATIC_ROOT", default=str(BASE_DIR / "staticfiles"))
# WhiteNoise serves /static/ in every mode (DEBUG=false included): from STATIC_ROOT after
# `manage.py collectstatic` (compressed, cacheable), and straight from the apps' and static/
# folders when collectstatic was not run (WHITENOISE_USE_FINDERS), so `runapp` works as is.
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = env.bool("WHITENOISE_USE_FINDERS", default=True)
# Without collectstatic there is no STATIC_ROOT yet; the finders serve the files meanwhile.
import warnings  # noqa: E402

warnings.filterwarnings("ignore", message=r"No directory at: ")
MEDIA_ROOT = env("MEDIA_ROOT", default=str(VAR_DIR / "media"))
MEDIA_URL = "media/"

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "contact_list"
LOGOUT_REDIRECT_URL = "login"

# --- Security (HTTPS redirect, secure cookies and HSTS: outreach.settings.production) --------
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if env.bool("BEHIND_TLS_PROXY", default=False) else None
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"

# Content-Security-Policy (django-csp 4 format) on every response: scripts, styles and images
# only from this site (plus data: images); no inline script or style is needed by our templates
# (htmx's inline indicator style is switched off in base.html). The message page allows remote
# images for one response when the user asks (views.sent_messages).
from csp.constants import NONE, SELF  # noqa: E402

CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF, "data:"],
        "font-src": [SELF],
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    },
}

# Login throttling (django-axes): after AXES_FAILURE_LIMIT wrong passwords for one username from
# one IP address, that pair is locked for AXES_COOLOFF_TIME hours; a right password resets the
# count. Operators unlock in Django admin (Access attempts → delete) or with
# `manage.py axes_reset_username <username>` / `axes_reset_ip <ip>` / `axes_reset`.
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = env.float("AXES_COOLOFF_TIME", default=0.25)  # hours
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
AXES_IPWARE_PROXY_COUNT = env.int("AXES_IPWARE_PROXY_COUNT", default=1 if env.bool("BEHIND_TLS_PROXY", default=False) else 0)
AXES_VERBOSE = False

# Outgoing mail for invitations (django-environ EMAIL_URL, e.g. smtp+tls://user:pw@host:587);
# default: printed on the console.
vars().update(env.email_url("EMAIL_URL", default="consolemail://"))
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", default="outreach@localhost")
# Seconds an invitation link stays valid.
OUTREACH_INVITATION_MAX_AGE = env.int("OUTREACH_INVITATION_MAX_AGE", default=7 * 24 * 3600)

# --- Celery -------------------------------------------------------------------------


def celery_broker_settings(url: str) -> dict:
    """``CELERY_BROKER_URL``, ``CELERY_BROKER_TRANSPORT_OPTIONS`` and ``REDIS_URL`` for a broker URL.

    ``filesystem://`` (the embedded default) is kombu's filesystem transport, a broker that needs no
    server process: its folders are under CELERY_FILESYSTEM_BROKER_DIR (default ``var/broker``) and
    are created by ``outreach.celery`` when a worker starts or a task is first published, never here.
    ``REDIS_URL`` (shared state: rate limiters) defaults to the broker when the broker is Redis.
    """
    options: dict = {}
    if url.startswith("filesystem://"):
        broker_dir = Path(env("CELERY_FILESYSTEM_BROKER_DIR", default=str(VAR_DIR / "broker")))
        options = {
            "data_folder_in": str(broker_dir / "queue"),
            "data_folder_out": str(broker_dir / "queue"),
            "processed_folder": str(broker_dir / "processed"),
            "control_folder": str(broker_dir / "control"),
            "store_processed": False,
        }
    return {"CELERY_BROKER_URL": url, "CELERY_BROKER_TRANSPORT_OPTIONS": options,
            "REDIS_URL": env("REDIS_URL", default=url if url.startswith("redis") else "")}


# --- Celery time limits (seconds) and queues ------------------------------------------
# A soft limit raises SoftTimeLimitExceeded inside the task, which stops cleanly (a send batch gives
# back what it had not handed over); the hard limit kills the pool process, a crash the outbox
# recovers from. Both need the prefork pool (production); the solo pool (runapp, tests) ignores them.
CELERY_TASK_SOFT_TIME_LIMIT = env.int("CELERY_TASK_SOFT_TIME_LIMIT", default=300)
CELERY_TASK_TIME_LIMIT = env.int("CELERY_TASK_TIME_LIMIT", default=360)
# One send task is one chunk of OUTREACH_DISPATCH_CHUNK messages over one SMTP session.
OUTREACH_SEND_SOFT_TIME_LIMIT = env.int("OUTREACH_SEND_SOFT_TIME_LIMIT", default=600)
# One import task reads a whole CSV file (restarted, it resumes after its last committed batch).
# Kept under Redis's visibility timeout (1 h), after which an unacknowledged task goes to a second worker.
OUTREACH_IMPORT_SOFT_TIME_LIMIT = env.int("OUTREACH_IMPORT_SOFT_TIME_LIMIT", default=1800)
CELERY_TASK_ANNOTATIONS = {
    "outreach.send_messages": {"soft_time_limit": OUTREACH_SEND_SOFT_TIME_LIMIT,
                               "time_limit": OUTREACH_SEND_SOFT_TIME_LIMIT + 60},
    "outreach.send_message": {"soft_time_limit": 120, "time_limit": 180},
    "outreach.dispatch_due_messages": {"soft_time_limit": 60, "time_limit": 90},
    "outreach.campaigns_advance": {"soft_time_limit": 120, "time_limit": 180},
    "outreach.inbound.sync_mailboxes": {"soft_time_limit": 60, "time_limit": 90},
    "outreach.inbound.sync_mailbox": {"soft_time_limit": 300, "time_limit": 360},  # a run stops itself at 120 s
    "outreach.import_contacts": {"soft_time_limit": OUTREACH_IMPORT_SOFT_TIME_LIMIT,
                                 "time_limit": OUTREACH_IMPORT_SOFT_TIME_LIMIT + 120},
    "outreach.imports_expire": {"soft_time_limit": 600, "time_limit": 660},
    # A stopped run loses nothing: its lease expires and the sweep queues it again (it resumes).
    "outreach.bulk_job_run": {"soft_time_limit": OUTREACH_IMPORT_SOFT_TIME_LIMIT,
                              "time_limit": OUTREACH_IMPORT_SOFT_TIME_LIMIT + 120},
    "outreach.bulk_jobs_sweep": {"soft_time_limit": 60, "time_limit": 90},
}
# Three queues, so nothing slow can hold up a send: `celery` (sends, the outbox dispatcher, campaigns),
# `imports` (long, bulk CSV imports) and `inbound` (the IMAP sync: a slow or hanging server delays
# only other mailboxes' syncs). Production runs a worker per queue (`celery -A outreach worker -Q
# celery`, `... -Q imports`, `... -Q inbound`); a worker started without -Q consumes them all.
# runapp starts one worker per queue; the tests' workers consume every queue.
CELERY_TASK_DEFAULT_QUEUE = "celery"
CELERY_TASK_QUEUES = [Queue("celery"), Queue("imports"), Queue("inbound")]
CELERY_TASK_ROUTES = {"outreach.import_contacts": {"queue": "imports"},
                      "outreach.bulk_job_run": {"queue": "imports"},  # long bulk writes, like imports
                      "outreach.imports_expire": {"queue": "imports"},
                      "outreach.inbound.sync_mailboxes": {"queue": "inbound"},
                      "outreach.inbound.sync_mailbox": {"queue": "inbound"}}

vars().update(celery_broker_settings(env("CELERY_BROKER_URL", default="filesystem://")))
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ALWAYS_EAGER = False
# Periodic tasks (a plain dict: other features add their entries). The outbox dispatcher claims due
# messages; `runapp` runs beat inside its worker (-B), production runs `celery -A outreach beat`.
# Seconds between two outbox dispatcher runs (Celery beat; see "Periodic tasks" at the end).
OUTREACH_DISPATCH_INTERVAL_SECONDS = env.float("OUTREACH_DISPATCH_INTERVAL_SECONDS", default=2.0)
CELERY_BEAT_SCHEDULE_FILENAME = env("CELERY_BEAT_SCHEDULE_FILENAME", default=str(VAR_DIR / "celerybeat-schedule"))
# Publishing a task gives up quickly when the broker is down (the outbox keeps the message).
CELERY_BROKER_CONNECTION_TIMEOUT = env.float("CELERY_BROKER_CONNECTION_TIMEOUT", default=3.0)
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True

# --- Credentials encryption -----------------------------------------------------------
# Comma-separated Fernet keys, newest first. The first encrypts; all decrypt (rotation).
OUTREACH_ENCRYPTION_KEYS = env.list("OUTREACH_ENCRYPTION_KEYS", default=[])
# Without keys (outside the local profile, which has a dev key), reading or writing any credential
# raises ImproperlyConfigured (outreach.crypto) naming OUTREACH_ENCRYPTION_KEYS; nothing falls back
# to a built-in key.

# --- Mail hosts ------------------------------------------------------------------------
# Private/loopback mail servers are refused unless explicitly allowed (local development, tests).
OUTREACH_ALLOW_PRIVATE_MAIL_HOSTS = env.bool("OUTREACH_ALLOW_PRIVATE_MAIL_HOSTS", default=False)
OUTREACH_SMTP_PORTS = env.list("OUTREACH_SMTP_PORTS", cast=int, default=[25, 465, 587, 2525])
OUTREACH_IMAP_PORTS = env.list("OUTREACH_IMAP_PORTS", cast=int, default=[143, 993])
# Send SMTP/IMAP passwords over an unencrypted connection (security "none") to public hosts.
# Off: such logins are refused (loopback/private hosts are always allowed).
OUTREACH_ALLOW_PLAINTEXT_AUTH = env.bool("OUTREACH_ALLOW_PLAINTEXT_AUTH", default=False)
# Seconds for connect and each read on SMTP/IMAP sockets.
OUTREACH_MAIL_TIMEOUT = env.float("OUTREACH_MAIL_TIMEOUT", default=20.0)
# Extra CA bundle for mail servers with private certificates (tests); empty = system store.
OUTREACH_MAIL_CA_FILE = env("OUTREACH_MAIL_CA_FILE", default="")

# Attachments on one message, in bytes.
OUTREACH_MAX_ATTACHMENTS_BYTES = env.int("OUTREACH_MAX_ATTACHMENTS_BYTES", default=20 * 1024 * 1024)
FILE_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024
DATA_UPLOAD_MAX_MEMORY_SIZE = 30 * 1024 * 1024

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", default="INFO")},
    # flufl.bounce logs every detector it runs at INFO.
    "loggers": {"flufl.bounce": {"level": "WARNING"}},
}

# --- Sending ---------------------------------------------------------------------------
OUTREACH_SEND_MAX_ATTEMPTS = env.int("OUTREACH_SEND_MAX_ATTEMPTS", default=5)
OUTREACH_RETRY_BASE_SECONDS = env.float("OUTREACH_RETRY_BASE_SECONDS", default=30.0)
OUTREACH_RETRY_MAX_SECONDS = env.float("OUTREACH_RETRY_MAX_SECONDS", default=3600.0)
# The outbox dispatcher: due rows claimed per run, and messages per worker task (one SMTP session).
OUTREACH_DISPATCH_BATCH_SIZE = env.int("OUTREACH_DISPATCH_BATCH_SIZE", default=500)
OUTREACH_DISPATCH_CHUNK = env.int("OUTREACH_DISPATCH_CHUNK", default=50)
# Seconds a claimed message may wait for a worker to take it, and a worker's lease while it sends
# (renewed before each message of its batch). An expired lease is recovered by the dispatcher.
OUTREACH_DISPATCH_LEASE_SECONDS = env.float("OUTREACH_DISPATCH_LEASE_SECONDS", default=120.0)
OUTREACH_SEND_LEASE_SECONDS = env.float("OUTREACH_SEND_LEASE_SECONDS", default=180.0)
# Seconds before a message held back by our own infrastructure (Redis, database, broker) is tried again.
OUTREACH_INFRA_RETRY_SECONDS = env.float("OUTREACH_INFRA_RETRY_SECONDS", default=10.0)
# SMTP session reuse per worker: messages per connection, and seconds idle before it is closed.
OUTREACH_SMTP_MAX_MESSAGES_PER_CONNECTION = env.int("OUTREACH_SMTP_MAX_MESSAGES_PER_CONNECTION", default=100)
OUTREACH_SMTP_IDLE_SECONDS = env.float("OUTREACH_SMTP_IDLE_SECONDS", default=30.0)

# --- HTTP providers (lemlist, leadlex, OpenMail, Unipile) ------------------------------
# Seconds to establish a connection, and to wait for each read of the answer.
OUTREACH_HTTP_CONNECT_TIMEOUT = env.float("OUTREACH_HTTP_CONNECT_TIMEOUT", default=5.0)
OUTREACH_HTTP_READ_TIMEOUT = env.float("OUTREACH_HTTP_READ_TIMEOUT", default=30.0)
# The shared limiter paces each API key this much slower than its documented limit (0.1 = 10 %; 0.03
# reaches 97 % of lemlist's limit in one process, but drew 429s across processes on a loaded machine);
# responses with X-RateLimit-Remaining: 0 also hold every sender of the key until X-RateLimit-Reset.
OUTREACH_RATE_LIMIT_MARGIN = env.float("OUTREACH_RATE_LIMIT_MARGIN", default=0.1)
# Longer than this (seconds) in the limiter's queue and the message is re-queued instead of waiting.
OUTREACH_RATE_LIMIT_MAX_WAIT = env.float("OUTREACH_RATE_LIMIT_MAX_WAIT", default=30.0)
# Provider base URLs on loopback/private addresses (and plain http) only when allowed (tests, gateways).
OUTREACH_ALLOW_PRIVATE_PROVIDER_URLS = env.bool("OUTREACH_ALLOW_PRIVATE_PROVIDER_URLS", default=False)

# --- CSV imports -----------------------------------------------------------------------
# Largest accepted upload, bytes.
OUTREACH_IMPORT_MAX_BYTES = env.int("OUTREACH_IMPORT_MAX_BYTES", default=256 * 1024 * 1024)
# An upload still waiting for its column mapping after this many hours is expired and its file removed.
OUTREACH_IMPORT_MAPPING_EXPIRY_HOURS = env.int("OUTREACH_IMPORT_MAPPING_EXPIRY_HOURS", default=24)
# Uploaded files and error reports of finished imports are removed after this many days (the job's counts stay).
OUTREACH_IMPORT_RETENTION_DAYS = env.int("OUTREACH_IMPORT_RETENTION_DAYS", default=30)
# Files of this size (bytes) or more are parsed in a child process beside the one writing (0: never). Off by
# default: it pays where a core is idle; on a saturated 2-core machine it measured 5-15 % slower (README).
OUTREACH_IMPORT_PARSE_PROCESS_BYTES = env.int("OUTREACH_IMPORT_PARSE_PROCESS_BYTES", default=0)


# --- Bulk jobs (outreach/services/bulk_jobs.py) -------------------------------------------
# A list page's "all N matching" bulk action on more rows than this runs as a background job
# (BulkJob, a Celery task) instead of inside the request; checked ids always run in the request.
OUTREACH_BULK_JOB_THRESHOLD = env.int("OUTREACH_BULK_JOB_THRESHOLD", default=1000)
# Rows per batch of a bulk job (one transaction each, with the job's progress).
OUTREACH_BULK_JOB_BATCH = env.int("OUTREACH_BULK_JOB_BATCH", default=5000)
# A running job's claim lasts this long past its last committed batch (seconds); an expired one
# (a killed worker) is queued again by the sweep, which runs every OUTREACH_BULK_JOB_SWEEP_SECONDS
# and also re-publishes jobs still queued after that long (a lost task message).
OUTREACH_BULK_JOB_LEASE_SECONDS = env.float("OUTREACH_BULK_JOB_LEASE_SECONDS", default=300.0)
OUTREACH_BULK_JOB_SWEEP_SECONDS = env.float("OUTREACH_BULK_JOB_SWEEP_SECONDS", default=60.0)

# --- Campaigns -------------------------------------------------------------------------
# Campaign messages one mailbox may have waiting in the outbox at a time: the scheduler creates the
# next ones as these go, so an edited step applies to every message not yet created.
OUTREACH_CAMPAIGN_OUTBOX_PER_MAILBOX = env.int("OUTREACH_CAMPAIGN_OUTBOX_PER_MAILBOX", default=5)
# How far back (seconds) each scheduler run looks for replies, bounces and unsubscribes to stop on.
OUTREACH_CAMPAIGN_STOP_LOOKBACK_SECONDS = env.int("OUTREACH_CAMPAIGN_STOP_LOOKBACK_SECONDS", default=86400)
# Seconds between two scheduler runs (Celery beat).
OUTREACH_CAMPAIGN_TICK_SECONDS = env.float("OUTREACH_CAMPAIGN_TICK_SECONDS", default=10.0)

# --- Inbound mail (outreach/inbound/) ----------------------------------------------------
# The public address of this site, for links in outgoing mail (one-click unsubscribe, RFC 8058).
# Required in production (a system check fails without it); https in production.
OUTREACH_PUBLIC_BASE_URL = env("OUTREACH_PUBLIC_BASE_URL", default="")
# The first sync of a mailbox (and a re-read after UIDVALIDITY changed) reads this many days back.
OUTREACH_INBOUND_LOOKBACK_DAYS = env.int("OUTREACH_INBOUND_LOOKBACK_DAYS", default=14)
# Bounds of one sync run of one mailbox: messages, seconds, and bytes read of each message.
OUTREACH_INBOUND_MAX_MESSAGES_PER_RUN = env.int("OUTREACH_INBOUND_MAX_MESSAGES_PER_RUN", default=5000)
OUTREACH_INBOUND_MAX_SECONDS_PER_RUN = env.float("OUTREACH_INBOUND_MAX_SECONDS_PER_RUN", default=120.0)
OUTREACH_INBOUND_MAX_MESSAGE_BYTES = env.int("OUTREACH_INBOUND_MAX_MESSAGE_BYTES", default=1024 * 1024)
OUTREACH_INBOUND_BATCH_SIZE = env.int("OUTREACH_INBOUND_BATCH_SIZE", default=100)
# A failing mailbox waits base × 2^(failures-1) seconds, at most max, before the next try.
OUTREACH_INBOUND_RETRY_BASE_SECONDS = env.float("OUTREACH_INBOUND_RETRY_BASE_SECONDS", default=60.0)
OUTREACH_INBOUND_RETRY_MAX_SECONDS = env.float("OUTREACH_INBOUND_RETRY_MAX_SECONDS", default=3600.0)
# How often Celery beat starts the sync of every mailbox, seconds.
OUTREACH_INBOUND_SYNC_INTERVAL_SECONDS = env.float("OUTREACH_INBOUND_SYNC_INTERVAL_SECONDS", default=60.0)

# Periodic tasks (Celery beat). A plain dict: each feature adds its entries.
CELERY_IMPORTS = [*globals().get("CELERY_IMPORTS", []), "outreach.inbound.tasks"]

# --- Periodic tasks (Celery beat) ------------------------------------------------------
# The one schedule: every feature's entry is listed here, after the settings it reads (a second
# assignment elsewhere would silently drop the others, e.g. the outbox dispatcher).
CELERY_BEAT_SCHEDULE = {
    "outbox-dispatch": {"task": "outreach.dispatch_due_messages", "schedule": OUTREACH_DISPATCH_INTERVAL_SECONDS,
                        "options": {"expires": 30}},
    "campaigns-advance": {"task": "outreach.campaigns_advance", "schedule": OUTREACH_CAMPAIGN_TICK_SECONDS,
                          "options": {"expires": OUTREACH_CAMPAIGN_TICK_SECONDS}},
    "inbound-sync-mailboxes": {"task": "outreach.inbound.sync_mailboxes", "schedule": OUTREACH_INBOUND_SYNC_INTERVAL_SECONDS,
                               "options": {"expires": OUTREACH_INBOUND_SYNC_INTERVAL_SECONDS}},
    "imports-expire": {"task": "outreach.imports_expire", "schedule": 3600.0},
    "bulk-jobs-sweep": {"task": "outreach.bulk_jobs_sweep", "schedule": OUTREACH_BULK_JOB_SWEEP_SECONDS,
                        "options": {"expires": OUTREACH_BULK_JOB_SWEEP_SECONDS}},
}
