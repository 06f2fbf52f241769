"""The one settings class: environment variables prefixed `INTERVENE_`, and a `.env` file."""

from datetime import timedelta
from functools import lru_cache
from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_DATA_DIR = Path(".intervene")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="INTERVENE_", env_file=".env", extra="ignore")

    database_url: str = Field(
        default=f"sqlite:///{DEFAULT_DATA_DIR}/intervene.db",
        description="App database: a SQLite file (default) or postgresql+psycopg://user@host/db.",
    )
    database_pool_size: int = Field(
        default=10, ge=1, description="Connections kept per API process."
    )
    database_max_overflow: int = Field(
        default=20, ge=0, description="Extra connections under load."
    )
    auto_migrate: bool = Field(default=True, description="Apply migrations when the API starts.")
    incident_cap_per_key: int = Field(
        default=3, ge=1, description="New incidents allowed per (kind, key) within the cap window."
    )
    incident_cap_window_seconds: int = Field(
        default=3600, ge=1, description="Window of the per-key incident cap, in seconds."
    )

    @property
    def incident_cap_window(self) -> timedelta:
        return timedelta(seconds=self.incident_cap_window_seconds)

    @field_validator("database_url")
    @classmethod
    def _known_dialect(cls, value: str) -> str:
        if not value.startswith(("sqlite", "postgresql")):
            raise ValueError(
                "INTERVENE_DATABASE_URL must be a sqlite:// or postgresql+psycopg:// URL"
            )
        return value


@lru_cache
def get_settings() -> Settings:
    return Settings()
