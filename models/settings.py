"""The one settings class: environment variables prefixed `INTERVENE_`, and a `.env` file."""

from datetime import timedelta
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from models.enums import Severity
from models.sla import DEFAULT_SLA_TARGETS, SlaTargets

DEFAULT_DATA_DIR = Path(".intervene")
SOURCE_ROOT = Path(__file__).resolve().parents[1]


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

    warehouse_url: str = Field(
        default=f"duckdb:///{DEFAULT_DATA_DIR}/warehouse.duckdb",
        description="Warehouse that checks read and dbt builds: duckdb:///file or postgresql://...",
    )
    dbt_project_dir: Path = Field(
        default=SOURCE_ROOT / "warehouse", description="The dbt project `rerun_dbt` runs."
    )
    dbt_target_dir: Path = Field(
        default=DEFAULT_DATA_DIR / "dbt" / "target",
        description="dbt's target path (manifest.json, run results); the API reads the manifest.",
    )
    dbt_socket: Path | None = Field(
        default=DEFAULT_DATA_DIR / "dbt" / "warm.sock",
        description="Unix socket of the worker's warm dbt executor (empty: run dbt in each flow).",
    )
    checks_file: Path = Field(
        default=SOURCE_ROOT / "warehouse" / "checks.yml", description="The declared checks."
    )
    check_error_threshold: int = Field(
        default=3, ge=1, description="Consecutive query errors before a check gets an incident."
    )
    check_stale_intervals: float = Field(
        default=3, gt=1, description="A check silent for this many of its intervals is stale."
    )
    watchdog_interval_seconds: float = Field(
        default=30, gt=0, description="How often the API looks for stale checks."
    )
    sla_targets: dict[Severity, SlaTargets] = Field(
        default_factory=lambda: dict(DEFAULT_SLA_TARGETS),
        description="Seconds from creation to acknowledge, mitigate and resolve, per severity"
        ' (JSON, e.g. {"sev1": {"acknowledge": 300, "mitigate": 1800, "resolve": 14400}});'
        " a missing stage has no target, a missing severity keeps its default.",
    )
    sla_sweep_interval_seconds: float = Field(
        default=30, gt=0, description="How often the API looks for SLA timers that ran out."
    )
    github_repo: str | None = Field(
        default=None,
        pattern=r"^[\w.-]+/[\w.-]+$",
        description="owner/name: open a GitHub issue for every new incident (needs a token).",
    )
    github_token: SecretStr | None = Field(default=None, description="Token for issue creation.")
    github_api_url: str = Field(default="https://api.github.com", description="GitHub's API.")
    github_labels: list[str] = Field(
        default_factory=lambda: ["incident"], description="Labels of the opened issues."
    )
    elasticsearch_url: str | None = Field(
        default=None, description="The search cluster the Elasticsearch playbooks act on."
    )
    elasticsearch_api_key: SecretStr | None = Field(default=None, description="Its API key.")
    elasticsearch_username: str | None = Field(default=None, description="Or a user name...")
    elasticsearch_password: SecretStr | None = Field(default=None, description="...and password.")
    elasticsearch_timeout_seconds: float = Field(
        default=10, gt=0, description="Per request to the cluster."
    )
    planner_step_seconds: float = Field(
        default=30, ge=0, description="Pause between the steps of a gradual traffic change."
    )
    action_executions_per_hour: int = Field(
        default=10, ge=1, description="Executions (and rollbacks) allowed per incident per hour."
    )
    action_dry_runs_per_hour: int = Field(
        default=100, ge=1, description="Dry-runs allowed per incident per hour."
    )
    action_wait_max_seconds: int = Field(
        default=300, ge=0, description="Longest `?wait=` an execute may ask for."
    )
    prefect_ui_url: str | None = Field(
        default=None,
        description="Prefect UI base URL for flow run links (default: PREFECT_API_URL less /api).",
    )
    reconcile_interval_seconds: float = Field(
        default=5.0, gt=0, description="How often the reconciler compares actions with flow runs."
    )
    heartbeat_seconds: float = Field(
        default=5.0, gt=0, description="How often a running action proves it is alive."
    )
    stale_heartbeat_seconds: float = Field(
        default=30.0, gt=0, description="A running action silent this long is crashed."
    )

    sse_heartbeat_seconds: float = Field(
        default=30.0, gt=0, description="Seconds between `heartbeat` events on the SSE stream."
    )
    sse_retention_days: float = Field(
        default=7.0, gt=0, description="Events kept for replay; older ones are pruned."
    )
    sse_queue_size: int = Field(
        default=1000, ge=1, description="Events buffered per SSE client before it is dropped."
    )
    sse_poll_seconds: float | None = Field(
        default=None,
        gt=0,
        description="How often the SSE reader polls for new events (default: 0.2 s on SQLite;"
        " 2 s on PostgreSQL, where LISTEN/NOTIFY wakes it at once).",
    )
    sse_retry_ms: int = Field(default=3000, ge=0, description="The `retry:` hint sent to clients.")
    sse_send_timeout_seconds: float = Field(
        default=30.0, gt=0, description="A client that takes no data this long is disconnected."
    )

    auth: Literal["enabled", "disabled"] = Field(
        default="enabled",
        description="Bearer tokens on every endpoint; `disabled` only for local experiments.",
    )
    auth_cache_seconds: float = Field(
        default=10.0,
        ge=0,
        description="How long an API process trusts a token it has looked up (a revoked token"
        " stops working in the process that revoked it at once, in the others within this).",
    )
    self_approval: list[str] = Field(
        default_factory=list,
        description="Action types whose approvers may approve their own execution (the direct"
        " execute with approved_by); `*` for all. Others need a second person (approvals).",
    )
    approval_ttl_seconds: int = Field(
        default=3600, ge=60, description="An approval request not decided within this expires."
    )
    rate_limit: str = Field(
        default="1000/hour",
        description="Requests per client address, in the `limits` notation (e.g. 1000/hour).",
    )
    rate_limit_storage: str = Field(
        default="memory://",
        description="Where rate-limit counters live: memory:// (per process) or redis://host:port"
        " (shared by every API process).",
    )
    rate_limit_namespace: str = Field(
        default="intervene",
        description="Prefix of the rate-limit counters (deployments sharing one Redis differ).",
    )
    trusted_proxies: list[str] = Field(
        default_factory=list,
        description="Addresses or networks whose X-Forwarded-For is believed (e.g. 10.0.0.0/8).",
    )
    max_body_bytes: int = Field(
        default=1_048_576, ge=1024, description="Larger request bodies are refused (413)."
    )
    metrics_auth: Literal["enabled", "disabled"] = Field(
        default="enabled",
        description="GET /metrics needs a viewer token like every other endpoint; `disabled`"
        " opens it (for scrapers that cannot send one: keep it off the public network then).",
    )
    log_format: Literal["json", "text"] = Field(
        default="json",
        description="Log lines of the `intervene` processes: one JSON object each (with the"
        " request id), or plain text for a terminal (`intervene dev` picks text).",
    )

    webhook_timeout_seconds: float = Field(
        default=10.0, gt=0, le=120, description="How long a webhook target has to answer."
    )
    webhook_retry_seconds: float = Field(
        default=3600.0,
        gt=0,
        description="How long a delivery is retried from its first attempt (network errors,"
        " timeouts, 429 and 5xx) before it is marked failed.",
    )
    webhook_backoff_seconds: float = Field(
        default=2.0, gt=0, description="The first retry's delay; it doubles with each attempt."
    )
    webhook_backoff_max_seconds: float = Field(
        default=300.0, gt=0, description="The longest delay between two attempts."
    )
    webhook_disable_after: int = Field(
        default=5,
        ge=1,
        description="Failed deliveries in a row after which a subscription is disabled.",
    )
    webhook_allow_private: bool = Field(
        default=False,
        description="Allow webhook targets on private and loopback addresses (on-prem)."
        " Link-local and cloud metadata addresses are always refused.",
    )
    webhook_poll_seconds: float = Field(
        default=1.0, gt=0, description="How often `intervene services` looks for events to deliver."
    )
    public_url: str | None = Field(
        default=None,
        description="The console's address as people reach it (https://intervene.example.com):"
        " links from Prefect's artifacts and state messages back to incidents.",
    )
    pipeline_deployments: list[str] = Field(
        default_factory=list,
        description="Prefect deployments (flow/deployment; * wildcards) whose failed or crashed"
        " runs open `pipeline` incidents (JSON list). Intervene's own flows are never watched.",
    )
    pipeline_tags: list[str] = Field(
        default_factory=list,
        description="Or: flow runs carrying any of these tags open `pipeline` incidents.",
    )
    pipeline_severity: Severity = Field(
        default=Severity.SEV2, description="Severity of a new `pipeline` incident."
    )
    prefect_events_backoff_max_seconds: float = Field(
        default=30.0, gt=0, description="Longest wait before re-subscribing to Prefect's events."
    )
    remediation_poll_seconds: float = Field(
        default=0.5,
        gt=0,
        description="How often `intervene services` looks for violations to remediate (attempts"
        " in flight are looked at every 0.1 s).",
    )
    remediation_budget_per_hour: int = Field(
        default=20,
        ge=0,
        description="Automatic executions per hour, all actions together (0: none).",
    )
    remediation_action_budget_per_hour: int = Field(
        default=10,
        ge=0,
        description="Automatic executions per hour of each action type, unless"
        " INTERVENE_REMEDIATION_ACTION_BUDGETS names it.",
    )
    remediation_action_budgets: dict[str, int] = Field(
        default_factory=dict,
        description='Per action type, its own hourly budget: {"rerun_dbt": 30}.',
    )
    remediation_verify_timeout_seconds: float = Field(
        default=600,
        gt=0,
        description="How long a verification run may take before the attempt counts as failed.",
    )

    alert_rules_file: Path | None = Field(
        default=SOURCE_ROOT / "warehouse" / "alert_rules.yml",
        description="Routing rules for alerts from Alertmanager, Grafana, PagerDuty events and"
        " dbt (docs/alerts.md); empty: the defaults alone.",
    )
    oncall_file: Path | None = Field(
        default=SOURCE_ROOT / "warehouse" / "oncall.yml",
        description="People and on-call schedules (docs/oncall.md); empty: no one is on call.",
    )
    smtp_host: str | None = Field(
        default=None,
        description="The SMTP server that sends notification emails (unset: emails wait, visible"
        " in each incident's notifications, until it is set).",
    )
    smtp_port: int = Field(default=587, ge=1, le=65535, description="Its port.")
    smtp_tls: Literal["starttls", "tls", "none"] = Field(
        default="starttls", description="STARTTLS after connecting, TLS from the start, or none."
    )
    smtp_user: str | None = Field(default=None, description="Its user, if it needs a login.")
    smtp_password: SecretStr | None = Field(default=None, description="...and password.")
    smtp_sender: str = Field(
        default="intervene@localhost", description="The From address of notification emails."
    )
    smtp_timeout_seconds: float = Field(default=10.0, gt=0, description="Per message.")
    slack_bot_token: SecretStr | None = Field(
        default=None,
        description="The Slack app's bot token (xoxb-...) that posts and updates notification"
        " messages (unset: Slack notifications wait, visible, until it is set).",
    )
    slack_signing_secret: SecretStr | None = Field(
        default=None,
        description="The Slack app's signing secret: POST /api/integrations/slack/interactions"
        " refuses every request it did not sign (unset: the endpoint answers 404).",
    )
    slack_api_url: str = Field(
        default="https://slack.com/api/",
        description="Slack's Web API (another URL only for a proxy or a test server).",
    )
    slack_timeout_seconds: float = Field(default=10.0, gt=0, description="Per Slack API call.")
    escalation_poll_seconds: float = Field(
        default=5.0,
        gt=0,
        description="How often `intervene services` moves escalations on and sends notifications.",
    )
    silence_poll_seconds: float = Field(
        default=5.0,
        gt=0,
        description="How often the services look for silences that ended over alerts still firing.",
    )
    report_artifact_poll_seconds: float = Field(
        default=5.0,
        gt=0,
        description="How often `intervene services` looks for incident reports to publish as"
        " Prefect artifacts on their last action run.",
    )

    def remediation_action_budget(self, action_type: str) -> int:
        return self.remediation_action_budgets.get(
            action_type, self.remediation_action_budget_per_hour
        )

    @property
    def incident_cap_window(self) -> timedelta:
        return timedelta(seconds=self.incident_cap_window_seconds)

    @field_validator("sla_targets")
    @classmethod
    def _every_severity(cls, value: dict[Severity, SlaTargets]) -> dict[Severity, SlaTargets]:
        return DEFAULT_SLA_TARGETS | value

    @field_validator("alert_rules_file", "oncall_file", mode="before")
    @classmethod
    def _no_file(cls, value: object) -> object:
        return None if value == "" else value

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
