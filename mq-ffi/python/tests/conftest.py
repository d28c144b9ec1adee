"""A real mqd for the tests: the binary named by MQD, else the one cargo built
in $CARGO_TARGET_DIR or the checkout's target dir (`cargo build -p mq-cli
--bin mqd`). `cargo xtask ci` sets MQD and MQ_LIB."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Iterator, List

import pytest

TOKEN = "py-secret"
NARROW_TOKEN = "py-narrow"

CONFIG = f"""
[store]
kind = "memory"

[[tokens]]
token = "{TOKEN}"
publish = [">"]
subscribe = [">", "$dlq.>"]

[[tokens]]
token = "{NARROW_TOKEN}"
publish = ["open.>"]
subscribe = ["open.>"]
"""


def _mqd_candidates() -> List[Path]:
    if os.environ.get("MQD"):
        return [Path(os.environ["MQD"])]
    name = "mqd.exe" if os.name == "nt" else "mqd"
    dirs = []
    if os.environ.get("CARGO_TARGET_DIR"):
        dirs.append(Path(os.environ["CARGO_TARGET_DIR"]))
    here = Path(__file__).resolve()
    dirs += [d / "target" for d in here.parents]
    return [d / p / name for d in dirs for p in ("debug", "release")]


class Mqd:
    """mqd on ports it binds itself (port 0), learnt from its --ready-file:
    no free port is picked and raced for (the Rust tests' mq-testkit does
    the same)."""

    def __init__(self, binary: Path, config: str, extra: str = "") -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="mq-py-test-"))
        (self.dir / "mqd.toml").write_text(extra + config)
        ready = self.dir / "mqd.ready"
        self.log = open(self.dir / "mqd.log", "wb")
        self.process = subprocess.Popen(
            [
                str(binary),
                "--config", str(self.dir / "mqd.toml"),
                "--listen", "127.0.0.1:0",
                "--http", "127.0.0.1:0",
                "--data-dir", str(self.dir / "data"),
                "--ready-file", str(ready),
            ],
            stdout=subprocess.DEVNULL,
            stderr=self.log,
        )
        deadline = time.monotonic() + 20
        # mqd writes the file under another name and renames it: whole once it exists.
        while not ready.exists():
            if time.monotonic() > deadline or self.process.poll() is not None:
                self.stop()
                raise RuntimeError(f"mqd did not listen: {self.log_text()}")
            time.sleep(0.02)
        addresses = dict(line.split("=", 1) for line in ready.read_text().splitlines())
        self.address = addresses["listen"]
        self.tls_address = addresses.get("listen_tls")

    def log_text(self) -> str:
        return (self.dir / "mqd.log").read_text(errors="replace")

    def stop(self) -> None:
        self.process.kill()
        self.process.wait()
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


def _mqd_binary() -> Path:
    binary = next((p for p in _mqd_candidates() if p.is_file()), None)
    if binary is None:
        pytest.fail(
            "mqd not found: set MQD, or build it with `cargo build -p mq-cli --bin mqd`; "
            "looked in " + ", ".join(map(str, _mqd_candidates()))
        )
    return binary


@pytest.fixture(scope="session")
def mqd() -> Iterator[Mqd]:
    server = Mqd(_mqd_binary(), CONFIG)
    yield server
    server.stop()


TLS_IDENTITY = "py-device"


class Pki:
    """A CA made for the test (trustme), a server certificate for localhost,
    a client certificate whose CN is TLS_IDENTITY, and another CA."""

    def __init__(self, trustme, dir: Path) -> None:
        self.dir = dir
        ca = trustme.CA()
        self.ca = str(dir / "ca.pem")
        ca.cert_pem.write_to_path(self.ca)
        server = ca.issue_cert("localhost", "127.0.0.1")
        self.server_cert = str(dir / "server.pem")
        self.server_key = str(dir / "server.key")
        server.private_key_pem.write_to_path(self.server_key)
        for i, pem in enumerate(server.cert_chain_pems):
            pem.write_to_path(self.server_cert, append=i > 0)
        client = ca.issue_cert(TLS_IDENTITY + ".example", common_name=TLS_IDENTITY)
        self.client_cert = str(dir / "client.pem")
        self.client_key = str(dir / "client.key")
        client.private_key_pem.write_to_path(self.client_key)
        client.cert_chain_pems[0].write_to_path(self.client_cert)
        self.other_ca = str(dir / "other.pem")
        trustme.CA().cert_pem.write_to_path(self.other_ca)


@pytest.fixture(scope="session")
def mqd_tls() -> Iterator[tuple]:
    """An mqd with a TLS listener (client certificates optional) and the PKI
    it uses: (mqd, pki)."""
    try:
        import trustme
    except ImportError:
        pytest.fail("the TLS tests need trustme: pip install trustme")
    pki = Pki(trustme, Path(tempfile.mkdtemp(prefix="mq-py-tls-")))
    extra = f"""listen_tls = "127.0.0.1:0"
[tls]
cert = "{pki.server_cert}"
key = "{pki.server_key}"
client_ca = "{pki.ca}"
require_client_cert = false

[[identities]]
identity = "{TLS_IDENTITY}"
publish = ["dev.{{identity}}.>"]
subscribe = ["dev.{{identity}}.>"]
"""
    server = Mqd(_mqd_binary(), CONFIG, extra)
    yield server, pki
    server.stop()
    shutil.rmtree(pki.dir, ignore_errors=True)
