"""Flow drafts, publications and case moves (the designer)

Revision ID: 0002
Revises: 0001
Created: 2026-11-23 10:02:21.396309
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('flowdraft',
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('source', sa.Text(), nullable=False),
    sa.Column('format', sqlmodel.sql.sqltypes.AutoString(length=4), nullable=False),
    sa.Column('saved_by', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('saved_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('name')
    )
    op.create_table('flowpublication',
    sa.Column('flow_version_id', sa.Integer(), nullable=False),
    sa.Column('published_by', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('source', sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
    sa.Column('diff', sa.Text(), nullable=False),
    sa.Column('diagram', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['flow_version_id'], ['flowversion.id'], ),
    sa.PrimaryKeyConstraint('flow_version_id')
    )
    op.create_table('casemove',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('case_id', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('flow_name', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('from_version', sa.Integer(), nullable=False),
    sa.Column('to_version', sa.Integer(), nullable=False),
    sa.Column('moved_by', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('note', sqlmodel.sql.sqltypes.AutoString(length=300), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['case_id'], ['case.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('casemove', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_casemove_case_id'), ['case_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('casemove', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_casemove_case_id'))

    op.drop_table('casemove')
    op.drop_table('flowpublication')
    op.drop_table('flowdraft')
