from __future__ import annotations

import datetime as dt

from sqlalchemy import Float, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import Base, UTCDateTime, utcnow


class Site(Base):
    """A place where modules are installed and run."""

    __tablename__ = "sites"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(16), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    operator: Mapped[str] = mapped_column(String(200), default="")
    country: Mapped[str] = mapped_column(String(2), index=True)
    city: Mapped[str] = mapped_column(String(100), default="")
    lat: Mapped[float] = mapped_column(Float)
    lon: Mapped[float] = mapped_column(Float)
    power_kw: Mapped[float] = mapped_column(Float)
    module_slots: Mapped[int] = mapped_column(Integer)
    renewable_source: Mapped[str] = mapped_column(String(16))
    cooling: Mapped[str] = mapped_column(String(16))
    security_level: Mapped[str] = mapped_column(String(16), index=True)
    unlocode: Mapped[str] = mapped_column(String(5), default="")
    airport: Mapped[str] = mapped_column(String(3), default="")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
