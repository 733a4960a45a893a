"""Mailsite settings. Every option is read from the environment here, in one place.

| Variable                        | Default                               | Meaning                                    |
|---------------------------------|---------------------------------------|--------------------------------------------|
| MAILSITE_DATA_DIR               | var/ (in the checkout)                | SQLite file, broker spool, TLS pair, keys  |
| DATABASE_URL                    | sqlite:///<data dir>/mailsite.sqlite3 | postgres://user@host:5432/db in production |
| MAILSITE_BROKER_URL             | filesystem:// spool under data dir    | redis://host:6379/0 in production          |
| MAILSITE_HOSTNAME               | this machine's FQDN                   | HELO/EHLO name, Received headers, banners  |
| MAILSITE_SECRET_KEY             | generated into the data dir (SQLite)  | Django's signing key; required otherwise   |
| MAILSITE_DEBUG                  | false                                 | Django debug pages (never in production)   |
| MAILSITE_ALLOWED_HOSTS          | hostname, localhost, 127.0.0.1        | web host names, comma separated            |
| MAILSITE_MAX_MESSAGE_SIZE       | 25M                                   | largest message accepted (bytes, K/M/G)    |
| MAILSITE_TLS_CERT / _TLS_KEY    | self-signed pair made in the data dir | PEM certificate chain and private key      |
| MAILSITE_BIND                   | 127.0.0.1                             | address every listener binds to            |
| MAILSITE_SMTP_PORT              | 2525                                  | MX (inbound SMTP)                          |
| MAILSITE_SUBMISSION_PORT        | 2587                                  | submission with STARTTLS                   |
| MAILSITE_SMTPS_PORT             | 2465                                  | submission with implicit TLS               |
| MAILSITE_POP3_PORT / _POP3S_PORT| 1110 / 1995                           | POP3 with STLS / implicit TLS              |
| MAILSITE_MANAGESIEVE_PORT       | 4190                                  | ManageSieve with STARTTLS (RFC 5804)       |
| MAILSITE_IMAP_PORT / _IMAPS_PORT| 1143 / 1993                           | IMAP with STARTTLS / implicit TLS          |
| MAILSITE_HTTP_PORT              | 8000                                  | webmail and admin                          |
| MAILSITE_ALLOW_PLAINTEXT_AUTH   | false                                 | allow passwords without TLS off loopback   |
| MAILSITE_RECIPIENT_DELIMITER    | +                                     | user+tag@domain reaches user@domain        |
| MAILSITE_AUTH_MAX_FAILURES      | 5                                     | failures per address before throttling    |
| MAILSITE_AUTH_MAX_IP_FAILURES   | 20                                    | failures per client IP before throttling  |
| MAILSITE_AUTH_WINDOW            | 900                                   | seconds failures are counted for           |
| MAILSITE_AUTH_FAILURE_DELAY     | 2                                     | seconds a protocol waits before "failed"   |
| MAILSITE_DB_THREADS             | 8                                     | database threads per listener process      |
| MAILSITE_PASSWORD_THREADS       | 2                                     | password-check threads per listener process|
| MAILSITE_PASSWORD_CACHE_SECONDS | 60                                    | a checked password is remembered (0: off)  |
| MAILSITE_RELAY_KEEP             | 30d                                   | how long delivered/bounced mail is kept    |
| MAILSITE_RETENTION_DAYS         | 14                                    | days removed mail stays restorable (0: off)|
| MAILSITE_IMPORT_PRIVATE_HOSTS   | false                                 | webmail IMAP import may reach private IPs  |
| MAILSITE_DB_CONN_MAX_AGE        | 300                                   | seconds a listener reuses a DB connection  |
| MAILSITE_DNS_NAMESERVERS        | the system's resolvers                | host[:port],... the relay asks for MX      |
| MAILSITE_DNS_TIMEOUT            | 10                                    | seconds one DNS lookup may take            |
| MAILSITE_RELAY_PORT             | 25                                    | port the relay connects to on MX hosts     |
| MAILSITE_RELAY_TIMEOUT          | 120                                   | seconds per SMTP command of the relay      |
| MAILSITE_RELAY_RETRY_SCHEDULE   | 1m,5m,15m,30m,1h                      | waits after each failure; the last repeats |
| MAILSITE_RELAY_MAX_AGE          | 5d                                    | give up (bounce) after this long in queue  |
| MAILSITE_RELAY_DELAY_WARNING    | 4h                                    | tell the sender of a delay after this long |
| MAILSITE_RELAY_CLAIM_TIMEOUT    | 30m                                   | a killed attempt is retried after this     |
| MAILSITE_RELAY_SWEEP_INTERVAL   | 60s                                   | how often the sweep looks for lost tasks   |
| MAILSITE_RELAY_SWEEP_GRACE      | 5m                                    | overdue this long = the task was lost      |
| MAILSITE_RELAY_QUEUE            | celery                                | Celery queue of the relay's tasks          |
| MAILSITE_SEND_LATER_INTERVAL    | 30s                                   | how often due "send later" mail is sent    |
| MAILSITE_DKIM_SELECTOR          | mailsite                              | selector of generated DKIM keys            |
| MAILSITE_RELAY_REUSE_MESSAGES   | 100                                   | messages one relay session carries (1: off)|
| MAILSITE_RELAY_REUSE_TIME       | 300s                                  | a relay session takes no new message after|
| MAILSITE_RELAY_CONCURRENCY      | 20                                    | sessions at once to one recipient domain   |
| MAILSITE_RELAY_DESTINATION_CONCURRENCY | (none)                         | per-domain: example.net=2,example.org=5    |
| MAILSITE_RELAY_MTA_STS          | true                                  | honour recipient domains' MTA-STS policies |
| MAILSITE_RELAY_CA_FILE          | (system CAs only)                     | more CAs for MX and MTA-STS policy hosts   |
| MAILSITE_RELAY_HTTPS_PORT       | 443                                   | port of mta-sts.<domain> policy hosts      |
| MAILSITE_RELAY_ROUTES           | (none: MX hosts for every domain)     | smarthosts with AUTH (see relay/routes.py) |
| MAILSITE_RELAY_DEAD_AFTER       | 2                                     | attempts reaching no host: destination dead|
| MAILSITE_RELAY_DEAD_TIME        | 5m                                    | a dead destination is not tried this long  |
| MAILSITE_INSECURE_HTTP          | false                                 | serve plain HTTP off the embedded SQLite   |
| MAILSITE_TRUSTED_PROXIES        | (none)                                | proxies whose X-Forwarded-For/Proto count  |
| MAILSITE_HTTPS_PORT             | (none: no HTTPS listener)             | web over TLS, with the mail certificate    |
| MAILSITE_TLS_RELOAD_INTERVAL    | 60                                    | seconds between checks for a renewed cert  |
| MAILSITE_ACME                   | false                                 | obtain and renew the certificate by ACME   |
| MAILSITE_ACME_DIRECTORY         | Let's Encrypt                         | ACME directory URL (RFC 8555 7.1.1)        |
| MAILSITE_ACME_EMAIL             | (none)                                | contact the CA writes to about expiry      |
| MAILSITE_ACME_NAMES             | (none)                                | names besides the hostname, comma separated|
| MAILSITE_ACME_RENEW_DAYS        | 30                                    | renew this many days before expiry         |
| MAILSITE_ACME_CA_BUNDLE         | (system CAs)                          | CA file for a private ACME server's HTTPS  |
| MAILSITE_MTA_STS_MODE           | testing                               | MTA-STS policy mode: enforce/testing/none  |
| MAILSITE_MTA_STS_MAX_AGE        | 604800                                | seconds senders may cache the policy       |
| MAILSITE_LOG_FORMAT             | text                                  | text, or json: one JSON object per line    |
| MAILSITE_METRICS_TOKEN          | (none: /metrics from loopback only)   | bearer token /metrics asks others for      |
| MAILSITE_METRICS_DIR            | <data dir>/metrics                    | prometheus-client multiprocess files       |
| MAILSITE_PROXY_PROTOCOL_FROM    | (none)                                | balancers that must send a PROXY header    |
| MAILSITE_READY_LISTENERS        | (none)                                | name=host:port,... /readyz also connects to|
| MAILSITE_CONNECTION_LEASE       | 60s                                   | a dead process's sessions count this long  |
| MAILSITE_LIMITS_PREFIX          | mailsite:limits:                      | Redis key prefix of the shared limits      |
| MAILSITE_SUBMISSION_RATE        | (none: no limit)                      | messages per account, e.g. 200/1h          |

Inbound trust at the MX (mailauth/):

| Variable                        | Default | Meaning                                                          |
|---------------------------------|---------|------------------------------------------------------------------|
| MAILSITE_AUTH_VERIFY            | true    | SPF, DKIM, ARC and DMARC checks and policy on the MX             |
| MAILSITE_TRUSTED_NETWORKS       | (none)  | CIDRs whose mail skips them (loopback is not trusted by default) |
| MAILSITE_AUTH_TIMEOUT           | 20      | seconds all checks of one message may take (RFC 7208 4.6.4)      |
| MAILSITE_AUTH_THREADS           | 8       | threads per listener process doing verification (blocking DNS)   |
| MAILSITE_DKIM_MAX_SIGNATURES    | 10      | DKIM signatures verified per message; later ones are not         |
| MAILSITE_REJECT_SPF_FAIL        | false   | refuse (550 5.7.23) SPF fail even where DMARC does not ask to    |
| MAILSITE_REJECT_DKIM_FAIL       | false   | refuse (550 5.7.20) a failed DKIM signature with none passing    |
| MAILSITE_DNSBL_ZONES            | (none)  | blocklists (zen.spamhaus.org,...); listed clients get 554 5.7.1  |
| MAILSITE_AUTH_CACHE_SECONDS     | 10      | seconds a process keeps our domains and users' junk settings     |
| MAILSITE_RSPAMD_URL             | (none)  | rspamd's scanner (http://host:11333); unset: built-in filter     |
| MAILSITE_RSPAMD_CONTROLLER_URL  | (none)  | rspamd's controller (http://host:11334), for training            |
| MAILSITE_RSPAMD_TIMEOUT         | 10      | seconds a scan may take; then the message goes in unscored       |
| MAILSITE_SPAM_JUNK_SCORE        | 6       | score from which a message is delivered into Junk                |
| MAILSITE_SPAM_REJECT_SCORE      | 15      | score from which a message is refused (550 5.7.1)                |

Listener-specific options (timeouts, limits) are documented next to their listener below.

SMTP listeners (smtpd/):

| Variable                             | Default | Meaning                                                   |
|--------------------------------------|---------|-----------------------------------------------------------|
| MAILSITE_SMTP_PROCESSES              | 1       | processes `manage.py smtpd` or `listen` run (SO_REUSEPORT) |
| MAILSITE_SMTP_COMMAND_TIMEOUT        | 300     | seconds to wait for the next command (RFC 5321 4.5.3.2.7) |
| MAILSITE_SMTP_LINE_DEADLINE          | 60      | seconds a started command line has to arrive completely   |
| MAILSITE_SMTP_DATA_BLOCK_TIMEOUT     | 180     | seconds of silence allowed inside DATA (4.5.3.2.5)        |
| MAILSITE_SMTP_DATA_DEADLINE          | 600     | seconds the whole DATA transfer may take                  |
| MAILSITE_SMTP_MAX_CONNECTIONS_PER_IP | 50      | concurrent sessions per client IP, over all processes     |
| MAILSITE_SMTP_MAX_ERRORS             | 20      | error replies in a session before 421 (Postfix: 20)       |
| MAILSITE_ETRN_NETWORKS               | (none)  | CIDRs whose ETRN (RFC 1985) runs the queue for a domain   |

IMAP listeners (imapd/):

| Variable                   | Default | Meaning                                                               |
|----------------------------|---------|-----------------------------------------------------------------------|
| MAILSITE_IMAP_IDLE_TIMEOUT | 1800    | seconds without client input (IDLE too) before `* BYE` (RFC 3501 5.4) |
| MAILSITE_IMAP_EXPUNGE_KEEP | 30d     | expunges QRESYNC names exactly; older ones: every missing UID instead |
"""

from __future__ import annotations

import ipaddress
import secrets
import socket
import sys
from pathlib import Path

import dj_database_url

from mailsite import hardening
from mailsite.env import Env, SettingError
from ops import targets as ops_targets
from relay.policy import parse_schedule
from relay.routes import parse_routes

BASE_DIR = Path(__file__).resolve().parent.parent
env = Env()


def _durations(name: str, default: str) -> tuple[int, ...]:
    """Seconds from a list of durations such as "1m,5m,4h,5d" (the relay's retry schedule and limits)."""
    try:
        return parse_schedule(env.str(name, default))
    except ValueError as exc:
        raise SettingError(f"{name}: {exc}") from None


def _duration(name: str, default: str) -> int:
    values = _durations(name, default)
    if len(values) != 1:
        raise SettingError(f"{name} must be one duration such as 30s, 15m, 4h or 5d")
    return values[0]


def _rate(name: str) -> tuple[int, int] | None:
    """(count, seconds) from "200/1h"; None when unset (no limit)."""
    text = env.str(name, "").strip()
    if not text:
        return None
    count, _, window = text.partition("/")
    try:
        [seconds] = parse_schedule(window)
    except ValueError:
        seconds = 0
    if not count.strip().isdigit() or int(count) < 1 or seconds < 1:
        raise SettingError(f"{name} must look like 200/1h (messages per duration), got {text!r}")
    return int(count), seconds


def _per_domain(name: str) -> dict[str, int]:
    """{"example.net": 2} from "example.net=2,..." (per-destination overrides of a relay limit)."""
    limits = {}
    for item in env.list(name, []):
        domain, _, number = item.partition("=")
        if not domain.strip() or not number.strip().isdigit() or int(number) < 1:
            raise SettingError(f"{name} entries must look like example.net=2, got {item!r}")
        limits[domain.strip().lower().rstrip(".")] = int(number)
    return limits


try:
    DATA_DIR = env.path("MAILSITE_DATA_DIR", Path("var"), base=BASE_DIR)
    MAILSITE_HOSTNAME = env.str("MAILSITE_HOSTNAME", socket.getfqdn() or "localhost").lower()
    DEBUG = env.bool("MAILSITE_DEBUG", False)
    MAILSITE_MAX_MESSAGE_SIZE = env.size("MAILSITE_MAX_MESSAGE_SIZE", 25 * 1024 * 1024)
    MAILSITE_BIND = env.str("MAILSITE_BIND", "127.0.0.1")
    MAILSITE_SMTP_PORT = env.port("MAILSITE_SMTP_PORT", 2525)
    MAILSITE_SUBMISSION_PORT = env.port("MAILSITE_SUBMISSION_PORT", 2587)
    MAILSITE_SMTPS_PORT = env.port("MAILSITE_SMTPS_PORT", 2465)
    MAILSITE_POP3_PORT = env.port("MAILSITE_POP3_PORT", 1110)
    MAILSITE_POP3S_PORT = env.port("MAILSITE_POP3S_PORT", 1995)
    MAILSITE_MANAGESIEVE_PORT = env.port("MAILSITE_MANAGESIEVE_PORT", 4190)
    MAILSITE_IMAP_PORT = env.port("MAILSITE_IMAP_PORT", 1143)
    MAILSITE_IMAPS_PORT = env.port("MAILSITE_IMAPS_PORT", 1993)
    MAILSITE_HTTP_PORT = env.port("MAILSITE_HTTP_PORT", 8000)
    MAILSITE_TLS_CERT = env.optional_path("MAILSITE_TLS_CERT", base=BASE_DIR)
    MAILSITE_TLS_KEY = env.optional_path("MAILSITE_TLS_KEY", base=BASE_DIR)
    if (MAILSITE_TLS_CERT is None) != (MAILSITE_TLS_KEY is None):
        raise SettingError("MAILSITE_TLS_CERT and MAILSITE_TLS_KEY must be given together")
    MAILSITE_ALLOW_PLAINTEXT_AUTH = env.bool("MAILSITE_ALLOW_PLAINTEXT_AUTH", False)
    MAILSITE_RECIPIENT_DELIMITER = env.str("MAILSITE_RECIPIENT_DELIMITER", "+")
    MAILSITE_AUTH_MAX_FAILURES = env.int("MAILSITE_AUTH_MAX_FAILURES", 5, minimum=1)
    MAILSITE_AUTH_MAX_IP_FAILURES = env.int("MAILSITE_AUTH_MAX_IP_FAILURES", 20, minimum=1)
    MAILSITE_AUTH_WINDOW = env.int("MAILSITE_AUTH_WINDOW", 900, minimum=1)
    MAILSITE_AUTH_FAILURE_DELAY = env.float("MAILSITE_AUTH_FAILURE_DELAY", 2.0)
    MAILSITE_DB_THREADS = env.int("MAILSITE_DB_THREADS", 8, minimum=1, maximum=256)
    MAILSITE_PASSWORD_THREADS = env.int("MAILSITE_PASSWORD_THREADS", 2, minimum=1, maximum=64)
    MAILSITE_PASSWORD_CACHE_SECONDS = env.int("MAILSITE_PASSWORD_CACHE_SECONDS", 60, minimum=0, maximum=3600)
    MAILSITE_DB_CONN_MAX_AGE = env.int("MAILSITE_DB_CONN_MAX_AGE", 300, minimum=0)
    # POP3 (pop3d/): seconds a session may stay idle before it is closed; RFC 1939 3 asks for at least 10 minutes.
    MAILSITE_POP3_IDLE_TIMEOUT = env.int("MAILSITE_POP3_IDLE_TIMEOUT", 600, minimum=600)
    # IMAP (imapd/): seconds without client input before the session is closed (RFC 3501 5.4 asks for at least
    # 30 minutes; lower values are for tests).
    MAILSITE_IMAP_IDLE_TIMEOUT = env.float("MAILSITE_IMAP_IDLE_TIMEOUT", 1800.0, minimum=0.1)
    # How long the expunge log keeps an expunge (mailboxes/actions/expunge_log.py; RFC 7162 3.2.6).
    MAILSITE_IMAP_EXPUNGE_KEEP = _duration("MAILSITE_IMAP_EXPUNGE_KEEP", "30d")
    MAILSITE_SMTP_PROCESSES = env.int("MAILSITE_SMTP_PROCESSES", 1, minimum=1, maximum=64)
    MAILSITE_SMTP_COMMAND_TIMEOUT = env.float("MAILSITE_SMTP_COMMAND_TIMEOUT", 300.0, minimum=0.1)
    MAILSITE_SMTP_LINE_DEADLINE = env.float("MAILSITE_SMTP_LINE_DEADLINE", 60.0, minimum=0.1)
    MAILSITE_SMTP_DATA_BLOCK_TIMEOUT = env.float("MAILSITE_SMTP_DATA_BLOCK_TIMEOUT", 180.0, minimum=0.1)
    MAILSITE_SMTP_DATA_DEADLINE = env.float("MAILSITE_SMTP_DATA_DEADLINE", 600.0, minimum=0.1)
    MAILSITE_SMTP_MAX_CONNECTIONS_PER_IP = env.int("MAILSITE_SMTP_MAX_CONNECTIONS_PER_IP", 50, minimum=1)  # Postfix: 50
    MAILSITE_SMTP_MAX_ERRORS = env.int("MAILSITE_SMTP_MAX_ERRORS", 20, minimum=1)
    MAILSITE_DNS_NAMESERVERS = env.host_ports("MAILSITE_DNS_NAMESERVERS")
    MAILSITE_DNS_TIMEOUT = env.float("MAILSITE_DNS_TIMEOUT", 10.0, minimum=0.1)
    MAILSITE_RELAY_PORT = env.port("MAILSITE_RELAY_PORT", 25)
    MAILSITE_RELAY_TIMEOUT = env.float("MAILSITE_RELAY_TIMEOUT", 120.0, minimum=0.1)
    MAILSITE_RELAY_RETRY_SCHEDULE = _durations("MAILSITE_RELAY_RETRY_SCHEDULE", "1m,5m,15m,30m,1h")
    MAILSITE_RELAY_MAX_AGE = _duration("MAILSITE_RELAY_MAX_AGE", "5d")
    MAILSITE_RELAY_KEEP = _duration("MAILSITE_RELAY_KEEP", "30d")
    MAILSITE_RETENTION_DAYS = env.int("MAILSITE_RETENTION_DAYS", 14, minimum=0)
    # Off, the webmail's IMAP import refuses servers on loopback, private and link-local addresses, so a user
    # cannot reach into the network the mail system runs in (transfer/jobs.py).
    MAILSITE_IMPORT_PRIVATE_HOSTS = env.bool("MAILSITE_IMPORT_PRIVATE_HOSTS", False)
    MAILSITE_RELAY_DELAY_WARNING = _duration("MAILSITE_RELAY_DELAY_WARNING", "4h")
    MAILSITE_RELAY_CLAIM_TIMEOUT = _duration("MAILSITE_RELAY_CLAIM_TIMEOUT", "30m")
    MAILSITE_RELAY_SWEEP_INTERVAL = _duration("MAILSITE_RELAY_SWEEP_INTERVAL", "60s")
    MAILSITE_RELAY_SWEEP_GRACE = _duration("MAILSITE_RELAY_SWEEP_GRACE", "5m")
    MAILSITE_RELAY_SWEEP_BATCH = 1000  # tasks one sweep sends at most; the next sweep continues
    MAILSITE_RELAY_QUEUE = env.str("MAILSITE_RELAY_QUEUE", "celery")
    MAILSITE_SEND_LATER_INTERVAL = _duration("MAILSITE_SEND_LATER_INTERVAL", "30s")
    MAILSITE_DKIM_SELECTOR = env.str("MAILSITE_DKIM_SELECTOR", "mailsite")
    # Connection reuse (Postfix's smtp_connection_reuse_count_limit and _time_limit) and per-destination limits.
    MAILSITE_RELAY_REUSE_MESSAGES = env.int("MAILSITE_RELAY_REUSE_MESSAGES", 100, minimum=1)
    MAILSITE_RELAY_REUSE_TIME = _duration("MAILSITE_RELAY_REUSE_TIME", "300s")
    MAILSITE_RELAY_CONCURRENCY = env.int("MAILSITE_RELAY_CONCURRENCY", 20, minimum=1)
    MAILSITE_RELAY_DESTINATION_CONCURRENCY = _per_domain("MAILSITE_RELAY_DESTINATION_CONCURRENCY")
    MAILSITE_RELAY_MTA_STS = env.bool("MAILSITE_RELAY_MTA_STS", True)
    MAILSITE_RELAY_CA_FILE = env.optional_path("MAILSITE_RELAY_CA_FILE", base=BASE_DIR)
    MAILSITE_RELAY_HTTPS_PORT = env.port("MAILSITE_RELAY_HTTPS_PORT", 443)
    try:
        MAILSITE_RELAY_ROUTES = parse_routes(env.str("MAILSITE_RELAY_ROUTES", ""))
    except ValueError as exc:
        raise SettingError(f"MAILSITE_RELAY_ROUTES: {exc}") from None
    MAILSITE_RELAY_DEAD_AFTER = env.int("MAILSITE_RELAY_DEAD_AFTER", 2, minimum=1)
    MAILSITE_RELAY_DEAD_TIME = _duration("MAILSITE_RELAY_DEAD_TIME", "5m")
    # --- mailauth (inbound trust at the MX) ---
    MAILSITE_AUTH_VERIFY = env.bool("MAILSITE_AUTH_VERIFY", True)
    try:
        MAILSITE_TRUSTED_NETWORKS = [
            ipaddress.ip_network(item, strict=False) for item in env.list("MAILSITE_TRUSTED_NETWORKS", [])
        ]
    except ValueError as exc:
        raise SettingError(f"MAILSITE_TRUSTED_NETWORKS: {exc}") from None
    MAILSITE_ETRN_NETWORKS = hardening.parse_networks("MAILSITE_ETRN_NETWORKS", env.list("MAILSITE_ETRN_NETWORKS", []))
    MAILSITE_AUTH_TIMEOUT = env.float("MAILSITE_AUTH_TIMEOUT", 20.0, minimum=0.1)
    MAILSITE_AUTH_THREADS = env.int("MAILSITE_AUTH_THREADS", 8, minimum=1, maximum=256)
    MAILSITE_DKIM_MAX_SIGNATURES = env.int("MAILSITE_DKIM_MAX_SIGNATURES", 10, minimum=1, maximum=100)
    MAILSITE_REJECT_SPF_FAIL = env.bool("MAILSITE_REJECT_SPF_FAIL", False)
    MAILSITE_REJECT_DKIM_FAIL = env.bool("MAILSITE_REJECT_DKIM_FAIL", False)
    MAILSITE_DNSBL_ZONES = env.list("MAILSITE_DNSBL_ZONES", [])
    MAILSITE_AUTH_CACHE_SECONDS = env.float("MAILSITE_AUTH_CACHE_SECONDS", 10.0)
    MAILSITE_RSPAMD_URL = env.str("MAILSITE_RSPAMD_URL", "")
    MAILSITE_RSPAMD_CONTROLLER_URL = env.str("MAILSITE_RSPAMD_CONTROLLER_URL", "")
    for _name in ("MAILSITE_RSPAMD_URL", "MAILSITE_RSPAMD_CONTROLLER_URL"):
        if globals()[_name] and not globals()[_name].startswith("http://"):
            raise SettingError(f"{_name} must be an http:// URL, got {globals()[_name]!r}")
    MAILSITE_RSPAMD_TIMEOUT = env.float("MAILSITE_RSPAMD_TIMEOUT", 10.0, minimum=0.1)
    MAILSITE_SPAM_JUNK_SCORE = env.float("MAILSITE_SPAM_JUNK_SCORE", 6.0, minimum=-1000.0)
    MAILSITE_SPAM_REJECT_SCORE = env.float("MAILSITE_SPAM_REJECT_SCORE", 15.0, minimum=-1000.0)
    # --- end mailauth ---
    ALLOWED_HOSTS = env.list("MAILSITE_ALLOWED_HOSTS", [MAILSITE_HOSTNAME, "localhost", "127.0.0.1", "[::1]"])
    _database_url = env.str("DATABASE_URL", f"sqlite:///{DATA_DIR / 'mailsite.sqlite3'}")
    try:
        # Web requests connect per request: under ASGI each request runs in its own thread, so Django's
        # persistent connections would be left behind by every request. Listeners reuse connections in their
        # own database threads instead (mailboxes.asyncdb, MAILSITE_DB_CONN_MAX_AGE).
        _database = dj_database_url.parse(_database_url, conn_max_age=0)
    except Exception as exc:  # dj-database-url raises several types for unknown schemes and bad ports
        raise SettingError(f"DATABASE_URL is not a usable database URL: {exc}") from None
    MAILSITE_BROKER_URL = env.str("MAILSITE_BROKER_URL", "filesystem://")
    if "://" not in MAILSITE_BROKER_URL:
        raise SettingError(
            f"MAILSITE_BROKER_URL must be a URL such as redis://127.0.0.1:6379/0, got {MAILSITE_BROKER_URL!r}"
        )
    _secret_key = env.str("MAILSITE_SECRET_KEY", "")
except SettingError as exc:
    # One clear line instead of a traceback: the message names the variable.
    sys.stderr.write(f"mailsite: configuration error: {exc}\n")
    raise SystemExit(2) from None

DATA_DIR.mkdir(parents=True, exist_ok=True)


def _secret_key_from_data_dir() -> str:
    path = DATA_DIR / "secret_key"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(50))
        path.chmod(0o600)
    return path.read_text().strip()


SECRET_KEY = _secret_key or _secret_key_from_data_dir()

# --- Database -----------------------------------------------------------------------------------------------
if _database["ENGINE"] == "django.db.backends.sqlite3":
    Path(_database["NAME"]).parent.mkdir(parents=True, exist_ok=True)
    _database["OPTIONS"] = {
        # WAL lets readers run beside the single writer; FULL sync keeps a 250 reply honest on power loss.
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;",
        # Take the write lock at BEGIN so two writers queue on the busy timeout instead of deadlocking.
        "transaction_mode": "IMMEDIATE",
        "timeout": 30,
    }
elif _database["ENGINE"] == "django.db.backends.postgresql":
    # Parameters bound on the server, and a statement a connection has run 5 times is prepared: PostgreSQL then
    # skips parsing and planning the lookups and writes that every RCPT, delivery and FETCH repeats (a recipient
    # lookup went from 0.28 to 0.06 ms of server CPU), and bytea values travel as binary, not as hex literals.
    # Behind PgBouncer this needs its prepared-statement support (max_prepared_statements, PgBouncer 1.21+).
    _database.setdefault("OPTIONS", {}).update(server_side_binding=True, prepare_threshold=5)
DATABASES = {"default": _database}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
# The index message_attachments carries attachment names as a non-key column (INCLUDE) for PostgreSQL's
# index-only scans; SQLite keeps the index without that column, which is all this check says.
SILENCED_SYSTEM_CHECKS = ["models.W040"]

# --- Django ---------------------------------------------------------------------------------------------------
INSTALLED_APPS = [
    # The admin modules are loaded by the URLs (mailsite/urls.py), so the mail listeners never load them.
    "django.contrib.admin.apps.SimpleAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "mailboxes",
    "webmail",
    "relay",
    "credentials",
    "sieve",
    "mailauth",
    "transfer",
]
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "webmail.middleware.ContentSecurityPolicyMiddleware",
]
ROOT_URLCONF = "mailsite.urls"
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
            ]
        },
    }
]
WSGI_APPLICATION = "mailsite.wsgi.application"
ASGI_APPLICATION = "mailsite.asgi.application"
AUTH_USER_MODEL = "mailboxes.Account"
PASSWORD_HASHERS = ["django.contrib.auth.hashers.Argon2PasswordHasher"]
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "static/"
STATIC_ROOT = DATA_DIR / "static"
STATIC_ROOT.mkdir(exist_ok=True)  # collectstatic fills it for production; WhiteNoise expects it to exist
WHITENOISE_USE_FINDERS = True  # serve app static files without a collectstatic step
LOGIN_URL = "/admin/login/"
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "SAMEORIGIN"

# --- Production hardening: a real secret key, HTTPS only (mailsite/hardening.py) --------------------------------
# Both hold whenever the database is not the embedded SQLite of `make run`.
_embedded_database = _database["ENGINE"] == "django.db.backends.sqlite3"
try:
    MAILSITE_INSECURE_HTTP = env.bool("MAILSITE_INSECURE_HTTP", False)
    MAILSITE_TRUSTED_PROXIES = hardening.parse_networks(
        "MAILSITE_TRUSTED_PROXIES", env.list("MAILSITE_TRUSTED_PROXIES", [])
    )
    if not DEBUG and not _embedded_database:
        hardening.check_secret_key(_secret_key)
except SettingError as exc:
    sys.stderr.write(f"mailsite: configuration error: {exc}\n")
    raise SystemExit(2) from None
MIDDLEWARE.insert(0, "mailsite.hardening.TrustedProxyMiddleware")
if MAILSITE_TRUSTED_PROXIES:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
MAILSITE_HTTPS_ONLY = not (_embedded_database or MAILSITE_INSECURE_HTTP)
if MAILSITE_HTTPS_ONLY:
    SECURE_SSL_REDIRECT = True
    SECURE_REDIRECT_EXEMPT = hardening.REDIRECT_EXEMPT
    SECURE_HSTS_SECONDS = hardening.HSTS_SECONDS
    # "__Host-" cookies are refused by browsers unless Secure, without Domain and for path "/": host-only.
    SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = True
    SESSION_COOKIE_NAME = "__Host-mailsite-session"
    CSRF_COOKIE_NAME = "__Host-mailsite-csrf"
    CSRF_TRUSTED_ORIGINS = [f"https://{MAILSITE_HOSTNAME}"]

# --- Celery ---------------------------------------------------------------------------------------------------
CELERY_BROKER_URL = MAILSITE_BROKER_URL
if MAILSITE_BROKER_URL.startswith("filesystem://"):
    # The embedded broker: a spool directory, so `make run` needs no broker server.
    _spool = DATA_DIR / "broker"
    (_spool / "queue").mkdir(parents=True, exist_ok=True)
    (_spool / "processed").mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_spool / "queue"),
        "data_folder_out": str(_spool / "queue"),
        "processed_folder": str(_spool / "processed"),
        "control_folder": str(_spool / "control"),
        "store_processed": False,
    }
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True  # a worker killed mid-task leaves the task for another worker
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BEAT_SCHEDULE: dict[str, dict] = {
    # The queue rows are the truth; this re-sends what is due but lost its task (broker flushed, worker killed).
    "relay-sweep": {
        "task": "relay.sweep",
        "schedule": float(MAILSITE_RELAY_SWEEP_INTERVAL),
        "options": {"queue": MAILSITE_RELAY_QUEUE},
    },
    # Webmail "send later": the rows are the queue; this sends what is due even if its wake-up task was lost.
    "send-later": {
        "task": "webmail.send_due",
        "schedule": float(MAILSITE_SEND_LATER_INTERVAL),
        "options": {"queue": MAILSITE_RELAY_QUEUE},
    },
    # The recycle bin keeps removed mail MAILSITE_RETENTION_DAYS; this drops what is older, a batch at a time.
    "recycle-bin-purge": {
        "task": "mailboxes.purge_recycled",
        "schedule": 3600.0,
        "options": {"queue": MAILSITE_RELAY_QUEUE},
    },
    # IMAP's expunge log keeps expunges MAILSITE_IMAP_EXPUNGE_KEEP; this forgets older ones, a batch at a time.
    "expunge-log-prune": {
        "task": "mailboxes.prune_expunge_log",
        "schedule": 3600.0,
        "options": {"queue": MAILSITE_RELAY_QUEUE},
    },
    # The webmail's search documents and IMAP SEARCH TEXT/BODY's trigram index (PostgreSQL): newer mail is read
    # without them until this indexes it.
    "text-index": {
        "task": "mailboxes.index_text",
        "schedule": 10.0,
        "options": {"queue": MAILSITE_RELAY_QUEUE},
    },
}
CELERY_BEAT_SCHEDULE_FILENAME = str(DATA_DIR / "celerybeat-schedule")

# --- Certificates: HTTPS listener, reloads, ACME (mailsite/tls.py, mailsite/web.py, mailsite/acme.py) ----------
try:
    _https_port = env.str("MAILSITE_HTTPS_PORT", "")
    MAILSITE_HTTPS_PORT = env.port("MAILSITE_HTTPS_PORT", 443) if _https_port else None
    MAILSITE_TLS_RELOAD_INTERVAL = env.float("MAILSITE_TLS_RELOAD_INTERVAL", 60.0, minimum=0.1)
    MAILSITE_ACME = env.bool("MAILSITE_ACME", False)
    MAILSITE_ACME_DIRECTORY = env.str("MAILSITE_ACME_DIRECTORY", "https://acme-v02.api.letsencrypt.org/directory")
    MAILSITE_ACME_EMAIL = env.str("MAILSITE_ACME_EMAIL", "")
    MAILSITE_ACME_NAMES = [name.lower() for name in env.list("MAILSITE_ACME_NAMES", [])]
    MAILSITE_ACME_RENEW_DAYS = env.int("MAILSITE_ACME_RENEW_DAYS", 30, minimum=1)
    MAILSITE_ACME_CA_BUNDLE = env.optional_path("MAILSITE_ACME_CA_BUNDLE", base=BASE_DIR)
    # The MTA-STS policy served at mta-sts.<domain> (autoconfig/; RFC 8461 3.2: max_age at most a year).
    MAILSITE_MTA_STS_MODE = env.str("MAILSITE_MTA_STS_MODE", "testing").lower()
    if MAILSITE_MTA_STS_MODE not in ("enforce", "testing", "none"):
        raise SettingError("MAILSITE_MTA_STS_MODE must be enforce, testing or none")
    MAILSITE_MTA_STS_MAX_AGE = env.int("MAILSITE_MTA_STS_MAX_AGE", 604800, minimum=0, maximum=31557600)
    if MAILSITE_ACME and MAILSITE_TLS_CERT:
        raise SettingError("MAILSITE_ACME obtains the certificate itself; unset MAILSITE_TLS_CERT and MAILSITE_TLS_KEY")
except SettingError as exc:
    sys.stderr.write(f"mailsite: configuration error: {exc}\n")
    raise SystemExit(2) from None
if MAILSITE_ACME:
    # The CA fetches challenges by every name the certificate is for.
    ALLOWED_HOSTS += [name for name in MAILSITE_ACME_NAMES if name not in ALLOWED_HOSTS]
    CELERY_BEAT_SCHEDULE["acme-renew"] = {"task": "mailsite.acme.renew", "schedule": 3600.0}
if MAILSITE_HTTPS_ONLY and MAILSITE_HTTPS_PORT not in (None, 443):
    SECURE_SSL_HOST = f"{MAILSITE_HOSTNAME}:{MAILSITE_HTTPS_PORT}"  # where plain HTTP redirects to

# --- Logging --------------------------------------------------------------------------------------------------
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"line": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "line"}},
    "root": {"handlers": ["stderr"], "level": "INFO"},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        "mail.log": {"level": "WARNING"},  # aiosmtpd logs every SMTP command line there at INFO
    },
}

# --- Operations: logs, metrics, readiness, PROXY protocol (ops/) -----------------------------------------------
try:
    MAILSITE_LOG_FORMAT = env.str("MAILSITE_LOG_FORMAT", "text").lower()
    if MAILSITE_LOG_FORMAT not in ("text", "json"):
        raise SettingError(f"MAILSITE_LOG_FORMAT must be text or json, got {MAILSITE_LOG_FORMAT!r}")
    MAILSITE_METRICS_TOKEN = env.str("MAILSITE_METRICS_TOKEN", "")
    MAILSITE_METRICS_DIR = env.path("MAILSITE_METRICS_DIR", DATA_DIR / "metrics", base=BASE_DIR)
    MAILSITE_PROXY_PROTOCOL_FROM = hardening.parse_networks(
        "MAILSITE_PROXY_PROTOCOL_FROM", env.list("MAILSITE_PROXY_PROTOCOL_FROM", [])
    )
    try:
        MAILSITE_READY_LISTENERS = ops_targets.parse(env.list("MAILSITE_READY_LISTENERS", []))
    except ValueError as exc:
        raise SettingError(f"MAILSITE_READY_LISTENERS: {exc}") from None
    # Limits every host shares in Redis when the broker is Redis (ops/limits.py).
    MAILSITE_CONNECTION_LEASE = _duration("MAILSITE_CONNECTION_LEASE", "60s")
    MAILSITE_LIMITS_PREFIX = env.str("MAILSITE_LIMITS_PREFIX", "mailsite:limits:")
    MAILSITE_SUBMISSION_RATE = _rate("MAILSITE_SUBMISSION_RATE")
except SettingError as exc:
    sys.stderr.write(f"mailsite: configuration error: {exc}\n")
    raise SystemExit(2) from None
if MAILSITE_LOG_FORMAT == "json":
    LOGGING["formatters"]["line"] = {"()": "ops.logs.JsonFormatter"}  # type: ignore[index]
    CELERY_WORKER_HIJACK_ROOT_LOGGER = False  # the worker's lines go through the same JSON formatter
if MAILSITE_HTTPS_ONLY:
    # Probes of the orchestrator speak plain HTTP on the container's own address.
    SECURE_REDIRECT_EXEMPT = [*SECURE_REDIRECT_EXEMPT, r"^(healthz|readyz)$"]
# --- end operations ---
