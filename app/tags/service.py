"""Scanning: a scanned code is read and its signature checked, the asset found, the scan recorded (in the
module's ledger where there is one) and, when the station or the request names an action, that lifecycle
transition taken through the engine — all in one transaction, or nothing."""

from __future__ import annotations

import datetime as dt
import io
import re
import time
from typing import Any

import msgspec
import structlog
from sqlalchemy import insert, select

from app.core import idempotency
from app.core.auth.domain import Principal
from app.core.config import Settings
from app.core.db import UnitOfWork, utcnow
from app.core.definitions import Lifecycle
from app.core.errors import InvalidInput, NotFound, RuleRefused
from app.core.ledger import service as ledger
from app.core.lifecycle import service as transitions
from app.core.lifecycle.schemas import TransitionRequest
from app.factory.models import Module, Part, Station
from app.factory.repository import FactoryRepository
from app.logistics.models import Crate
from app.sites.models import Site
from app.tags import payload
from app.tags.models import Scan
from app.tags.payload import AI, Identifier, Keyring, TagRefused
from app.tags.schemas import AssetRead, EventRef, ScanIn, ScanRead, TagRead

log = structlog.get_logger("afm.scans")

_TYPED_SERIAL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]{1,63}$")
CLOCK_SKEW = dt.timedelta(minutes=5)  # a handheld's clock may run a little ahead; more than this is refused
MAX_PHOTO_PIXELS = 50_000_000  # a 48 MP phone photo; beyond that is not a photo of a label


class TagInvalid(RuleRefused):
    slug = "tag-refused"
    title = "The scanned code is not a genuine afm tag"


class TagSetup(msgspec.Struct, frozen=True):
    """What writing and reading tags needs, from the settings: keys, resolver addresses, company prefix."""

    keyring: Keyring
    resolver: str
    resolvers: tuple[str, ...]
    company_prefix: str

    @classmethod
    def from_settings(cls, settings: Settings) -> TagSetup:
        keys = {k: v.encode() for k, v in settings.tag_old_keys.items()}
        keys[settings.tag_key_id] = settings.tag_key.encode()
        resolver = payload.normalise_resolver(settings.resolver)
        accepted = (resolver, *(payload.normalise_resolver(r) for r in settings.tag_resolvers_accepted))
        return cls(
            keyring=Keyring(keys=keys, active=settings.tag_key_id, retired=frozenset(settings.tag_keys_retired)),
            resolver=resolver,
            resolvers=accepted,
            company_prefix=settings.gs1_company_prefix,
        )

    def for_serial(self, serial: str) -> Identifier:
        return payload.giai(self.company_prefix, serial)

    def tag(self, identifier: Identifier) -> TagRead:
        return TagRead(
            uri=payload.uri(identifier, self.keyring, self.resolver),
            identifier=identifier.hri,
            element_string=identifier.element_string,
            key_id=self.keyring.active,
        )

    def read(self, code: str) -> payload.ScannedTag:
        try:
            scanned = payload.parse(code, self.resolvers)
            payload.verify(scanned, self.keyring)
        except TagRefused as exc:
            log.warning("tag refused", reason=exc.reason, code=code[:120])  # the security log: forgeries show here
            raise TagInvalid(exc.reason) from None
        return scanned

    def serial_from_scan(self, code: str) -> str:
        """A serial typed by hand (a damaged tag) as it is; a scanned tag read, checked and resolved to the
        serial of the module or part it names."""
        text = code.strip(payload.WEDGE_ARTEFACTS)
        if _TYPED_SERIAL.match(text):
            return text
        identifier = self.read(text).identifier
        if identifier.ai is not AI.GIAI:
            raise RuleRefused(f"{identifier.hri} is a {identifier.kind.upper()} tag; scan the module's or part's tag")
        return self.reference(identifier)

    def reference(self, identifier: Identifier) -> str:
        """The serial a GIAI names under our company prefix."""
        if not identifier.value.startswith(self.company_prefix):
            raise NotFound(
                f"GIAI {identifier.hri} is not under this service's company prefix {self.company_prefix}",
                identifier=identifier.hri,
            )
        return identifier.value[len(self.company_prefix) :]


# --- resolving what a tag names -------------------------------------------------------------------


class _Asset(msgspec.Struct):
    kind: str
    serial: str
    description: str
    module: Module | None = None  # the module whose ledger records the scan
    part: Part | None = None


async def _resolve(uow: UnitOfWork, setup: TagSetup, identifier: Identifier) -> _Asset:
    """The asset a genuine tag names; the module row locked when the scan will write to its ledger."""
    repo = FactoryRepository(uow.session)
    if identifier.ai is AI.GIAI:
        serial = setup.reference(identifier)
        module = await repo.module(serial, for_update=True)
        if module is not None:
            return _Asset("module", serial, f"{module.spec.name} ({module.spec.code})", module=module)
        part = await repo.part(serial)
        if part is not None:
            owner = await repo.module(part.module.serial, for_update=True) if part.module else None
            return _Asset("part", serial, f"{part.kind.upper()} {part.part_number}", module=owner, part=part)
        raise NotFound(f"no module or part with serial {serial!r} ({identifier.hri})", identifier=identifier.hri)
    if identifier.ai is AI.GRAI:
        crate = await uow.session.scalar(select(Crate).where(Crate.grai == identifier.value))
        if crate is None:
            raise NotFound(f"no crate with GRAI {identifier.hri} is registered", identifier=identifier.hri)
        return _Asset("crate", crate.serial, crate.description or f"crate {crate.serial}")
    from app.logistics.models import Shipment, ShipmentPackage  # packages belong to shipments

    row = (
        await uow.session.execute(
            select(ShipmentPackage, Shipment.ref)
            .join(Shipment, Shipment.id == ShipmentPackage.shipment_id)
            .where(ShipmentPackage.sscc == identifier.value)
        )
    ).first()
    if row is None:
        raise NotFound(
            f"no package with SSCC {identifier.hri} is known: packages are registered when shipments are planned",
            identifier=identifier.hri,
        )
    package, ref = row
    described = f"package {package.number} of {ref}: {', '.join(package.contents)}"
    owner = None
    if package.module_id is not None:  # a module shipped as its own package: its ledger records the scan
        owner = await repo.module(package.contents[0], for_update=True)
    return _Asset("package", identifier.value, described, module=owner)


def _asset_read(asset: _Asset, identifier: Identifier, lifecycle: Lifecycle) -> AssetRead:
    state = asset.module.state if asset.module is not None and asset.kind == "module" else None
    return AssetRead(
        kind=asset.kind,  # type: ignore[arg-type]
        identifier=identifier.hri,
        serial=asset.serial,
        description=asset.description,
        state=state,
        state_label=lifecycle.state(state).label if state else None,
        module=asset.module.serial if asset.kind in ("part", "package") and asset.module is not None else None,
    )


# --- recording a scan -----------------------------------------------------------------------------


async def record_scan(
    uow: UnitOfWork,
    setup: TagSetup,
    lifecycle: Lifecycle,
    actor: Principal,
    scan: ScanIn,
    *,
    via: str = "api",
    idempotency_key: str | None = None,
    photo_sha256: str = "",
) -> ScanRead:
    """One scan, in the caller's write unit of work. Refusals raise and leave nothing behind."""
    received_at = utcnow()
    scanned_at = _scanned_at(scan.scanned_at, received_at)
    tag = setup.read(scan.code)
    identifier = tag.identifier
    asset = await _resolve(uow, setup, identifier)  # locks the module first, so a racing replay waits here
    fingerprint = ""
    if idempotency_key is not None:
        idempotency_key = idempotency.check_key(idempotency_key)
        fingerprint = idempotency.request_fingerprint("POST", "/scans", _fingerprint_body(scan))
        stored = await idempotency.recall(uow, actor.username, idempotency_key, fingerprint)
        if stored is not None:
            return msgspec.convert(stored, ScanRead)
    station = await _station(uow, scan.station)
    site = await _site(uow, scan.site)
    # A station's own action moves the modules scanned there; parts and crates scanned there are recorded.
    default = station.scan_action if station is not None and asset.kind == "module" else ""
    action = scan.action or default or None
    place = scan.station or scan.site or ""
    if action and asset.kind != "module":
        raise RuleRefused(
            f"action {action!r} moves a module; {identifier.hri} is a {asset.kind}",
            action=action,
            asset=asset.kind,
        )
    recorded: list[str] = []
    from_state = to_state = None
    event_seq = None
    if asset.module is not None:
        event = await ledger.append(
            uow,
            asset.module,
            "scan.recorded",
            actor=actor.username,
            role=actor.role,
            place=place or asset.module.factory.code,
            payload={
                "identifier": identifier.hri,
                "asset": asset.kind,
                "serial": asset.serial,
                "key_id": tag.key_id,
                "via": via,
                "station": scan.station,
                "site": scan.site,
                "action": action,
                "scanned_at": scanned_at.isoformat(),
                "received_at": received_at.isoformat(),
                **({"photo_sha256": photo_sha256} if photo_sha256 else {}),
            },
        )
        event_seq = event.seq
        recorded.append("scan.recorded")
    if action and asset.module is not None:
        from_state = asset.module.state
        moved = await transitions.transition(
            uow,
            lifecycle,
            asset.serial,
            TransitionRequest(transition=action, payload=scan.payload),
            actor,
            place=place,
        )
        to_state = moved.state
        recorded.append(f"lifecycle.{action}")
    scan_id = None
    if asset.module is None:  # no ledger to hold the fact: the scans table does
        fields: dict[str, Any] = {
            "code": scan.code[:512],
            "ai": identifier.ai.value,
            "identifier": identifier.value,
            "key_id": tag.key_id,
            "asset_kind": asset.kind,
            "asset": asset.serial,
            "action": action or "",
            "station": scan.station or "",
            "site": scan.site or "",
            "actor": actor.username,
            "via": via,
            "scanned_at": scanned_at,
            "received_at": received_at,
            "photo_sha256": photo_sha256,
        }
        scan_id = await uow.session.scalar(insert(Scan).values(**fields).returning(Scan.id))
    result = ScanRead(
        id=scan_id,
        event=EventRef(module=asset.module.serial, seq=event_seq) if asset.module and event_seq else None,
        asset=_asset_read(asset, identifier, lifecycle),
        recorded=recorded,
        message=_message(asset, identifier, action, from_state, to_state, lifecycle, station, site),
        transition=action,
        from_state=from_state,
        to_state=to_state,
        station=scan.station,
        site=scan.site,
        via=via,
        scanned_at=scanned_at,
        received_at=received_at,
        key_id=tag.key_id,
        photo_sha256=photo_sha256 or None,
    )
    if idempotency_key is not None:
        idempotency.remember(uow, actor.username, idempotency_key, fingerprint, 201, result)
    return result


async def recall(uow: UnitOfWork, actor: Principal, scan: ScanIn, key: str) -> ScanRead | None:
    """After losing a race on the same Idempotency-Key: the winner's stored answer."""
    fingerprint = idempotency.request_fingerprint("POST", "/scans", _fingerprint_body(scan))
    stored = await idempotency.recall(uow, actor.username, idempotency.check_key(key), fingerprint)
    return msgspec.convert(stored, ScanRead) if stored is not None else None


def _fingerprint_body(scan: ScanIn) -> dict[str, Any]:
    body = msgspec.to_builtins(scan)
    body.pop("id", None)  # a batch item's own key is the idempotency key, not part of the request
    return body


def _scanned_at(claimed: dt.datetime | None, received_at: dt.datetime) -> dt.datetime:
    if claimed is None:
        return received_at
    if claimed.tzinfo is None:
        raise InvalidInput("scanned_at needs a time zone (e.g. 2026-11-26T08:00:00Z)")
    if claimed - received_at > CLOCK_SKEW:
        raise InvalidInput(f"scanned_at {claimed.isoformat()} is in the future; check the scanner's clock")
    return claimed.astimezone(dt.UTC)


class StationFacts(msgspec.Struct, frozen=True):
    code: str
    name: str
    scan_action: str


_STATION_TTL_S = 30.0  # stations change rarely; every worker sees a change within this time
_stations: dict[str, tuple[float, StationFacts]] = {}


async def _station(uow: UnitOfWork, code: str | None) -> StationFacts | None:
    """The station a scan names. Held briefly per worker: a scan at a station is the hot path."""
    if code is None:
        return None
    now = time.monotonic()
    cached = _stations.get(code)
    if cached is not None and cached[0] > now:
        return cached[1]
    row = (await uow.session.execute(select(Station.name, Station.scan_action).where(Station.code == code))).first()
    if row is None:
        raise NotFound(f"no station {code!r}", station=code)
    facts = StationFacts(code=code, name=row.name, scan_action=row.scan_action)
    _stations[code] = (now + _STATION_TTL_S, facts)
    return facts


async def _site(uow: UnitOfWork, code: str | None) -> Site | None:
    if code is None:
        return None
    site = await uow.session.scalar(select(Site).where(Site.code == code))
    if site is None:
        raise NotFound(f"no site {code!r}", site=code)
    return site


def _message(
    asset: _Asset,
    identifier: Identifier,
    action: str | None,
    from_state: str | None,
    to_state: str | None,
    lifecycle: Lifecycle,
    station: StationFacts | None,
    site: Site | None,
) -> str:
    where = f" at {station.name}" if station else f" at {site.name}" if site else ""
    if action and from_state and to_state:
        return (
            f"{asset.kind.capitalize()} {asset.serial}: {lifecycle.state(from_state).label} → "
            f"{lifecycle.state(to_state).label}{where}"
        )
    if asset.kind == "part":
        inside = f", in module {asset.module.serial}" if asset.module is not None else ", not installed"
        return f"Part {asset.serial} ({asset.description}){inside}: scan recorded{where}"
    if asset.kind == "module" and asset.module is not None:
        return f"Module {asset.serial} ({lifecycle.state(asset.module.state).label}): scan recorded{where}"
    return f"{asset.kind.capitalize()} {asset.serial} ({identifier.hri}): scan recorded{where}"


# --- photos ---------------------------------------------------------------------------------------


def decode_photo(image: bytes, media_type: str, *, max_bytes: int) -> list[str]:
    """Every QR code's text in a phone photo (any rotation), read with zxing-cpp. Nothing is kept."""
    import zxingcpp
    from PIL import Image, ImageOps, UnidentifiedImageError

    from app.core.images import check_photo

    check_photo(image, media_type, max_bytes=max_bytes, max_pixels=MAX_PHOTO_PIXELS)  # from the header: no bomb
    try:
        picture = Image.open(io.BytesIO(image))
        if picture.format not in ("JPEG", "PNG"):
            raise InvalidInput(f"the photo is {picture.format}, not JPEG or PNG")
        picture = ImageOps.exif_transpose(picture).convert("L")
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise InvalidInput(f"the photo cannot be read as {media_type}: {exc}") from None
    found = zxingcpp.read_barcodes(picture, formats=zxingcpp.BarcodeFormat.QRCode)
    if not found and max(picture.size) > 2400:
        # A QR code filling much of a large, soft photo can be easier to find at a smaller scale.
        picture.thumbnail((2000, 2000))
        found = zxingcpp.read_barcodes(picture, formats=zxingcpp.BarcodeFormat.QRCode)
    return list(dict.fromkeys(b.text for b in found if b.valid))


def pick_tag(setup: TagSetup, texts: list[str]) -> str:
    """The one genuine tag in a photo; refused when there is none or more than one."""
    if not texts:
        raise RuleRefused("no QR code was found in the photo: hold the phone closer and keep the label flat")
    genuine: list[str] = []
    reasons: list[str] = []
    for text in texts:
        try:
            setup.read(text)
            genuine.append(text)
        except TagInvalid as exc:
            reasons.append(exc.detail)
    if not genuine:
        raise TagInvalid(reasons[0], codes=len(texts))
    if len(genuine) > 1:
        raise RuleRefused(f"the photo shows {len(genuine)} tags; photograph one label at a time", codes=len(genuine))
    return genuine[0]
