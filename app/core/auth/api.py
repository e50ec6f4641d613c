from __future__ import annotations

import msgspec
from litestar import Controller, Request, delete, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody

from app.core.auth import service
from app.core.auth.domain import ALL_ROLES, Principal, Role
from app.core.auth.guards import PUBLIC, allow
from app.core.auth.models import User
from app.core.auth.schemas import Me, TokenRequest, TokenResponse, UserCreate, UserRead
from app.core.config import Settings
from app.core.db import Database
from app.core.schemas import Page


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
        """Exchange a username and password for a bearer token (for the API and scanners)."""
        client = request.client.host if request.client else "unknown"
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
    async def create_user(self, data: JSONBody[UserCreate], db: NamedDependency[Database]) -> UserRead:
        async with db.write() as uow:
            user = await service.create_user(uow, data.username, data.password, list(data.roles), data.full_name)
        return _user_read(user)

    @get("/{username:str}", opt=allow(Role.ADMIN, Role.AUDITOR), operation_id="GetUser")
    async def get_user(self, username: FromPath[str], db: NamedDependency[Database]) -> UserRead:
        async with db.read() as uow:
            user = await service.get_user(uow, username)
        return _user_read(user)
