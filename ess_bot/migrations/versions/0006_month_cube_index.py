"""month cube index (SQLite): the report's GROUP BY month, partner, phase, modality read in order

Revision ID: 0006
Revises: 0005

On SQLite the activity cube of a report grouped records by partner, phase, modality and month with a
temporary B-tree: sorting the 100,000 records of the benchmark was nearly all of the statement's time
(about 135 ms). This index starts with the month expression the report groups by (``substr(date, 1, 7)``,
see ``services.reports.month_key``), then the other groups and every column the cube reads: the period
is a range of the index and the groups come out in order (about 60 ms). PostgreSQL does not get it: it sorts fast
enough, and its month expression (``to_char``) may not be indexed.
"""
from alembic import op
import sqlalchemy as sa


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None

COLUMNS = [sa.text('substr(date, 1, 7)'), 'partner', 'phase', 'modality', 'cancelled', 'date', 'duration_minutes']


def upgrade() -> None:
    if op.get_bind().dialect.name == 'sqlite':
        op.create_index('ix_accompaniments_month_cube', 'accompaniments', COLUMNS, unique=False)


def downgrade() -> None:
    if op.get_bind().dialect.name == 'sqlite':
        op.drop_index('ix_accompaniments_month_cube', table_name='accompaniments')
