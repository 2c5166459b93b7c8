"""Settings from the environment (prefix ``CAPO_LAB_``)."""

from __future__ import annotations

import os
from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """``CAPO_LAB_HOME`` (default ``~/.capo-lab``), ``CAPO_LAB_DB_URL``,
    ``CAPO_LAB_QUEUE_URL``, ``CAPO_LAB_DATA_DIRS`` (folders joined by ``os.pathsep``),
    ``CAPO_LAB_HEARTBEAT_SECONDS`` and ``CAPO_LAB_STALE_AFTER_SECONDS`` (a running run whose
    heartbeat is older than this is marked ``interrupted``).

    ``CAPO_LAB_MODEL_DIRS`` and ``CAPO_LAB_ALLOWED_MODELS`` bound the models the UI opens
    (``capo_lab.model_names``).

    ``CAPO_LAB_MLQE_PE_URL``, ``CAPO_LAB_DIVEMT_URL`` and ``CAPO_LAB_DIVEMT_WARMUP_URL`` are the base
    URLs ``capo-lab data fetch`` downloads from; unset means the upstream repositories named in
    ``capo.data.sources``. Tests point them at a server on loopback.

    ``CAPO_LAB_COMET_CHECKPOINT``: the COMET checkpoint ``capo-lab evaluate --metrics …,comet`` reads
    when ``--comet-checkpoint`` is not given (``capo.comet_metric``)."""

    model_config = SettingsConfigDict(env_prefix="CAPO_LAB_", extra="ignore")

    home: Path = Path("~/.capo-lab")
    db_url: str | None = None
    queue_url: str | None = None
    data_dirs: str = ""
    auth: str | None = None
    heartbeat_seconds: float = 5.0
    stale_after_seconds: float = 30.0
    mlqe_pe_url: str | None = None
    divemt_url: str | None = None
    divemt_warmup_url: str | None = None
    model_dirs: str = ""
    allowed_models: str = ""
    comet_checkpoint: str | None = None

    @property
    def home_dir(self) -> Path:
        return self.home.expanduser().resolve()

    @property
    def database_url(self) -> str:
        return self.db_url or f"sqlite:///{self.home_dir / 'lab.db'}"

    @property
    def sources_dir(self) -> Path:
        """Where ``capo-lab data fetch`` keeps its downloads, one folder per source."""
        return self.home_dir / "sources"

    @property
    def model_folders(self) -> list[Path]:
        """``CAPO_LAB_MODEL_DIRS``: folders whose model folders the UI may open (joined by ``os.pathsep``)."""
        return [Path(p).expanduser().resolve() for p in self.model_dirs.split(os.pathsep) if p]

    @property
    def allowed_model_names(self) -> list[str]:
        """``CAPO_LAB_ALLOWED_MODELS``: comma-separated names (hub ids) the owner lets the UI load."""
        return [n.strip() for n in self.allowed_models.split(",") if n.strip()]

    @property
    def data_folders(self) -> list[Path]:
        return [Path(p).expanduser().resolve() for p in self.data_dirs.split(os.pathsep) if p]
