"""A private Mosquitto running ``deploy/mosquitto/`` as shipped: TLS, password file, ACL, queues.

Only paths, the port and the log destination are substituted into a temporary copy of the
configuration (and ``user`` so a root test run can read its own temporary files); a throwaway CA,
server and client certificate are made with the ``openssl`` CLI. Credentials come from
:func:`emon.mqtt.passwd.set_credentials` — the code behind ``emon mqtt-credentials`` — so the
broker accepting them proves the hash format.
"""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import re
import shutil
import socket
import ssl
import subprocess
import tempfile
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from emon.demo import free_port
from emon.mqtt.passwd import new_password, set_credentials

DEPLOY = Path(__file__).resolve().parents[2] / "deploy" / "mosquitto"
MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
ACL_LINE = re.compile(r"^((?:topic|pattern)(?: (?:read|write|readwrite|deny))? )")


def prefixed_acl(text: str, prefix: str) -> str:
    """The ACL for ``EMON_MQTT_TOPIC_PREFIX=prefix``: every topic and pattern gets ``prefix/`` (the
    README's ``sed`` line does the same)."""
    if not prefix:
        return text
    return "\n".join(ACL_LINE.sub(rf"\g<1>{prefix}/", line) for line in text.splitlines()) + "\n"


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def make_certificates(d: Path) -> None:
    """ca.crt/ca.key, server.crt/.key for 127.0.0.1 and localhost, client.crt/.key — all EC P-256."""
    ec = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")
    _openssl(
        "req",
        "-x509",
        *ec,
        "-keyout",
        "ca.key",
        "-out",
        "ca.crt",
        "-days",
        "2",
        "-subj",
        "/CN=emon test CA",
        cwd=d,
    )
    (d / "server.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    (d / "client.ext").write_text("extendedKeyUsage=clientAuth\n")
    for name, cn in (("server", "localhost"), ("client", "emon")):
        _openssl("req", *ec, "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={cn}", cwd=d)
        _openssl(
            "x509",
            "-req",
            "-in",
            f"{name}.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            f"{name}.crt",
            "-days",
            "2",
            "-extfile",
            f"{name}.ext",
            cwd=d,
        )


@dataclass
class PrivateBroker:
    dir: Path
    port: int
    prefix: str
    passwords: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None

    @property
    def ca_file(self) -> str:
        return str(self.dir / "ca.crt")

    @property
    def client_cert(self) -> str:
        return str(self.dir / "client.crt")

    @property
    def client_key(self) -> str:
        return str(self.dir / "client.key")

    @property
    def passwd(self) -> Path:
        return self.dir / "passwd"

    def topic(self, suffix: str) -> str:
        return f"{self.prefix}/{suffix}" if self.prefix else suffix

    def tls(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=self.ca_file)

    def log(self) -> str:
        path = self.dir / "mosquitto.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def add_user(self, username: str) -> str:
        password = new_password()
        set_credentials(self.passwd, username, password)
        self.passwords[username] = password
        return password

    def config(self, **extra: str) -> str:
        """The shipped mosquitto.conf with this instance's paths and port."""
        text = (DEPLOY / "mosquitto.conf").read_text()
        text = text.replace("/etc/mosquitto/emon/tls/", f"{self.dir}/")
        text = text.replace("/etc/mosquitto/emon/", f"{self.dir}/")
        text = text.replace(
            "persistence_location /var/lib/mosquitto/", f"persistence_location {self.dir}/data/"
        )
        text = text.replace("listener 8883", f"listener {self.port} 127.0.0.1")
        text = text.replace("log_dest syslog", f"log_dest file {self.dir}/mosquitto.log")
        for key, value in extra.items():
            text = re.sub(rf"^{key} .*$", f"{key} {value}", text, flags=re.M)
        return text + f"user {getpass.getuser()}\n"

    def start(self, **extra: str) -> None:
        (self.dir / "data").mkdir(exist_ok=True)
        (self.dir / "mosquitto.conf").write_text(self.config(**extra))
        self.process = subprocess.Popen(
            [MOSQUITTO, "-c", str(self.dir / "mosquitto.conf")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )

    async def wait_listening(self, within_s: float = 10.0) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within_s
        while True:
            assert self.process is not None
            if self.process.poll() is not None:
                err = self.process.stderr.read().decode() if self.process.stderr else ""
                raise RuntimeError(f"mosquitto exited ({self.process.returncode}): {err}\n{self.log()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                if loop.time() > deadline:
                    raise
                await asyncio.sleep(0.05)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        if self.process is not None and self.process.stderr is not None:
            self.process.stderr.close()


@contextlib.asynccontextmanager
async def private_broker(prefix: str, users: Iterable[str], **extra: str) -> AsyncIterator[PrivateBroker]:
    """Mosquitto with the deploy configuration on a free port; ``users`` get fresh passwords."""
    with tempfile.TemporaryDirectory(prefix="emon-mosq-") as tmp:
        broker = await asyncio.to_thread(_prepare, Path(tmp), prefix, list(users), extra)
        try:
            await broker.wait_listening()
            yield broker
        finally:
            broker.stop()


def _prepare(d: Path, prefix: str, users: list[str], extra: dict[str, str]) -> PrivateBroker:
    d.chmod(0o755)
    make_certificates(d)
    broker = PrivateBroker(d, free_port(), prefix)
    (d / "acl").write_text(prefixed_acl((DEPLOY / "acl").read_text(), prefix))
    for user in users:
        broker.add_user(user)
    broker.start(**extra)
    return broker
