from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Response, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, HeaderParameter, JSONBody
from sqlalchemy.exc import IntegrityError

from app.core.auth.domain import ALL_ROLES, STAFF, Principal
from app.core.auth.guards import allow
from app.core.db import Database
from app.core.definitions import Lifecycle
from app.core.lifecycle import service
from app.core.lifecycle.schemas import LifecycleRead, TransitionRequest
from app.factory.schemas import ModuleRead

IdempotencyKey = Annotated[
    str | None, HeaderParameter(name="Idempotency-Key", description="Replays return the first answer")
]
IfMatch = Annotated[str | None, HeaderParameter(name="If-Match", description="The module version you last saw")]


class TransitionController(Controller):
    path = "/api/v1"
    tags = ["lifecycle"]

    @post(
        "/modules/{serial:str}/transitions",
        opt=allow(*STAFF),
        operation_id="TransitionModule",
        status_code=200,
    )
    async def transition(
        self,
        serial: FromPath[str],
        data: JSONBody[TransitionRequest],
        db: NamedDependency[Database],
        lifecycle: NamedDependency[Lifecycle],
        principal: NamedDependency[Principal],
        idempotency_key: IdempotencyKey = None,
        if_match: IfMatch = None,
    ) -> Response[ModuleRead]:
        """Move a module by a named transition of the lifecycle definition.

        The roles, guards and payload fields come from `workflows/module-lifecycle.toml`; the event
        is appended to the module's ledger in the same transaction. 409 when the module is not in a
        state the transition starts from, or `If-Match` names an older version; 422 when a guard
        refuses (the guard is named).
        """
        try:
            async with db.write() as uow:
                module = await service.transition(
                    uow,
                    lifecycle,
                    serial,
                    data,
                    principal,
                    if_match=if_match,
                    idempotency_key=idempotency_key,
                )
        except IntegrityError:
            if idempotency_key is None:
                raise
            # A concurrent request with the same key won the race: answer what it answered.
            async with db.read() as uow:
                module = await service.recall(uow, principal, serial, data, idempotency_key)
            if module is None:
                raise
        return Response(module, headers={"ETag": f'"{module.version}"'})

    @get("/workflows/module-lifecycle", opt=allow(*ALL_ROLES), operation_id="GetModuleLifecycle")
    async def lifecycle_definition(self, lifecycle: NamedDependency[Lifecycle]) -> LifecycleRead:
        """The lifecycle definition as loaded: states with colours, transitions with roles and guards."""
        return _convert(service.lifecycle_read(lifecycle))


def _convert(data: dict[str, Any]) -> LifecycleRead:
    import msgspec

    return msgspec.convert(data, LifecycleRead)
