"""Contact rules: contacts counted per debtor, per-channel opt-outs, combined sends

Revision ID: 0003
Revises: 0002
Created: 2026-11-23 10:19:48.092060
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('combined_send',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('key', sqlmodel.sql.sqltypes.AutoString(length=300), nullable=False),
    sa.Column('case_id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('key')
    )
    op.create_table('contact',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('key', sqlmodel.sql.sqltypes.AutoString(length=300), nullable=False),
    sa.Column('debtor_id', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('channel', sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('key')
    )
    with op.batch_alter_table('contact', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_contact_debtor_id'), ['debtor_id'], unique=False)

    op.create_table('contact_opt_out',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('debtor_id', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('channel', sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
    sa.Column('reason', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('debtor_id', 'channel')
    )
    with op.batch_alter_table('contact_opt_out', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_contact_opt_out_debtor_id'), ['debtor_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('contact_opt_out', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_contact_opt_out_debtor_id'))

    op.drop_table('contact_opt_out')
    with op.batch_alter_table('contact', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_contact_debtor_id'))

    op.drop_table('contact')
    op.drop_table('combined_send')
