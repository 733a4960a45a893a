"""A private rspamd for the tests: Debian's daemon with its own config, ports, data dir and DNS on loopback.

Only rspamd's core and its Lua rules are loaded (no plugin sections), so nothing fetches remote maps or asks
remote fuzzy servers; its DNS goes to the test's loopback server. Bayes statistics live in the suite's Redis.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

import pytest

INSTALL = "apt-get install -y rspamd (or scripts/install-test-deps.sh)"

CONFIG = """
options {{
  pidfile = "{dir}/rspamd.pid";
  filters = "";
  dns {{ nameserver = ["{dns}"]; timeout = 1s; retransmits = 1; }}
  url_tld = "${{SHAREDIR}}/effective_tld_names.dat";
  cache_file = "{dir}/symbols.cache";
  dynamic_conf = "{dir}/rspamd_dynamic";
  history_file = "{dir}/rspamd.history";
  stats_file = "{dir}/stats.ucl";
  hs_cache_dir = "{dir}/";
  control_socket = "{dir}/rspamd.sock mode=0600";
  explicit_modules = [];
}}
logging {{ type = "file"; filename = "{dir}/rspamd.log"; level = "notice"; }}
worker "normal" {{ bind_socket = "127.0.0.1:{scan_port}"; count = 1; mime = true; }}
worker "controller" {{
  bind_socket = "127.0.0.1:{controller_port}"; count = 1; secure_ip = "127.0.0.1"; password = "unused";
  static_dir = "${{WWWDIR}}";
}}
classifier "bayes" {{
  tokenizer {{ name = "osb"; }}
  backend = "redis";
  servers = "{redis}";
  database = "{redis_db}";
  new_schema = true;
  min_tokens = 11;
  min_learns = 1;
  statfile {{ symbol = "BAYES_HAM"; spam = false; }}
  statfile {{ symbol = "BAYES_SPAM"; spam = true; }}
}}
actions {{ reject = 15; "add header" = 6; }}
lua = "${{RULESDIR}}/rspamd.lua";
"""


def _get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=2) as response:
        return response.read()


class Rspamd:
    def __init__(self, directory: Path, *, dns: str, redis_url: str, scan_port: int, controller_port: int) -> None:
        binary = shutil.which("rspamd")
        if binary is None:
            pytest.fail(f"rspamd is not installed: {INSTALL}")
        redis = urlsplit(redis_url)
        if redis.scheme != "redis":
            pytest.fail("the rspamd tests keep Bayes statistics in Redis: set MAILSITE_BROKER_URL=redis://...")
        self.redis_host, self.redis_port = redis.hostname or "127.0.0.1", redis.port or 6379
        self.redis_db = (redis.path or "/0").strip("/") or "0"
        self.forget_statistics()
        self.directory = directory
        self.url = f"http://127.0.0.1:{scan_port}"
        self.controller_url = f"http://127.0.0.1:{controller_port}"
        config = directory / "rspamd.conf"
        config.write_text(
            CONFIG.format(
                dir=directory,
                dns=dns,
                redis=f"{self.redis_host}:{self.redis_port}",
                redis_db=self.redis_db,
                scan_port=scan_port,
                controller_port=controller_port,
            )
        )
        # -i lets rspamd's workers run as root, which is who runs the suite in CI containers.
        user = ["-i", "-u", "root", "-g", "root"] if os.geteuid() == 0 else []
        self.process = subprocess.Popen(
            [binary, "-f", *user, "-c", str(config)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
            cwd=directory,
        )
        self._wait_ready()

    def _wait_ready(self) -> None:
        # rspamd compiles its TLD list and regular expressions at start: about ten seconds on a small machine.
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                log = (self.directory / "rspamd.log").read_text(errors="replace")[-2000:]
                pytest.fail(f"rspamd exited with {self.process.returncode}:\n{log}")
            try:
                if all(_get(url + "/ping").strip() == b"pong" for url in (self.url, self.controller_url)):
                    return
            except (OSError, urllib.error.URLError):
                pass
            time.sleep(0.3)
        self.stop()
        pytest.fail("rspamd did not answer /ping within 90 seconds")

    def stat(self) -> dict:
        return json.loads(_get(self.controller_url + "/stat"))

    def learned(self) -> int:
        return int(self.stat()["learned"])

    def forget_statistics(self) -> None:
        """Remove rspamd's Bayes and learn-cache keys from the suite's Redis database."""
        import redis

        client = redis.Redis(host=self.redis_host, port=self.redis_port, db=int(self.redis_db))
        for pattern in ("RS*", "BAYES_*", "learned_ids*", "rs_learn*"):
            keys = list(client.scan_iter(pattern))
            if keys:
                client.delete(*keys)
        client.close()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
