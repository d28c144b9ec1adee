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

    def __init__(self, binary: Path, config: str) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="mq-py-test-"))
        (self.dir / "mqd.toml").write_text(config)
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

    def log_text(self) -> str:
        return (self.dir / "mqd.log").read_text(errors="replace")

    def stop(self) -> None:
        self.process.kill()
        self.process.wait()
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture(scope="session")
def mqd() -> Iterator[Mqd]:
    binary = next((p for p in _mqd_candidates() if p.is_file()), None)
    if binary is None:
        pytest.fail(
            "mqd not found: set MQD, or build it with `cargo build -p mq-cli --bin mqd`; "
            "looked in " + ", ".join(map(str, _mqd_candidates()))
        )
    server = Mqd(binary, CONFIG)
    yield server
    server.stop()
