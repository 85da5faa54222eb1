"""A real Synapse homeserver (from PyPI) on 127.0.0.1 with SQLite, for tests and benchmarks:
generated config, rate limits raised, users registered through the shared-secret admin API."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import yaml

SERVER_NAME = "localhost"
SECRET = "bildungslotse-test-registration"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def available() -> bool:
    try:
        import synapse  # noqa: F401
    except ImportError:
        return False
    return True


@dataclass
class Synapse:
    directory: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def configure(self) -> Path:
        self.directory.mkdir(parents=True, exist_ok=True)
        config = self.directory / "homeserver.yaml"
        if not config.exists():
            subprocess.run([sys.executable, "-m", "synapse.app.homeserver", "--server-name", SERVER_NAME,
                            "--config-path", str(config), "--data-directory", str(self.directory),
                            "--generate-config", "--report-stats=no"], check=True, capture_output=True)
        data = yaml.safe_load(config.read_text())
        unlimited = {"per_second": 10000, "burst_count": 10000}
        data.update({
            "listeners": [{"port": self.port, "bind_addresses": ["127.0.0.1"], "type": "http", "tls": False,
                           "x_forwarded": False, "resources": [{"names": ["client"], "compress": False}]}],
            "database": {"name": "sqlite3", "args": {"database": str(self.directory / "homeserver.db")}},
            "registration_shared_secret": SECRET,
            "enable_registration": False,
            "federation_domain_whitelist": [],
            "trusted_key_servers": [],
            "suppress_key_server_warning": True,
            "report_stats": False,
            "enable_metrics": False,
            "presence": {"enabled": False},
            "rc_message": unlimited, "rc_registration": unlimited, "rc_joins": {"local": unlimited, "remote": unlimited},
            "rc_login": {"address": unlimited, "account": unlimited, "failed_attempts": unlimited},
            "rc_invites": {"per_room": unlimited, "per_user": unlimited, "per_issuer": unlimited},
            "rc_key_requests": unlimited, "rc_3pid_validation": unlimited,
            "rc_admin_redaction": unlimited, "rc_room_creation": unlimited,
        })
        log_config = self.directory / f"{SERVER_NAME}.log.config"
        data["log_config"] = str(log_config)
        log_config.write_text(yaml.safe_dump({
            "version": 1, "formatters": {"p": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
            "handlers": {"f": {"class": "logging.FileHandler", "filename": str(self.directory / "homeserver.log"),
                               "formatter": "p"}},
            "root": {"level": "WARNING", "handlers": ["f"]}, "disable_existing_loggers": False}))
        config.write_text(yaml.safe_dump(data))
        return config

    def start(self, timeout: float = 60.0) -> Synapse:
        config = self.configure()
        self.process = subprocess.Popen([sys.executable, "-m", "synapse.app.homeserver", "--config-path", str(config)],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                        env={**os.environ, "SYNAPSE_ASYNC_IO_REACTOR": "0"})
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"synapse exited with {self.process.returncode}; see {self.directory}/homeserver.log")
            try:
                with urllib.request.urlopen(f"{self.url}/_matrix/client/versions", timeout=1):
                    return self
            except OSError:
                time.sleep(0.1)
        raise TimeoutError("synapse did not start")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)

    def restart(self) -> None:
        self.stop()
        self.start()

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.directory, ignore_errors=True)

    # -- accounts ---------------------------------------------------------------------------
    def _post(self, path: str, body: dict, token: str | None = None) -> dict:
        request = urllib.request.Request(f"{self.url}{path}", data=json.dumps(body).encode(), method="POST",
                                         headers={"Content-Type": "application/json",
                                                  **({"Authorization": f"Bearer {token}"} if token else {})})
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read())

    def register(self, localpart: str, password: str = "password", admin: bool = False) -> dict:
        """Register `localpart` through the shared secret; returns user_id, access_token, device_id."""
        with urllib.request.urlopen(f"{self.url}/_synapse/admin/v1/register", timeout=10) as response:
            nonce = json.loads(response.read())["nonce"]
        body: dict = {"nonce": nonce, "username": localpart, "password": password, "admin": admin}
        # the admin API's MAC: HMAC-SHA1 over the parts joined by NUL
        mac = hmac.new(SECRET.encode(), "\x00".join((nonce, localpart, password, "admin" if admin else "notadmin")).encode(),
                       hashlib.sha1)
        body["mac"] = mac.hexdigest()
        try:
            return self._post("/_synapse/admin/v1/register", body)
        except urllib.error.HTTPError as exc:
            if exc.code == 400:  # already registered: log in instead
                return self.login(localpart, password)
            raise

    def login(self, localpart: str, password: str = "password", device_id: str | None = None) -> dict:
        body = {"type": "m.login.password", "identifier": {"type": "m.id.user", "user": localpart}, "password": password}
        if device_id:
            body["device_id"] = device_id
        return self._post("/_matrix/client/v3/login", body)
