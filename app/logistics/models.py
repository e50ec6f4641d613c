from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, Boolean, Date, Float, ForeignKey, Integer, LargeBinary, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.core.db import Base, UTCDateTime, utcnow
from app.sites.models import Site


class Crate(Base):
    """A returnable shipping crate or skid, tagged with a GRAI (AI 8003) and reused across shipments."""

    __tablename__ = "crates"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    serial: Mapped[str] = mapped_column(String(16), unique=True)
    asset_type: Mapped[str] = mapped_column(String(6))
    grai: Mapped[str] = mapped_column(String(30), unique=True)
    description: Mapped[str] = mapped_column(String(200), default="")
    length_mm: Mapped[int] = mapped_column(Integer)
    width_mm: Mapped[int] = mapped_column(Integer)
    height_mm: Mapped[int] = mapped_column(Integer)
    tare_kg: Mapped[float] = mapped_column(Float)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Shipment(Base):
    """Modules (and crates) moving from an origin to a destination site along planned legs."""

    __tablename__ = "shipments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    ref: Mapped[str] = mapped_column(String(24), unique=True)
    status: Mapped[str] = mapped_column(String(16), index=True)  # planned, in_transit, delivered
    origin_code: Mapped[str] = mapped_column(String(64))
    origin_name: Mapped[str] = mapped_column(String(200))
    origin_country: Mapped[str] = mapped_column(String(2))
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id", ondelete="RESTRICT"), index=True)
    incoterm: Mapped[str] = mapped_column(String(3))
    incoterm_place: Mapped[str] = mapped_column(String(100))
    consignor: Mapped[dict[str, Any]] = mapped_column(JSON)
    consignee: Mapped[dict[str, Any]] = mapped_column(JSON)
    notify: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    currency: Mapped[str] = mapped_column(String(3), default="USD")
    route: Mapped[dict[str, Any]] = mapped_column(JSON)  # the planned route as chosen: totals, geometry, export
    planned_arrival: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    eta: Mapped[dt.datetime] = mapped_column(UTCDateTime(), index=True)
    late_hours: Mapped[float] = mapped_column(Float, default=0.0)
    flags: Mapped[list[str]] = mapped_column(JSON, default=list)  # seal mismatches and other alerts
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)

    site: Mapped[Site] = relationship(lazy="raise")


class ShipmentLeg(Base):
    __tablename__ = "shipment_legs"
    __table_args__ = (UniqueConstraint("shipment_id", "seq"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    shipment_id: Mapped[int] = mapped_column(ForeignKey("shipments.id", ondelete="CASCADE"), index=True)
    seq: Mapped[int] = mapped_column(Integer)
    mode: Mapped[str] = mapped_column(String(8))
    carrier: Mapped[str] = mapped_column(String(100), default="")
    origin_code: Mapped[str] = mapped_column(String(64))
    origin_name: Mapped[str] = mapped_column(String(200))
    destination_code: Mapped[str] = mapped_column(String(64))
    destination_name: Mapped[str] = mapped_column(String(200))
    distance_km: Mapped[float] = mapped_column(Float)
    planned_departure: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    planned_arrival: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    actual_departure: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    actual_arrival: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())


class ShipmentContainer(Base):
    __tablename__ = "shipment_containers"
    __table_args__ = (UniqueConstraint("shipment_id", "number"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    shipment_id: Mapped[int] = mapped_column(ForeignKey("shipments.id", ondelete="CASCADE"), index=True)
    number: Mapped[str] = mapped_column(String(11))  # ISO 6346, check digit verified
    seal: Mapped[str] = mapped_column(String(32))
    size_type: Mapped[str] = mapped_column(String(4), default="45G1")


class ShipmentPackage(Base):
    """One logistic unit (SSCC): a module travelling as its own container, or a crate."""

    __tablename__ = "shipment_packages"
    __table_args__ = (UniqueConstraint("shipment_id", "number"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    shipment_id: Mapped[int] = mapped_column(ForeignKey("shipments.id", ondelete="CASCADE"), index=True)
    number: Mapped[int] = mapped_column(Integer)
    sscc: Mapped[str] = mapped_column(String(18), unique=True)
    kind: Mapped[str] = mapped_column(String(60))
    module_id: Mapped[int | None] = mapped_column(ForeignKey("modules.id", ondelete="RESTRICT"), index=True)
    crate_id: Mapped[int | None] = mapped_column(ForeignKey("crates.id", ondelete="RESTRICT"), index=True)
    container: Mapped[str] = mapped_column(String(11), default="")
    contents: Mapped[list[str]] = mapped_column(JSON, default=list)
    net_kg: Mapped[float] = mapped_column(Float)
    gross_kg: Mapped[float] = mapped_column(Float)
    length_mm: Mapped[int] = mapped_column(Integer)
    width_mm: Mapped[int] = mapped_column(Integer)
    height_mm: Mapped[int] = mapped_column(Integer)
    unit_value: Mapped[float] = mapped_column(Float, default=0.0)  # declared customs value


class CustodyHandoff(Base):
    """A hand-off scanned by the receiving party: who, for whom, where, when, and the seals checked."""

    __tablename__ = "custody_handoffs"
    __table_args__ = (UniqueConstraint("shipment_id", "seq"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    shipment_id: Mapped[int] = mapped_column(ForeignKey("shipments.id", ondelete="CASCADE"), index=True)
    seq: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(16))  # pickup, handover, delivery
    party: Mapped[str] = mapped_column(String(100))
    organisation: Mapped[str] = mapped_column(String(200))
    place: Mapped[str] = mapped_column(String(100))
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    recorded_by: Mapped[str] = mapped_column(String(64))
    leg_seq: Mapped[int | None] = mapped_column(Integer)
    scanned: Mapped[list[str]] = mapped_column(JSON, default=list)  # serials read from the scanned tags
    seals: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)  # container, expected, found, ok
    seal_ok: Mapped[bool] = mapped_column(Boolean, default=True)
    note: Mapped[str] = mapped_column(String(500), default="")


class ShipmentDocument(Base):
    """One issued version of a shipping document; re-issuing adds a version, old ones stay."""

    __tablename__ = "shipment_documents"
    __table_args__ = (UniqueConstraint("shipment_id", "kind", "version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    shipment_id: Mapped[int] = mapped_column(ForeignKey("shipments.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(24))
    number: Mapped[str] = mapped_column(String(40))
    version: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    serials: Mapped[list[str]] = mapped_column(JSON, default=list)  # the modules it lists
    pdf: Mapped[bytes] = mapped_column(LargeBinary)
    issued_by: Mapped[str] = mapped_column(String(64))
    issued_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class ExportLicence(Base):
    """An export licence on record: it clears modules of its ECCN to its destination countries."""

    __tablename__ = "export_licences"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    number: Mapped[str] = mapped_column(String(40), unique=True)
    eccn: Mapped[str] = mapped_column(String(16))
    countries: Mapped[list[str]] = mapped_column(JSON)
    consignee: Mapped[str] = mapped_column(String(200))
    valid_until: Mapped[dt.date] = mapped_column(Date)
    note: Mapped[str] = mapped_column(String(500), default="")
    recorded_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
