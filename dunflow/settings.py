"""Settings from `DUNFLOW_*` environment variables (and an optional `.env` file)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="DUNFLOW_", env_file=".env", extra="ignore")

    data_dir: Path = Path(".dunflow")
    database_url: str = ""  # empty: SQLite file in data_dir

    temporal_address: str = "127.0.0.1:7233"
    temporal_namespace: str = "default"
    task_queue: str = "dunflow"
    temporal_ui_port: int = 8233

    api_host: str = "127.0.0.1"
    api_port: int = 8000
    public_url: str = ""  # empty: http://{api_host}:{api_port}

    # One flow day lasts this many seconds; unset means real days.
    day_seconds: float | None = Field(default=None, gt=0)

    flows_dir: Path = PROJECT_ROOT / "flows"
    templates_dir: Path = PROJECT_ROOT / "templates"

    creditor_name: str = "Voorbeeld B.V."
    creditor_iban: str = "NL91ABNA0417164300"
    creditor_email: str = "debiteuren@example.nl"
    creditor_phone: str = "+31201234567"
    # Optional payment page of the creditor, e.g. "https://pay.example.nl/{invoice_number}";
    # empty: messages link to dunflow's debtor portal.
    pay_url_template: str = ""
    portal_secret: str = ""  # signs portal links; empty: one is made and kept in data_dir
    portal_link_days: int = Field(default=60, ge=1, le=366)
    # Collection costs: VAT is added only when the creditor cannot reclaim it; a percentage agreed
    # by contract with business debtors (per mille, e.g. 150 for 15%) replaces the statutory scale.
    creditor_reclaims_vat: bool = True
    business_costs_per_mille: int | None = Field(default=None, ge=0, le=1000)

    sendgrid_api_key: str = ""
    sendgrid_api_host: str = "https://api.sendgrid.com"
    sendgrid_from: str = ""  # empty: creditor_email
    sendgrid_webhook_public_key: str = ""  # the Event Webhook's verification key (base64 DER)
    twilio_account_sid: str = ""
    twilio_auth_token: str = ""
    twilio_from: str = ""
    twilio_api_base: str = "https://api.twilio.com"
    mollie_api_key: str = ""  # set (test_... or live_...): the portal's payments go through Mollie
    mollie_api_base: str = "https://api.mollie.com"
    # Sends per second per worker process (0: no limit); the whole system sends workers x this.
    sendgrid_rate_per_second: float = Field(default=10, ge=0)
    twilio_rate_per_second: float = Field(default=1, ge=0)
    # A Twilio request not answered within this many seconds fails and is retried with backoff.
    twilio_timeout_seconds: float = Field(default=20, gt=0)

    # Worker tuning (see the README): activities run in a thread pool this large.
    worker_max_concurrent_activities: int = Field(default=20, ge=1)
    worker_max_concurrent_workflow_tasks: int = Field(default=100, ge=2)
    worker_max_cached_workflows: int = Field(default=1000, ge=0)
    worker_workflow_pollers: int = Field(default=5, ge=2)
    worker_activity_pollers: int = Field(default=5, ge=1)
    # On SIGTERM running activities get this long to finish before they are cancelled.
    worker_shutdown_seconds: float = Field(default=30, ge=0)
    # Worker's Prometheus ports: dunflow's own metrics, and the Temporal SDK's (0: off).
    metrics_port: int = Field(default=9464, ge=0)
    temporal_metrics_port: int = Field(default=9465, ge=0)
    log_format: Literal["text", "json"] = "text"

    # Payload encryption keys "id:base64key,..." (first encrypts); empty: the data folder's
    # `payload-keys` file if `dunflow dev` made one, else payloads go to Temporal unencrypted.
    payload_keys: str = ""
    # Origins (comma-separated) of Temporal UIs allowed to call the codec endpoint.
    codec_cors_origins: str = ""

    @field_validator("day_seconds", "business_costs_per_mille", mode="before")
    @classmethod
    def _blank_is_unset(cls, value):
        return None if value == "" else value

    @property
    def effective_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir.resolve() / 'dunflow.db'}"

    @property
    def effective_public_url(self) -> str:
        return (self.public_url or f"http://{self.api_host}:{self.api_port}").rstrip("/")

    @property
    def payload_keys_file(self) -> Path:
        return self.data_dir / "payload-keys"

    @property
    def effective_payload_keys(self) -> str:
        if self.payload_keys or not self.payload_keys_file.is_file():
            return self.payload_keys
        return self.payload_keys_file.read_text().strip()

    @property
    def uses_sendgrid(self) -> bool:
        return bool(self.sendgrid_api_key)

    @property
    def uses_twilio(self) -> bool:
        return bool(self.twilio_account_sid and self.twilio_auth_token and self.twilio_from)


@lru_cache
def get_settings() -> Settings:
    return Settings()
