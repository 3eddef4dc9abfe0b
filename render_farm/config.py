"""Settings read once at the entry point from the environment (and an optional .env file).

Nothing reads the environment at import time; build `Settings.from_env()` in the CLI and pass it
down. `describe()` masks secrets so settings can be logged.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Mapping

import platformdirs

from storage.errors import InvalidInput

APP_NAME = "foley-render-farm"


def default_data_dir() -> Path:
    """Per-user data directory (the embedded database and blob store live here by default)."""
    return Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))


def read_env_file(path: Path) -> dict[str, str]:
    """Parse a .env-style file: KEY=VALUE lines, # comments, optional quotes, optional `export`."""
    values: dict[str, str] = {}
    for lineno, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("export "):
            line = line[len("export "):].lstrip()
        key, sep, value = line.partition("=")
        key = key.strip()
        if not sep or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key):
            raise InvalidInput(f"{path}:{lineno}: expected KEY=VALUE")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[key] = value
    return values


def mask_url(url: str | None) -> str | None:
    """Hide the password in a URL (`scheme://user:***@host/...`)."""
    if url is None:
        return None
    return re.sub(r"(://[^:/@]+):[^@]*@", r"\1:***@", url)


@dataclass(frozen=True)
class Settings:
    """Where the farm keeps its state. Defaults give the embedded, single-machine setup."""

    data_dir: Path = field(default_factory=default_data_dir)
    database_url: str = ""  # empty → SQLite under data_dir
    broker_url: str | None = None  # None → steps run in-process
    store_url: str = ""  # empty → file:// under data_dir; or s3://bucket/prefix
    s3_endpoint_url: str | None = None  # for S3-compatible servers (MinIO, moto, ...)

    def __post_init__(self) -> None:
        if not self.database_url:
            object.__setattr__(self, "database_url", f"sqlite:///{self.data_dir / 'foley.db'}")
        if not self.store_url:
            object.__setattr__(self, "store_url", (self.data_dir / "store").as_uri())

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, env_file: Path | None = None) -> "Settings":
        """Build settings from FOLEY_* variables; a .env file fills what the environment lacks."""
        env = dict(os.environ if environ is None else environ)
        file = env_file if env_file is not None else (Path(env["FOLEY_ENV_FILE"]) if env.get("FOLEY_ENV_FILE") else None)
        if file is None and Path(".env").is_file():
            file = Path(".env")
        if file is not None:
            if not file.is_file():
                raise InvalidInput(f"{file}: env file not found")
            for key, value in read_env_file(file).items():
                env.setdefault(key, value)
        data_dir = Path(env["FOLEY_DATA_DIR"]).expanduser() if env.get("FOLEY_DATA_DIR") else default_data_dir()
        settings = cls(
            data_dir=data_dir,
            database_url=env.get("FOLEY_DATABASE_URL", ""),
            broker_url=env.get("FOLEY_BROKER_URL") or None,
            store_url=env.get("FOLEY_STORE", ""),
            s3_endpoint_url=env.get("FOLEY_S3_ENDPOINT_URL") or None,
        )
        # Credentials for S3 come from the standard AWS variables; boto3 reads those itself.
        for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_DEFAULT_REGION"):
            if key in env and key not in os.environ:
                os.environ[key] = env[key]
        return settings

    def with_overrides(self, **changes: object) -> "Settings":
        return replace(self, **{k: v for k, v in changes.items() if v is not None})

    def describe(self) -> dict[str, str | None]:
        """Settings for logs and `foley config`, with secrets masked."""
        return {
            "data_dir": str(self.data_dir),
            "database_url": mask_url(self.database_url),
            "broker_url": mask_url(self.broker_url),
            "store_url": self.store_url,
            "s3_endpoint_url": self.s3_endpoint_url,
        }


ENGINES = ("auto", "eager", "deepspeed", "compile")
DTYPES = ("auto", "bf16", "fp16", "fp32")


@dataclass(frozen=True)
class InferenceConfig:
    """Where and how this process runs the render network: a worker setting, not a render parameter.

    device: the torch device ("cpu", "cuda", "cuda:0"; inside a `--gpus` child its one GPU is
    cuda:0). label: what window rows record as the device (the physical GPU, e.g. "cuda:3").
    engine / dtype apply on CUDA ("auto": DeepSpeed with CUDA graphs, bf16); the CPU path always
    runs plain torch in fp32, so a CPU worker renders the bytes `foley render` renders.
    """

    device: str = "cpu"
    engine: str = "auto"
    dtype: str = "auto"
    label: str = ""
    cuda_graphs: bool = True

    def __post_init__(self) -> None:
        if self.engine not in ENGINES:
            raise InvalidInput(f"engine {self.engine!r} is not one of {', '.join(ENGINES)}")
        if self.dtype not in DTYPES:
            raise InvalidInput(f"dtype {self.dtype!r} is not one of {', '.join(DTYPES)}")
        if not re.fullmatch(r"cpu|cuda(:\d+)?", self.device):
            raise InvalidInput(f"device {self.device!r} is not cpu, cuda or cuda:N")

    @property
    def on_cuda(self) -> bool:
        return self.device.startswith("cuda")

    def describe(self) -> str:
        """For window rows and logs: "cpu", or e.g. "cuda:3 deepspeed bf16"."""
        where = self.label or self.device
        return where if not self.on_cuda else f"{where} {self.engine} {self.dtype}"


CPU_INFERENCE = InferenceConfig()
