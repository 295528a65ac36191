"""report indexes: covering index for the period aggregates, project history, outcome and referral dates

Revision ID: 0005
Revises: 0004

``ix_accompaniments_report`` holds every column the report reads (partner, then date): a partner's
period is a range of the index alone, the whole network's a skip-scan or a scan of the index alone —
never a lookup in the table — and the GROUP BYs that start with the partner come out partly sorted.
It also serves the partner's period queries better than ``ix_accompaniments_partner_date`` (which
makes SQLite fetch every row from the table).
``ix_accompaniments_history`` (project first) answers "did this project have a live record before the
period?" (new projects) with one index seek per project, and lets the per-project GROUP BY of the
report read the index alone, in order.
"""
from alembic import op


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('accompaniments', schema=None) as batch_op:
        batch_op.create_index('ix_accompaniments_report',
                              ['partner', 'date', 'phase', 'modality', 'cancelled', 'project_id', 'duration_minutes'],
                              unique=False)
        batch_op.create_index('ix_accompaniments_history',
                              ['project_id', 'partner', 'cancelled', 'date', 'phase', 'duration_minutes'],
                              unique=False)
    with op.batch_alter_table('project_outcomes', schema=None) as batch_op:
        batch_op.create_index('ix_project_outcomes_date', ['date'], unique=False)
    with op.batch_alter_table('referrals', schema=None) as batch_op:
        batch_op.create_index('ix_referrals_date', ['date'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('referrals', schema=None) as batch_op:
        batch_op.drop_index('ix_referrals_date')
    with op.batch_alter_table('project_outcomes', schema=None) as batch_op:
        batch_op.drop_index('ix_project_outcomes_date')
    with op.batch_alter_table('accompaniments', schema=None) as batch_op:
        batch_op.drop_index('ix_accompaniments_history')
        batch_op.drop_index('ix_accompaniments_report')
