"""The app factory: every route, plugin and error mapping wired in one readable place."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import Any

from litestar import Litestar, Request, Router
from litestar.config.compression import CompressionConfig
from litestar.connection import ASGIConnection
from litestar.datastructures import State
from litestar.di import Provide
from litestar.middleware.base import DefineMiddleware
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import JsonRenderPlugin, YamlRenderPlugin
from litestar.openapi.spec import Components, SecurityScheme
from litestar.plugins.htmx import HTMXPlugin
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.plugins.problem_details import ProblemDetailsConfig, ProblemDetailsPlugin
from litestar.plugins.prometheus import PrometheusConfig, PrometheusController
from litestar.static_files import create_static_files_router
from litestar.template.config import TemplateConfig

from app import __version__
from app.burnin.api import BurnInController
from app.burnin.domain import AcceptanceRules
from app.burnin.pages import BurnInPages
from app.burnin.rules import load_rules
from app.commissioning import service as commissioning
from app.commissioning.api import CommissioningController
from app.commissioning.pages import FieldPages
from app.core.auth.api import AdminActionController, AuthController, UserController
from app.core.auth.domain import Principal
from app.core.auth.guards import PUBLIC, access_guard, current_principal
from app.core.config import Settings, load_settings, set_public_base_url
from app.core.db import Database, import_all_models
from app.core.definitions import Lifecycle, load_lifecycle
from app.core.filestore import FileStore
from app.core.health import HealthController
from app.core.ledger.api import AuditController
from app.core.lifecycle.api import TransitionController
from app.core.observability import RequestIdMiddleware, configure_logging
from app.core.openapi import StrictStructSchemaPlugin
from app.core.problems import EXCEPTION_HANDLERS, ProblemResponses
from app.core.requests import ApiRequest
from app.core.security import ClientAddressMiddleware, SecurityHeaders
from app.factory.api import BuildStepController, FactoryController, ModuleController, SpecController
from app.factory.pages import ModulePages, StationPages
from app.fleet.api import FleetReportController, RedeploymentController, SiteCapacityController
from app.fleet.pages import FleetPages
from app.integration.dispatcher import Dispatcher
from app.integration.import_api import ImportController
from app.integration.import_pages import ImportPages
from app.integration.webhook_api import EventStreamController, WebhookController
from app.integration.webhook_pages import WebhookPages
from app.logistics.api import CrateController
from app.logistics.pages import ShipmentPages
from app.logistics.shipping_api import LicenceController, ShipmentController
from app.routes.api import RouteController
from app.routes.pages import RoutePages
from app.routes.service import NetworkHolder
from app.sites.api import SiteController
from app.tags.api import LabelController, ResolverController, ScanController, TagController
from app.tags.labels import LabelTemplate, load_templates
from app.tags.pages import ScanPages
from app.tags.service import TagSetup
from app.web.colours import ink
from app.web.pages import LifecyclePages, SessionPages

WEB_DIR = Path(__file__).resolve().parent / "web"


class MetricsController(PrometheusController):
    opt = PUBLIC
    include_in_schema = False


def _template_filters(engine: JinjaTemplateEngine) -> None:
    engine.engine.filters["ink"] = ink  # badge text colour for a state's colour


def create_app(settings: Settings | None = None, database: Database | None = None) -> Litestar:
    settings = settings or load_settings()
    set_public_base_url(settings.resolver)
    configure_logging(settings.log_level, settings.log_format)
    import_all_models()
    lifecycle = load_lifecycle()
    db = database or Database(settings.database_url, pool_size=settings.db_pool_size, echo=settings.db_echo)

    async def _dispose(app: Litestar) -> None:
        if dispatcher := app.state.get("dispatcher"):
            dispatcher.stop()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(app.state.dispatcher_task, 5)
        await app.state.db.dispose()

    async def _dispatch(app: Litestar) -> None:
        if settings.dispatcher:  # every worker runs one; the one holding the lease leads
            app.state.dispatcher = Dispatcher(app.state.db, settings)
            app.state.dispatcher_task = asyncio.create_task(app.state.dispatcher.run())

    async def _preload(app: Litestar) -> None:
        if settings.routes_preload:  # warm the route network in the background; requests wait for it
            app.state.preload = asyncio.create_task(route_network.get())

    def _principal(request: Request[Any, Any, Any]) -> Principal:
        return current_principal(request)

    def _settings() -> Settings:
        return settings

    def _lifecycle() -> Lifecycle:
        return lifecycle

    rules = load_rules(Path(settings.burn_in_rules)) if settings.burn_in_rules else load_rules()
    store = FileStore(settings.var_path / "files")

    def _rules() -> AcceptanceRules:
        return rules

    def _store() -> FileStore:
        return store

    tag_setup = TagSetup.from_settings(settings)
    templates = load_templates()  # faulty label templates stop the start, like faulty workflows
    commissioning.templates()  # and so do faulty checklist templates and validation suites
    commissioning.suites()

    def _label_templates() -> dict[str, LabelTemplate]:
        return templates

    route_network = NetworkHolder(settings.cache_path)

    def _route_network() -> NetworkHolder:
        return route_network

    def _tag_setup() -> TagSetup:
        return tag_setup

    def _db(request: ASGIConnection[Any, Any, Any, Any]) -> Database:
        return request.app.state.db  # type: ignore[no-any-return]

    prometheus = PrometheusConfig(app_name="afm", prefix="afm", group_path=True, exclude=["/static"])

    return Litestar(
        route_handlers=[
            HealthController,
            MetricsController,
            AuthController,
            UserController,
            AdminActionController,
            ModuleController,
            SpecController,
            BuildStepController,
            FactoryController,
            SiteController,
            AuditController,
            TransitionController,
            BurnInController,
            ScanController,
            TagController,
            LabelController,
            CrateController,
            ShipmentController,
            CommissioningController,
            SiteCapacityController,
            RedeploymentController,
            FleetReportController,
            LicenceController,
            WebhookController,
            EventStreamController,
            ImportController,
            RouteController,
            ResolverController,
            SessionPages,
            LifecyclePages,
            ModulePages,
            StationPages,
            BurnInPages,
            ScanPages,
            RoutePages,
            ShipmentPages,
            FieldPages,
            FleetPages,
            ImportPages,
            WebhookPages,
            create_static_files_router(
                path="/static", directories=[WEB_DIR / "static"], opt=PUBLIC, include_in_schema=False
            ),
        ],
        dependencies={
            "db": Provide(_db, sync_to_thread=False),
            "settings": Provide(_settings, sync_to_thread=False),
            "lifecycle": Provide(_lifecycle, sync_to_thread=False),
            "principal": Provide(_principal, sync_to_thread=False),
            "burn_in_rules": Provide(_rules, sync_to_thread=False),
            "store": Provide(_store, sync_to_thread=False),
            "tag_setup": Provide(_tag_setup, sync_to_thread=False),
            "label_templates": Provide(_label_templates, sync_to_thread=False),
            "route_network": Provide(_route_network, sync_to_thread=False),
        },
        guards=[access_guard],
        middleware=[
            RequestIdMiddleware,
            DefineMiddleware(ClientAddressMiddleware, behind_proxy=settings.behind_proxy),
            prometheus.middleware,
        ],
        before_send=[SecurityHeaders(behind_proxy=settings.behind_proxy)],  # every response, 404s too
        plugins=[
            HTMXPlugin(),
            ProblemDetailsPlugin(ProblemDetailsConfig(enable_for_all_http_exceptions=False)),
            ProblemResponses(),  # the problem-details error responses, in the OpenAPI
            StrictStructSchemaPlugin(),  # bodies that refuse unknown fields say so, in the OpenAPI
        ],
        exception_handlers=EXCEPTION_HANDLERS,
        template_config=TemplateConfig(
            directory=WEB_DIR / "templates", engine=JinjaTemplateEngine, engine_callback=_template_filters
        ),
        openapi_config=OpenAPIConfig(
            title="afm — AI Factory Module lifecycle service",
            version=__version__,
            description="Tracks every AI Factory module from factory build to redeployment.",
            render_plugins=[JsonRenderPlugin(), YamlRenderPlugin()],
            openapi_router=Router("/schema", route_handlers=[], opt=PUBLIC, include_in_schema=False),
            components=Components(
                security_schemes={
                    "bearer": SecurityScheme(type="http", scheme="bearer", description="POST /api/v1/auth/token")
                }
            ),
        ),
        compression_config=CompressionConfig(backend="gzip", minimum_size=1024),
        request_max_body_size=settings.max_body_bytes,
        request_class=ApiRequest,  # JSON bodies: duplicate keys, NUL, too deep or not UTF-8 are 400
        state=State({"db": db, "settings": settings, "lifecycle": lifecycle}),
        on_startup=[_preload, _dispatch],
        on_shutdown=[_dispose],
        debug=False,
    )
