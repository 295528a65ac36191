"""Projects, accompaniments, outcomes and referrals.

Pseudonymous by design (RGPD): a project is a random code and a short label (the project's name,
never a person's), its holder's profile is kept as bands only, and nothing here stores a name, a
birth date, an address, an e-mail or a phone number. Closed-list values are stored as short ASCII
keys (see ``ess_bot.vocabulary``); instants are UTC (UTCDateTime), calendar days are Dates.
"""

from __future__ import annotations

import datetime as dt
from datetime import datetime
from decimal import Decimal

from sqlalchemy import Boolean, Date, ForeignKey, Index, Integer, Numeric, String, text
from sqlalchemy.orm import Mapped, mapped_column

from ess_bot.storage.models import Base, only_on
from ess_bot.storage.types import UTCDateTime

USER_ID = 255   # Matrix user ids
SLUG = 64       # partner slugs
KEY = 24        # closed-list keys


class Project(Base):
    """A project accompanied by the network, held by one partner."""

    __tablename__ = "projects"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    code: Mapped[str] = mapped_column(String(8), unique=True)            # P-7K3Q
    label: Mapped[str] = mapped_column(String(80))                       # "Café culturel Pixel"
    label_key: Mapped[str] = mapped_column(String(80))                   # folded label, for searching
    partner: Mapped[str] = mapped_column(String(SLUG))                   # holding partner
    department: Mapped[str] = mapped_column(String(3))
    nature: Mapped[str] = mapped_column(String(KEY))
    legal_form: Mapped[str] = mapped_column(String(KEY))                 # envisaged legal form
    collective: Mapped[bool] = mapped_column(Boolean, default=False)
    esus: Mapped[str] = mapped_column(String(KEY), default="non")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    created_by: Mapped[str] = mapped_column(String(USER_ID))
    updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    updated_by: Mapped[str | None] = mapped_column(String(USER_ID))
    # holder profile, bands only (None = not recorded yet)
    gender: Mapped[str | None] = mapped_column(String(KEY))
    age_band: Mapped[str | None] = mapped_column(String(KEY))
    employment_status: Mapped[str | None] = mapped_column(String(KEY))
    minima: Mapped[str | None] = mapped_column(String(KEY))
    qpv: Mapped[str | None] = mapped_column(String(KEY))
    frr: Mapped[str | None] = mapped_column(String(KEY))

    __table_args__ = (Index("ix_projects_partner", "partner"), Index("ix_projects_label_key", "label_key"))


class Accompaniment(Base):
    """One accompaniment session logged by an advisor. ``id`` is the record number shown to users."""

    __tablename__ = "accompaniments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"))
    advisor: Mapped[str] = mapped_column(String(USER_ID))
    partner: Mapped[str] = mapped_column(String(SLUG))
    date: Mapped[dt.date] = mapped_column(Date)
    phase: Mapped[str] = mapped_column(String(KEY))
    modality: Mapped[str] = mapped_column(String(KEY))
    duration_minutes: Mapped[int] = mapped_column(Integer)
    note: Mapped[str | None] = mapped_column(String(280))
    source_event_id: Mapped[str | None] = mapped_column(String(255))
    cancelled: Mapped[bool] = mapped_column(Boolean, default=False)
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    cancelled_by: Mapped[str | None] = mapped_column(String(USER_ID))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    updated_by: Mapped[str | None] = mapped_column(String(USER_ID))

    __table_args__ = (
        Index("ix_accompaniments_partner_date", "partner", "date"),
        Index("ix_accompaniments_project", "project_id"),
        Index("ix_accompaniments_advisor", "advisor"),
        Index("ix_accompaniments_source_event", "source_event_id"),
        # covering indexes for the report (migration 0005)
        Index("ix_accompaniments_report", "partner", "date", "phase", "modality", "cancelled", "project_id",
              "duration_minutes"),
        Index("ix_accompaniments_history", "project_id", "partner", "cancelled", "date", "phase",
              "duration_minutes"),
        # SQLite only (migration 0006): the report's month cube, in GROUP BY order — the month as the
        # report computes it (services.reports.month_key), so the database streams the groups instead of
        # sorting every record. PostgreSQL sorts fast enough and its month expression is not immutable.
        only_on("sqlite", Index("ix_accompaniments_month_cube", text("substr(date, 1, 7)"), "partner", "phase",
                                "modality", "cancelled", "date", "duration_minutes")),
        # the report's distinct projects per phase (migration 0007): read from the index alone, phase by phase
        Index("ix_accompaniments_phase_projects", "phase", "project_id", "cancelled", "date", "partner"),
    )


class AccompanimentTheme(Base):
    """The themes of an accompaniment, one row each (so reports can count them in SQL)."""

    __tablename__ = "accompaniment_themes"

    accompaniment_id: Mapped[int] = mapped_column(ForeignKey("accompaniments.id", ondelete="CASCADE"),
                                                  primary_key=True)
    theme: Mapped[str] = mapped_column(String(KEY), primary_key=True)

    __table_args__ = (Index("ix_accompaniment_themes_theme", "theme"),)


class ProjectOutcome(Base):
    """How a project ended up (one current outcome per project; recording again replaces it)."""

    __tablename__ = "project_outcomes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"), unique=True)
    outcome: Mapped[str] = mapped_column(String(KEY))         # creation | abandon | reorientation | report
    date: Mapped[dt.date] = mapped_column(Date)
    legal_form: Mapped[str | None] = mapped_column(String(KEY))  # actual legal form
    jobs_fte: Mapped[Decimal | None] = mapped_column(Numeric(6, 2))
    partner: Mapped[str] = mapped_column(String(SLUG))         # recording partner
    recorded_by: Mapped[str] = mapped_column(String(USER_ID))
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime())

    __table_args__ = (Index("ix_project_outcomes_date", "date"),)


class Referral(Base):
    """A project proposed by one partner to another, accepted or refused by the receiving partner."""

    __tablename__ = "referrals"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"))
    from_partner: Mapped[str] = mapped_column(String(SLUG))
    to_partner: Mapped[str] = mapped_column(String(SLUG))
    date: Mapped[dt.date] = mapped_column(Date)
    note: Mapped[str | None] = mapped_column(String(280))
    status: Mapped[str] = mapped_column(String(KEY), default="proposee")  # proposee | acceptee | refusee
    created_by: Mapped[str] = mapped_column(String(USER_ID))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    decided_by: Mapped[str | None] = mapped_column(String(USER_ID))
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    reason: Mapped[str | None] = mapped_column(String(280))   # given when refused

    __table_args__ = (
        Index("ix_referrals_project", "project_id"),
        Index("ix_referrals_to_status", "to_partner", "status"),
        Index("ix_referrals_date", "date"),
    )
