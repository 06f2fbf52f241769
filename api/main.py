"""The FastAPI app factory: settings in, app out. Migrations run at start-up (idempotent)."""

import asyncio
import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from asgi_correlation_id import CorrelationIdMiddleware
from fastapi import Depends, FastAPI

from alerts.rules import load_rules
from api.auth import Authenticator, RedactTokens, authenticate
from api.errors import install_error_handlers
from api.launcher import PrefectLauncher
from api.logs import REQUEST_ID_HEADER, new_request_id, valid_request_id
from api.methods import HeadAsGet
from api.metrics import Metrics, RequestMetrics
from api.middleware import Gate
from api.openapi import install_openapi
from api.routes import (
    admin,
    approvals,
    automation,
    checks,
    events,
    health,
    incidents,
    integrations,
    me,
    metrics,
    notifications,
    oncall,
    planner,
    playbooks,
    prefect,
    reports,
    silences,
    slack,
    stats,
    webhooks,
)
from api.routes.console import mount_console
from api.sla import SlaSweep
from api.sse import Broadcaster
from checks.service import Checks
from models import migrate
from models.db import connect
from models.settings import Settings, get_settings
from models.sla import plans
from models.version import VERSION
from oncall.schedules import load_oncall
from playbooks.approvals import Approvals
from playbooks.catalog import SUGGESTABLE, load_checks
from playbooks.launcher import Launcher
from playbooks.service import Playbooks

log = logging.getLogger("intervene.api")


def create_app(settings: Settings | None = None, launcher: Launcher | None = None) -> FastAPI:
    """The app; `launcher` starts flow runs (default: Prefect at PREFECT_API_URL).

    A checks, alert rules or on-call file with errors stops the app here, naming each problem
    with its line."""
    settings = settings or get_settings()
    specs = load_checks(settings.checks_file)
    alert_rules = load_rules(settings.alert_rules_file, SUGGESTABLE)
    people = load_oncall(settings.oncall_file)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if settings.auto_migrate:
            await asyncio.to_thread(migrate.upgrade, settings.database_url)
        database = connect(
            settings.database_url,
            pool_size=settings.database_pool_size,
            max_overflow=settings.database_max_overflow,
        )
        app.state.db = database
        app.state.authenticator = Authenticator(database, settings)
        # `intervene api` masks tokens in its log handler (api/logs.py); under a bare uvicorn
        # the loggers whose lines carry a URL do it themselves
        for name in ("uvicorn.access", "intervene.api"):
            logger = logging.getLogger(name)
            if not any(isinstance(f, RedactTokens) for f in logger.filters):
                logger.addFilter(RedactTokens())
        if settings.auth == "disabled":
            log.warning("INTERVENE_AUTH=disabled: every request acts as the local admin")
        app.state.playbooks = Playbooks(
            database, settings, launcher or PrefectLauncher(settings.prefect_ui_url)
        )
        app.state.approvals = Approvals(database, app.state.playbooks)
        broadcaster = Broadcaster(database, settings)
        await broadcaster.start()
        app.state.broadcaster = broadcaster
        app.state.checks = Checks(specs, database, settings)
        app.state.checks.start_watchdog()
        app.state.sla = SlaSweep(database, settings)
        app.state.sla.start()
        log.info("database ready (%s)", database.dialect)
        # What start-up allocated (the imports: Prefect's client alone is large) lives as long
        # as the process: keep it out of the collector's full passes, which would otherwise
        # stall every live stream while they walk it.
        gc.collect()
        gc.freeze()
        try:
            yield
        finally:
            await app.state.checks.stop()
            await app.state.sla.stop()
            await broadcaster.stop()
            await database.dispose()

    app = FastAPI(
        title="Intervene",
        version=VERSION,
        summary="Incidents and remediation playbooks for data and ML platforms.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.alert_rules = alert_rules
    app.state.oncall = people
    app.state.sla_plans = plans(settings.sla_targets)  # the targets laid out once
    app.state.metrics = Metrics()
    install_error_handlers(app)
    install_openapi(app)  # the errors above, declared in /openapi.json
    # outermost last: the request id first (every later line and answer carries it), then the
    # metrics (which count the Gate's refusals too), then the Gate; HEAD becomes GET inside all
    app.add_middleware(HeadAsGet)
    app.add_middleware(Gate, settings=settings, metrics=app.state.metrics)
    app.add_middleware(RequestMetrics, metrics=app.state.metrics)
    app.add_middleware(
        CorrelationIdMiddleware,
        header_name=REQUEST_ID_HEADER,
        generator=new_request_id,
        validator=valid_request_id,
    )
    signed_in = [Depends(authenticate)]
    modules = [incidents, approvals, playbooks, events, checks, planner, admin, me, stats, webhooks]
    modules.append(prefect)  # Prefect's finished flow runs (pipeline incidents)
    modules.append(automation)  # the remediation switch, and retrying what automation gave up
    modules.append(silences)  # maintenance windows over alerts from other tools
    modules.append(integrations)  # alerts from Alertmanager, Grafana, dbt
    modules.append(oncall)  # who is on call (INTERVENE_ONCALL_FILE)
    modules.append(notifications)  # who was told about an incident
    modules.append(reports)  # an incident's report (Markdown or JSON) and what people wrote in it
    for module in modules:
        app.include_router(module.router, prefix="/api", dependencies=signed_in)
    app.include_router(health.router, prefix="/api")  # open: load balancers probe it
    # PagerDuty's senders set no header: the routing key in the body is the token
    app.include_router(integrations.pagerduty_router, prefix="/api")
    # Slack signs its requests (the signing secret): the signature is the authentication
    app.include_router(slack.router, prefix="/api")
    # a viewer token, as Prometheus can send (README); INTERVENE_METRICS_AUTH=disabled opens it
    app.include_router(
        metrics.router, dependencies=signed_in if settings.metrics_auth == "enabled" else []
    )
    mount_console(app)  # the page is open; everything it shows needs a token
    return app
