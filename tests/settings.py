"""Settings for the test suite: the product settings pointed at real PostgreSQL and Redis.

DATABASE_URL and MAILSITE_BROKER_URL are used when set. Otherwise PostgreSQL on 127.0.0.1:5432 and Redis on
127.0.0.1:6379 are used when they answer. Under CI=true a missing PostgreSQL or Redis stops the run; on a
developer machine without them the suite falls back to SQLite and the embedded broker, and says so.
"""

from __future__ import annotations

import os
import secrets
import socket
import sys
import tempfile


def _answers(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


_ci = os.environ.get("CI", "").lower() == "true"
_worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
_worker_number = int(_worker.removeprefix("gw") or 0)

# pytest-xdist's workers inherit the environment of the controller, where this file ran first: values it made
# up for one test process (its broker database, data dir and TLS pair) are made again by each worker, so
# parallel workers never share queues, metrics files or certificates. Values given by the user are kept.
_MADE_FOR, _MADE = "MAILSITE_TEST_SETTINGS_FOR", "MAILSITE_TEST_SETTINGS_MADE"
if os.environ.get(_MADE_FOR, _worker) != _worker:
    for _name in os.environ.pop(_MADE, "").split(","):
        os.environ.pop(_name, None)
_made: list[str] = [name for name in os.environ.get(_MADE, "").split(",") if name]


def _make(name: str, value: str) -> None:
    os.environ[name] = value
    _made.append(name)


if not os.environ.get("DATABASE_URL"):
    if _answers("127.0.0.1", 5432):
        os.environ["DATABASE_URL"] = "postgres://postgres@127.0.0.1:5432/mailsite"
    elif _ci:
        sys.exit("tests: CI=true but PostgreSQL does not answer on 127.0.0.1:5432 and DATABASE_URL is not set")
    else:
        sys.stderr.write("tests: PostgreSQL not found on 127.0.0.1:5432, running on SQLite\n")

if not os.environ.get("MAILSITE_BROKER_URL"):
    if _answers("127.0.0.1", 6379):
        # One Redis database per xdist worker so parallel workers never share queues.
        _make("MAILSITE_BROKER_URL", f"redis://127.0.0.1:6379/{1 + _worker_number % 15}")
    elif _ci:
        sys.exit("tests: CI=true but Redis does not answer on 127.0.0.1:6379 and MAILSITE_BROKER_URL is not set")
    else:
        sys.stderr.write("tests: Redis not found on 127.0.0.1:6379, using the embedded broker\n")

# Each test process keeps its shared limits (ops/limits.py) under keys of its own, so parallel workers sharing
# one Redis database, or an earlier run's accounts with the same ids, never count against each other.
if not os.environ.get("MAILSITE_LIMITS_PREFIX"):
    _make("MAILSITE_LIMITS_PREFIX", f"mailsite-test:{_worker}:{secrets.token_hex(4)}:")

# Each test process gets its own data dir (TLS pair, broker spool, SQLite file).
if not os.environ.get("MAILSITE_DATA_DIR"):
    _make("MAILSITE_DATA_DIR", tempfile.mkdtemp(prefix=f"mailsite-test-{_worker}-"))
# ops/metrics.py sets prometheus-client's directory in the environment of the first process importing it, which
# may be the controller: made here, under this process's data dir, so a worker never writes into another's.
if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    _make(
        "PROMETHEUS_MULTIPROC_DIR",
        os.path.join(
            os.environ.get("MAILSITE_METRICS_DIR", os.path.join(os.environ["MAILSITE_DATA_DIR"], "metrics")),
            socket.gethostname(),
        ),
    )
os.environ.setdefault("MAILSITE_HOSTNAME", "mx.mailsite.test")
os.environ.setdefault("MAILSITE_AUTH_FAILURE_DELAY", "0.05")
# The MX verifies senders over DNS; the tests that want it turn it on with a loopback DNS server
# (tests/mailauth_support.py), so no other test asks the machine's resolvers.
os.environ.setdefault("MAILSITE_AUTH_VERIFY", "false")
# The suite serves plain HTTP on loopback, and needs a key of its own since it runs on PostgreSQL.
os.environ.setdefault("MAILSITE_INSECURE_HTTP", "true")
os.environ.setdefault("MAILSITE_SECRET_KEY", secrets.token_urlsafe(50))


def _trustme_pair(data_dir: str) -> None:
    """A test CA and a server certificate for every name the listeners are reached by in tests."""
    import trustme

    ca = trustme.CA()
    cert = ca.issue_cert("localhost", "127.0.0.1", "::1", "mx.mailsite.test")
    ca.cert_pem.write_to_path(os.path.join(data_dir, "test-ca.pem"))
    cert.private_key_pem.write_to_path(os.path.join(data_dir, "test-key.pem"))
    cert.cert_chain_pems[0].write_to_path(os.path.join(data_dir, "test-cert.pem"))
    for extra in cert.cert_chain_pems[1:]:
        extra.write_to_path(os.path.join(data_dir, "test-cert.pem"), append=True)


if not os.environ.get("MAILSITE_TLS_CERT"):
    _trustme_pair(os.environ["MAILSITE_DATA_DIR"])
    _make("MAILSITE_TLS_CERT", os.path.join(os.environ["MAILSITE_DATA_DIR"], "test-cert.pem"))
    _make("MAILSITE_TLS_KEY", os.path.join(os.environ["MAILSITE_DATA_DIR"], "test-key.pem"))
os.environ[_MADE_FOR], os.environ[_MADE] = _worker, ",".join(dict.fromkeys(_made))
TEST_CA_FILE = os.path.join(os.environ["MAILSITE_DATA_DIR"], "test-ca.pem")

from mailsite.settings import *  # noqa: E402,F403 - the product settings are the base

# Argon2 stays the algorithm; the suite only lowers its cost so hundreds of test logins stay fast.
PASSWORD_HASHERS = ["tests.hashers.QuickArgon2PasswordHasher"]
