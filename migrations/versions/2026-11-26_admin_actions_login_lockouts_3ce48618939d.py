"""admin actions and login lockouts

The admin audit trail (app.core.audit.AdminAction: one row per administrative action, written in the
action's own transaction) and per-username sign-in lockouts (app.core.auth.models.LoginLockout).

Revision ID: 3ce48618939d
Revises: 86a76b40c400
Create Date: 2026-11-26 06:50:00.000000
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import app.core.db

revision: str = '3ce48618939d'
down_revision: str | None = '86a76b40c400'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('admin_actions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('at', app.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('actor', sa.String(length=100), nullable=False),
    sa.Column('action', sa.String(length=64), nullable=False),
    sa.Column('target', sa.String(length=200), nullable=False),
    sa.Column('detail', sa.JSON(), nullable=False),
    sa.Column('request_id', sa.String(length=64), nullable=False),
    sa.Column('client', sa.String(length=64), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_admin_actions'))
    )
    with op.batch_alter_table('admin_actions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_admin_actions_action'), ['action'], unique=False)
        batch_op.create_index(batch_op.f('ix_admin_actions_actor'), ['actor'], unique=False)
        batch_op.create_index(batch_op.f('ix_admin_actions_at'), ['at'], unique=False)

    op.create_table('login_lockouts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('username', sa.String(length=64), nullable=False),
    sa.Column('locked_at', app.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('locked_until', app.core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('counted_from', app.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('failures', sa.Integer(), nullable=False),
    sa.Column('unlocked_at', app.core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('unlocked_by', sa.String(length=100), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_login_lockouts')),
    sa.UniqueConstraint('username', name=op.f('uq_login_lockouts_username'))
    )
    # Like the ledger, the admin audit trail is append-only: the database refuses UPDATE and DELETE.
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "CREATE FUNCTION afm_admin_actions_append_only() RETURNS trigger LANGUAGE plpgsql AS $$ "
            "BEGIN RAISE EXCEPTION 'afm audit: admin actions are append-only (% refused)', TG_OP; END $$"
        )
        op.execute(
            "CREATE TRIGGER admin_actions_append_only BEFORE UPDATE OR DELETE ON admin_actions "
            "FOR EACH ROW EXECUTE FUNCTION afm_admin_actions_append_only()"
        )
        op.execute(
            "CREATE TRIGGER admin_actions_no_truncate BEFORE TRUNCATE ON admin_actions "
            "FOR EACH STATEMENT EXECUTE FUNCTION afm_admin_actions_append_only()"
        )
    else:
        op.execute(
            "CREATE TRIGGER admin_actions_no_update BEFORE UPDATE ON admin_actions "
            "BEGIN SELECT RAISE(ABORT, 'afm audit: admin actions are append-only (UPDATE refused)'); END"
        )
        op.execute(
            "CREATE TRIGGER admin_actions_no_delete BEFORE DELETE ON admin_actions "
            "BEGIN SELECT RAISE(ABORT, 'afm audit: admin actions are append-only (DELETE refused)'); END"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS admin_actions_no_truncate ON admin_actions")
        op.execute("DROP TRIGGER IF EXISTS admin_actions_append_only ON admin_actions")
        op.execute("DROP FUNCTION IF EXISTS afm_admin_actions_append_only()")
    else:
        op.execute("DROP TRIGGER IF EXISTS admin_actions_no_update")
        op.execute("DROP TRIGGER IF EXISTS admin_actions_no_delete")
    op.drop_table('login_lockouts')
    with op.batch_alter_table('admin_actions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_admin_actions_at'))
        batch_op.drop_index(batch_op.f('ix_admin_actions_actor'))
        batch_op.drop_index(batch_op.f('ix_admin_actions_action'))

    op.drop_table('admin_actions')
