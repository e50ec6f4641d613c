from __future__ import annotations

import msgspec
from litestar import Controller, Request, delete, get, patch, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, JSONBody

from app.core.audit import AdminActionRead, list_admin_actions
from app.core.auth import service
from app.core.auth.domain import ALL_ROLES, Principal, Role
from app.core.auth.guards import PUBLIC, allow
from app.core.auth.models import User
from app.core.auth.schemas import (
    CredentialsRevoked,
    Me,
    TokenRequest,
    TokenResponse,
    Unlocked,
    UserCreate,
    UserRead,
    UserUpdate,
)
from app.core.config import Settings
from app.core.db import Database
from app.core.schemas import Limit, Offset, Page
from app.core.security import client_address


def _user_read(user: User) -> UserRead:
    return msgspec.convert(user, UserRead, from_attributes=True)


class AuthController(Controller):
    path = "/api/v1/auth"
    tags = ["auth"]

    @post("/token", opt=PUBLIC, operation_id="CreateToken", status_code=200)
    async def create_token(
        self,
        request: Request,
        data: JSONBody[TokenRequest],
        db: NamedDependency[Database],
        settings: NamedDependency[Settings],
    ) -> TokenResponse:
        """Exchange a username and password for a bearer token (for the API and scanners).

        Too many failures from one address answer 429 for a while; too many for one account, from
        any addresses, lock it (429, type account-locked) until it times out or an admin unlocks it."""
        client = client_address(request.scope, settings.behind_proxy)
        result = await service.sign_in(db, data.username, data.password, client=client, kind="api", settings=settings)
        if result.error is not None:
            raise result.error
        return TokenResponse(access_token=result.token, expires_at=result.expires_at)

    @delete("/token", opt=allow(*ALL_ROLES), operation_id="RevokeToken", status_code=204)
    async def revoke_token(self, request: Request, db: NamedDependency[Database]) -> None:
        """Revoke the bearer token this request was made with."""
        token = request.headers.get("authorization", "").partition(" ")[2].strip()
        async with db.write() as uow:
            await service.revoke(uow, token, "api")

    @get("/me", opt=allow(*ALL_ROLES), operation_id="GetMe")
    async def me(self, principal: NamedDependency[Principal]) -> Me:
        return Me(username=principal.username, roles=list(principal.roles), via=principal.via)


class UserController(Controller):
    path = "/api/v1/users"
    tags = ["users"]

    @get("/", opt=allow(Role.ADMIN, Role.AUDITOR), operation_id="ListUsers")
    async def list_users(self, db: NamedDependency[Database]) -> Page[UserRead]:
        from app.core.auth.repository import UserRepository

        async with db.read() as uow:
            users = await UserRepository(uow.session).list()
        return Page(items=[_user_read(u) for u in users], total=len(users), limit=len(users), offset=0)

    @post("/", opt=allow(Role.ADMIN), operation_id="CreateUser")
    async def create_user(
        self, data: JSONBody[UserCreate], db: NamedDependency[Database], principal: NamedDependency[Principal]
    ) -> UserRead:
        async with db.write() as uow:
            user = await service.create_user(
                uow, data.username, data.password, list(data.roles), data.full_name, actor=principal
            )
        return _user_read(user)

    @get("/{username:str}", opt=allow(Role.ADMIN, Role.AUDITOR), operation_id="GetUser")
    async def get_user(self, username: FromPath[str], db: NamedDependency[Database]) -> UserRead:
        async with db.read() as uow:
            user = await service.get_user(uow, username)
        return _user_read(user)

    @patch("/{username:str}", opt=allow(Role.ADMIN), operation_id="UpdateUser")
    async def update_user(
        self,
        username: FromPath[str],
        data: JSONBody[UserUpdate],
        db: NamedDependency[Database],
        principal: NamedDependency[Principal],
    ) -> UserRead:
        """Change roles, name, or `active` (false: no sign-in, every token and session revoked).
        Refused with 409 when it would leave no active admin."""
        async with db.write() as uow:
            user = await service.update_user(
                uow,
                username,
                principal,
                active=data.active,
                roles=list(data.roles) if data.roles is not None else None,
                full_name=data.full_name,
            )
        return _user_read(user)

    @post(
        "/{username:str}/revoke-credentials",
        opt=allow(Role.ADMIN),
        operation_id="RevokeUserCredentials",
        status_code=200,
    )
    async def revoke_credentials(
        self, username: FromPath[str], db: NamedDependency[Database], principal: NamedDependency[Principal]
    ) -> CredentialsRevoked:
        """Revoke every API token and page session of a user at once (a lost device, a leaver)."""
        async with db.write() as uow:
            count = await service.revoke_all_credentials(uow, username, principal)
        return CredentialsRevoked(username=username, revoked=count)

    @post("/{username:str}/unlock", opt=allow(Role.ADMIN), operation_id="UnlockUser", status_code=200)
    async def unlock(
        self, username: FromPath[str], db: NamedDependency[Database], principal: NamedDependency[Principal]
    ) -> Unlocked:
        """Lift a sign-in lockout before it times out."""
        async with db.write() as uow:
            result = await service.unlock(uow, username, principal)
        return Unlocked(username=result.username, was_locked=result.was_locked)


class AdminActionController(Controller):
    path = "/api/v1/audit"
    tags = ["audit"]

    @get("/admin-actions", opt=allow(Role.ADMIN, Role.AUDITOR), operation_id="ListAdminActions")
    async def list_admin_actions(
        self,
        db: NamedDependency[Database],
        action: FromQuery[str | None] = None,
        actor: FromQuery[str | None] = None,
        target: FromQuery[str | None] = None,
        limit: Limit = 50,
        offset: Offset = 0,
    ) -> Page[AdminActionRead]:
        """Every administrative action, newest first: who, what, on whom, from where, with the request id."""
        async with db.read() as uow:
            items, total = await list_admin_actions(
                uow, action=action, actor=actor, target=target, limit=limit, offset=offset
            )
        return Page(items=items, total=total, limit=limit, offset=offset)
