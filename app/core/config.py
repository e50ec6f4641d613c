"""Settings: defaults < afm.toml < AFM_* environment, as one frozen msgspec Struct.

Secrets (the token and tag signing keys) never come from the repository: they come from the
environment or from a file generated on first use under var/ with 0600 permissions.
"""

from __future__ import annotations

import json
import os
import secrets
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

import msgspec

PROJECT_ROOT = Path(__file__).resolve().parents[2]

Port = Annotated[int, msgspec.Meta(ge=1, le=65535)]
Positive = Annotated[int, msgspec.Meta(ge=1)]


class Settings(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    database_url: str = ""
    host: str = "127.0.0.1"
    port: Port = 8000
    workers: Annotated[int, msgspec.Meta(ge=1, le=64)] = 1
    var_dir: str = str(PROJECT_ROOT / "var")
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_format: Literal["console", "json"] = "console"
    db_pool_size: Positive = 10
    db_echo: bool = False
    api_token_ttl_days: Positive = 90
    session_ttl_hours: Positive = 12
    login_max_failures: Positive = 10
    login_window_s: Positive = 300
    # Account lockout: this many failures for one username from any clients within the window lock it
    # for login_lockout_s (an admin can unlock sooner).
    login_lockout_failures: Positive = 20
    login_lockout_window_s: Positive = 900
    login_lockout_s: Positive = 900
    behind_proxy: bool = False  # a TLS-terminating proxy sets X-Forwarded-For/-Proto: trust them
    cookie_secure: bool = False
    max_body_bytes: Positive = 10 * 1024 * 1024
    max_upload_bytes: Positive = 4 * 1024**3  # streamed evidence uploads (telemetry), kept on disk
    cache_dir: str = ""  # rebuildable caches (the route network); default var/cache
    routes_preload: bool = False  # load the route network at start (afm serve sets it) rather than on first use
    burn_in_rules: str = ""  # acceptance rules file; default workflows/burn-in-acceptance.toml
    max_photo_bytes: Positive = 8 * 1024 * 1024  # a phone camera's JPEG; decoded in memory, never kept
    # Tags: GS1 Digital Link URIs under this resolver (default: this server), GIAIs under this prefix.
    tag_resolver: str = ""
    tag_resolvers_accepted: list[str] = []  # earlier resolver addresses whose printed tags still scan
    gs1_company_prefix: Annotated[str, msgspec.Meta(pattern=r"^\d{6,12}$")] = "0614141"  # GS1's example prefix
    secret_key: str = ""
    tag_key: str = ""  # the secret new tags are signed with …
    tag_key_id: Annotated[str, msgspec.Meta(pattern=r"^[A-Z][A-Z0-9]{0,7}$")] = "K1"  # … and its id
    tag_old_keys: dict[str, str] = {}  # earlier keys by id: their tags still verify
    tag_keys_retired: list[str] = []  # key ids whose tags are refused (lost or leaked keys)
    # Integration: the outbox dispatcher (one leader among the workers) feeds webhooks and NATS.
    dispatcher: bool = True  # run the dispatcher in this process (it leads only while it holds the lease)
    dispatch_poll_s: Annotated[float, msgspec.Meta(gt=0, le=60)] = 0.1
    outbox_retention_days: Positive = 7  # delivered events stay this long for the stream's Last-Event-ID
    nats_url: str = ""  # e.g. nats://127.0.0.1:4222: publish every event to JetStream (afm.events.<area>.<serial>)
    webhook_timeout_s: Annotated[float, msgspec.Meta(gt=0, le=120)] = 10.0
    webhook_backoff_base_s: Annotated[float, msgspec.Meta(gt=0)] = 5.0
    webhook_backoff_cap_s: Annotated[float, msgspec.Meta(gt=0)] = 3600.0
    webhook_pause_after: Positive = 10  # consecutive failures before a subscription is paused

    @property
    def var_path(self) -> Path:
        return Path(self.var_dir)

    @property
    def cache_path(self) -> Path:
        return Path(self.cache_dir) if self.cache_dir else self.var_path / "cache"

    @property
    def resolver(self) -> str:
        return self.tag_resolver or f"http://{self.host}:{self.port}"

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


class ConfigError(Exception):
    """Configuration that cannot start the service; the message names the source of the fault."""


_FIELDS = {f.name: f for f in msgspec.structs.fields(Settings)}
_SECRETS_FILE = "secrets.toml"
_SECRET_FIELDS = ("secret_key", "tag_key", "tag_key_id", "tag_old_keys", "tag_keys_retired")


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            data = tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: {exc}") from exc
    unknown = sorted(set(data) - set(_FIELDS))
    if unknown:
        raise ConfigError(f"{path}: unknown setting(s) {', '.join(unknown)}; known: {', '.join(_FIELDS)}")
    return data


_LIST_FIELDS = ("tag_resolvers_accepted", "tag_keys_retired")


def _from_env(environ: dict[str, str]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for name in _FIELDS:
        key = f"AFM_{name.upper()}"
        if key in environ:
            value: Any = environ[key]
            if name in _LIST_FIELDS:
                value = [item.strip() for item in value.split(",") if item.strip()]
            found[name] = value
    return found


def _ensure_secrets(var_dir: Path) -> dict[str, Any]:
    """Load or create var/secrets.toml (0600) holding the signing keys."""
    path = var_dir / _SECRETS_FILE
    if path.exists():
        mode = path.stat().st_mode & 0o777
        if mode & 0o077:
            raise ConfigError(f"{path}: permissions {oct(mode)} are too open; run: chmod 600 {path}")
        data = _read_toml(path)
        return {k: v for k, v in data.items() if k in _SECRET_FIELDS}
    var_dir.mkdir(parents=True, exist_ok=True)
    values = {"secret_key": secrets.token_urlsafe(48), "tag_key": secrets.token_urlsafe(48)}
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write("# generated by afm; keep private, never commit\n")
        for key, value in values.items():
            fh.write(f'{key} = "{value}"\n')
    return values


def load_settings(environ: dict[str, str] | None = None, config_file: Path | None = None) -> Settings:
    """Merge the layers, validate, and fill in secrets. Raises ConfigError with the faulty source."""
    env = dict(os.environ if environ is None else environ)
    merged: dict[str, Any] = {}
    sources: dict[str, str] = {}
    path = config_file or Path(env.get("AFM_CONFIG", str(PROJECT_ROOT / "afm.toml")))
    if path.exists():
        for key, value in _read_toml(path).items():
            merged[key] = value
            sources[key] = str(path)
    for key, value in _from_env(env).items():
        merged[key] = value
        sources[key] = f"AFM_{key.upper()}"
    try:
        settings = msgspec.convert(merged, Settings, strict=False)
    except msgspec.ValidationError as exc:
        message = str(exc)
        source = "configuration"
        for key, origin in sources.items():
            if f"`$.{key}`" in message:
                source = origin
        raise ConfigError(f"{source}: {message}") from exc
    if not settings.database_url:
        db_file = Path(settings.var_dir) / "afm.db"
        settings = msgspec.structs.replace(settings, database_url=f"sqlite+aiosqlite:///{db_file}")
    if not settings.secret_key or not settings.tag_key:
        stored = _ensure_secrets(Path(settings.var_dir))
        # The tag key ring comes from the secrets file as a whole unless the environment names the key.
        ring = {k: stored[k] for k in _SECRET_FIELDS[2:] if k in stored and k not in sources}
        if settings.tag_key:
            ring = {}
        try:
            settings = msgspec.convert(
                {
                    **msgspec.structs.asdict(settings),
                    **ring,
                    "secret_key": settings.secret_key or stored["secret_key"],
                    "tag_key": settings.tag_key or stored["tag_key"],
                },
                Settings,
            )
        except (msgspec.ValidationError, KeyError) as exc:
            raise ConfigError(f"{Path(settings.var_dir) / _SECRETS_FILE}: {exc}") from exc
    return settings


def rotate_tag_key(var_dir: Path) -> tuple[str, str]:
    """A new active tag signing key in var/secrets.toml; the old one stays to verify printed tags.
    Returns (old id, new id)."""
    stored = _ensure_secrets(var_dir)
    old_id = str(stored.get("tag_key_id", "K1"))
    old_keys = {str(k): str(v) for k, v in dict(stored.get("tag_old_keys", {})).items()}
    old_keys[old_id] = str(stored["tag_key"])
    taken = {*old_keys, old_id}
    number = 1 + max((int(k[1:]) for k in taken if k[:1] == "K" and k[1:].isdigit()), default=0)
    new_id = f"K{number}"
    _write_secrets(
        var_dir,
        {**stored, "tag_key": secrets.token_urlsafe(48), "tag_key_id": new_id, "tag_old_keys": old_keys},
    )
    return old_id, new_id


def retire_tag_key(var_dir: Path, key_id: str) -> None:
    """Refuse every tag signed with `key_id` from now on (a leaked or lost key)."""
    stored = _ensure_secrets(var_dir)
    if key_id == stored.get("tag_key_id", "K1"):
        raise ConfigError(f"{key_id} is the active tag key; rotate to a new key first (afm tags rotate-key)")
    if key_id not in dict(stored.get("tag_old_keys", {})):
        raise ConfigError(f"no earlier tag key {key_id} in {var_dir / _SECRETS_FILE}")
    retired = sorted({*map(str, stored.get("tag_keys_retired", [])), key_id})
    _write_secrets(var_dir, {**stored, "tag_keys_retired": retired})


def _write_secrets(var_dir: Path, values: dict[str, Any]) -> None:
    """Replace var/secrets.toml atomically, 0600 from the first byte."""
    path = var_dir / _SECRETS_FILE
    temp = path.with_suffix(".tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write("# generated by afm; keep private, never commit\n")
        for key in ("secret_key", "tag_key", "tag_key_id"):
            if key in values:
                fh.write(f'{key} = "{values[key]}"\n')
        if values.get("tag_keys_retired"):
            fh.write(f"tag_keys_retired = {json.dumps([str(k) for k in values['tag_keys_retired']])}\n")
        if values.get("tag_old_keys"):
            fh.write("\n[tag_old_keys]\n")
            for key_id, secret in sorted(values["tag_old_keys"].items()):
                fh.write(f'{key_id} = "{secret}"\n')
    temp.replace(path)


_public_base: str | None = None


def set_public_base_url(url: str) -> None:
    """The address links in issued documents point at (the service's own, or the tag resolver's);
    set once by the app factory for code that runs without the settings at hand."""
    global _public_base
    _public_base = url.rstrip("/")


def public_base_url() -> str:
    if _public_base is not None:
        return _public_base
    try:
        return load_settings().resolver
    except ConfigError:
        return "http://127.0.0.1:8000"
