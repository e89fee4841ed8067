"""Settings read from the environment (pydantic-settings)."""

from functools import lru_cache
from pathlib import Path

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from app.identity.settings import OidcProvider


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=None, extra="ignore")

    database_url: str | None = Field(
        default=None, validation_alias=AliasChoices("DATABASE_URL", "ESMS_DATABASE_URL")
    )
    data_dir: Path = Field(
        default=Path(".esms-data"), validation_alias=AliasChoices("ESMS_DATA_DIR")
    )
    # Batch limits of the extracts endpoint (SPEC §10): above either, 413.
    max_batch_rows: int = Field(default=10_000, validation_alias="ESMS_MAX_BATCH_ROWS")
    max_body_bytes: int = Field(default=20 * 1024 * 1024, validation_alias="ESMS_MAX_BODY_BYTES")
    # FINESS files uploaded to POST /api/v1/referential/imports: a national FINESS+ flow is
    # hundreds of MB, and takes longer than a batch to arrive.
    max_import_bytes: int = Field(default=2 * 1024**3, validation_alias="ESMS_MAX_IMPORT_BYTES")
    import_body_timeout_seconds: float = Field(
        default=900, validation_alias="ESMS_IMPORT_BODY_TIMEOUT_SECONDS"
    )
    rate_limit_per_minute: int = Field(default=1200, validation_alias="ESMS_RATE_LIMIT_PER_MINUTE")
    body_timeout_seconds: float = Field(default=30, validation_alias="ESMS_BODY_TIMEOUT_SECONDS")
    db_pool_size: int = Field(default=10, validation_alias="ESMS_DB_POOL_SIZE")
    # Seconds between background refreshes of the dashboards' rollups (0: none; readers then
    # refresh the summaries and aggregate the stale months on the fly).
    rollup_refresh_seconds: float = Field(
        default=10, validation_alias="ESMS_ROLLUP_REFRESH_SECONDS"
    )
    log_level: str = Field(default="info", validation_alias="ESMS_LOG_LEVEL")
    # OpenID Connect providers people and scripts sign in with (JSON list, see
    # app/identity/settings.py), and whom a person without access should ask.
    oidc_providers: list[OidcProvider] = Field(
        default_factory=list, validation_alias="ESMS_OIDC_PROVIDERS"
    )
    access_contact: str = Field(
        default="l'équipe nationale ESMS Numérique (CNSA / DNS)",
        validation_alias="ESMS_ACCESS_CONTACT",
    )
    # Hours a web console session lasts after sign-in.
    console_session_hours: float = Field(
        default=8, gt=0, validation_alias="ESMS_CONSOLE_SESSION_HOURS"
    )
    # The service's public address: the base of its FHIR canonical URLs (Measure, CodeSystem)
    # and of the OpenID Connect sign-in's redirect URIs (unset: each request's address there).
    public_url: str = Field(default="http://localhost:8000", validation_alias="ESMS_PUBLIC_URL")


@lru_cache
def get_settings() -> Settings:
    return Settings()
