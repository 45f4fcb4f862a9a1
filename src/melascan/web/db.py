"""History storage with SQLAlchemy 2.0: analyses, their images, and named lesions.

Every row carries ``owner``, the SHA-256 of the browser's anonymous token (see
``owner.py``), and every query in the app filters on it: one browser never sees
another's rows. Images (the uploaded picture re-encoded without metadata, a
thumbnail and the overlays) live in ``analysis_images`` as bytes, so deleting an
analysis deletes everything it stored and the database works the same on SQLite
(default, a file in the instance folder) and PostgreSQL (``DATABASE_URL``).
"""

from __future__ import annotations

import sqlite3
import secrets
from datetime import datetime, timezone
from typing import Any, Optional

from flask import Flask, current_app, g
from sqlalchemy import JSON, DateTime, Float, ForeignKey, LargeBinary, String, create_engine, event, func, select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.types import TypeDecorator
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, relationship, sessionmaker

from melascan.web.errors import Conflict
from melascan.web.names import LESION_NAME_MAX, clean_name

#: Told when a lesion disappears under an upload (deleted by a concurrent request).
LESION_GONE = "error.conflict.lesion_gone"


def new_id() -> str:
    """An unguessable public id for an analysis or lesion (also used in URLs)."""
    return secrets.token_urlsafe(12)


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class UTCDateTime(TypeDecorator):
    """A timezone-aware UTC datetime on every backend (SQLite stores no zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect) -> datetime | None:
        if value is not None and value.tzinfo is not None:
            value = value.astimezone(timezone.utc)
        return value

    def process_result_value(self, value: datetime | None, dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        return value


class Base(DeclarativeBase):
    pass


class Lesion(Base):
    """A lesion the person named, grouping analyses of the same spot over time."""

    __tablename__ = "lesions"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    owner: Mapped[str] = mapped_column(String(64), index=True)
    name: Mapped[str] = mapped_column(String(80))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    analyses: Mapped[list["Analysis"]] = relationship(
        back_populates="lesion", order_by="Analysis.created_at"
    )


class Analysis(Base):
    """One analysed image: the full analysis JSON plus a few columns for listing."""

    __tablename__ = "analyses"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    owner: Mapped[str] = mapped_column(String(64), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
    filename: Mapped[str] = mapped_column(String(255))
    lesion_id: Mapped[Optional[str]] = mapped_column(
        ForeignKey("lesions.id", ondelete="SET NULL"), nullable=True, index=True
    )
    probability: Mapped[float] = mapped_column(Float)
    risk_level: Mapped[str] = mapped_column(String(16))
    result: Mapped[dict[str, Any]] = mapped_column(JSON)

    lesion: Mapped[Optional[Lesion]] = relationship(back_populates="analyses")
    images: Mapped[list["StoredImage"]] = relationship(
        back_populates="analysis", cascade="all, delete-orphan", passive_deletes=True
    )


class StoredImage(Base):
    """An image belonging to an analysis: ``original``, ``thumbnail`` or an overlay."""

    __tablename__ = "analysis_images"

    analysis_id: Mapped[str] = mapped_column(
        ForeignKey("analyses.id", ondelete="CASCADE"), primary_key=True
    )
    kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    mime: Mapped[str] = mapped_column(String(32))
    data: Mapped[bytes] = mapped_column(LargeBinary)

    analysis: Mapped[Analysis] = relationship(back_populates="images")


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    """Foreign keys on; write-ahead log with ``synchronous=NORMAL`` (a commit stays durable
    across a crashed process; only a power loss can drop the last commits) makes a save
    ~10x cheaper than the default rollback journal (docs/benchmarks.md)."""
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    try:
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
    except sqlite3.DatabaseError:  # a read-only database keeps its journal mode
        pass
    cursor.close()


def make_engine(url: str) -> Engine:
    """An engine for ``url``; SQLite gets foreign keys, WAL and cross-thread use allowed."""
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, pool_pre_ping=True)


def init_app(app: Flask) -> None:
    """Create the engine and tables, and close the request's session on teardown."""
    engine = make_engine(app.config["DATABASE_URL"])
    Base.metadata.create_all(engine)
    app.extensions["melascan_db"] = sessionmaker(engine, expire_on_commit=False)

    @app.teardown_appcontext
    def _close_session(_exc: BaseException | None) -> None:
        session = g.pop("db_session", None)
        if session is not None:
            session.close()


def session() -> Session:
    """The current request's database session."""
    if "db_session" not in g:
        g.db_session = current_app.extensions["melascan_db"]()
    return g.db_session


# --- queries, always scoped to one owner -------------------------------------------------


def get_analysis(owner: str, analysis_id: str) -> Analysis | None:
    return session().scalar(select(Analysis).where(Analysis.id == analysis_id, Analysis.owner == owner))


def list_analyses(owner: str, limit: int | None = None, offset: int = 0) -> list[Analysis]:
    """Newest first; ``limit``/``offset`` select one page."""
    stmt = (select(Analysis).where(Analysis.owner == owner)
            .order_by(Analysis.created_at.desc(), Analysis.id).limit(limit).offset(offset))
    return list(session().scalars(stmt))


def get_lesion(owner: str, lesion_id: str) -> Lesion | None:
    return session().scalar(select(Lesion).where(Lesion.id == lesion_id, Lesion.owner == owner))


def list_lesions(owner: str) -> list[Lesion]:
    stmt = select(Lesion).where(Lesion.owner == owner).order_by(Lesion.name)
    return list(session().scalars(stmt))


def get_image(owner: str, analysis_id: str, kind: str) -> StoredImage | None:
    stmt = (
        select(StoredImage)
        .join(Analysis)
        .where(StoredImage.analysis_id == analysis_id, StoredImage.kind == kind, Analysis.owner == owner)
    )
    return session().scalar(stmt)


def count_analyses(owner: str) -> int:
    return session().scalar(select(func.count()).select_from(Analysis).where(Analysis.owner == owner)) or 0


def lock_lesion(owner: str, lesion_id: str) -> Lesion | None:
    """The lesion, locked until commit (``SELECT ... FOR UPDATE``; SQLite serialises
    writers itself), so that an upload into it and the deletion of its last analysis
    cannot interleave."""
    stmt = select(Lesion).where(Lesion.id == lesion_id, Lesion.owner == owner).with_for_update()
    return session().scalar(stmt.execution_options(populate_existing=True))


def save_analysis(
    owner: str,
    filename: str,
    result: dict[str, Any],
    images: dict[str, tuple[str, bytes]],
    lesion: Lesion | None = None,
) -> Analysis:
    """Store one analysis and its images (``kind -> (mime, bytes)``) and commit.

    ``Conflict`` (nothing stored) if ``lesion`` was deleted meanwhile.
    """
    db = session()
    if lesion is not None and lock_lesion(owner, lesion.id) is None:
        db.rollback()
        raise Conflict(LESION_GONE)
    row = Analysis(
        owner=owner,
        filename=filename[:255],
        probability=float(result["classification"]["probability"]),
        risk_level=str(result["risk"]["level"]),
        result=result,
        lesion=lesion,
        images=[StoredImage(kind=k, mime=m, data=d) for k, (m, d) in images.items()],
    )
    db.add(row)
    try:
        db.commit()
    except IntegrityError:  # SQLite: the lesion went between the check and the insert
        db.rollback()
        if lesion is None:
            raise
        raise Conflict(LESION_GONE) from None
    return row


def drop_if_empty(lesion: Lesion) -> None:
    """Delete ``lesion`` (locked first) if no analysis is left in it; the caller commits."""
    db = session()
    if lock_lesion(lesion.owner, lesion.id) is None:
        return
    db.flush()
    left = db.scalar(select(func.count()).select_from(Analysis).where(Analysis.lesion_id == lesion.id))
    if not left:
        db.delete(lesion)


def delete_analysis(row: Analysis) -> None:
    """Delete one analysis with its images; a lesion left without analyses goes too."""
    db = session()
    lesion = row.lesion
    if lesion is not None:
        lock_lesion(lesion.owner, lesion.id)  # before the row: same lock order as uploads
    db.delete(row)
    if lesion is not None:
        drop_if_empty(lesion)
    db.commit()


def delete_all(owner: str) -> int:
    """Delete every analysis and lesion of ``owner``; returns the number of analyses deleted."""
    db = session()
    rows = list_analyses(owner)
    for row in rows:
        db.delete(row)
    for lesion in list_lesions(owner):
        db.delete(lesion)
    db.commit()
    return len(rows)


def create_lesion(owner: str, name: str) -> Lesion:
    lesion = Lesion(owner=owner, name=clean_name(name, LESION_NAME_MAX))
    session().add(lesion)
    session().flush()
    return lesion
