"""The run configuration (`carpool.yml`): sites, output directory, cut-off, key source.

Parsed into a typed model; unknown keys and bad values raise `ConfigError` naming the
file, line and key. Paths in the file are relative to the file's own directory.
"""
from __future__ import annotations

import hashlib
import os
import re
from datetime import date
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator

from etl.errors import ConfigError
from etl.outdir import check_output_dir
from etl.yamlfile import load_model
from federated.disclosure import DisclosureConfig

SITE_ID = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
KEY_ENV = "CARPOOL_PSEUDONYM_KEY"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SiteConfig(_Strict):
    id: str = Field(description="Site id: lower-case letters, digits and _, e.g. center_a.")
    mapping: Path = Field(description="The site's mapping.yml.")
    export_dir: Path | None = Field(None, description="Where the export files are; default: the mapping's folder.")
    enabled: bool = True

    @field_validator("id")
    @classmethod
    def _site_id(cls, v: str) -> str:
        if not SITE_ID.match(v):
            raise ValueError(f"site id {v!r} must match {SITE_ID.pattern} (lower-case, digits, _)")
        return v


class KeyConfig(_Strict):
    env: str = KEY_ENV
    file: Path | None = None
    demo_key: str | None = Field(None, description="A published key for synthetic demo data only; "
                                                    "used only when the config says `demo: true`.")


class QualityConfig(_Strict):
    max_quarantined_pct: float = Field(
        25.0, ge=0, le=100, description="Exit 1 when a site quarantines more patients than this.")
    max_shrink_pct: float = Field(
        20.0, ge=0, le=100, description="A site whose loaded patients fall by more than this share against its "
                                        "last good run is not published without `--allow-shrink` (exit 1).")


class Config(_Strict):
    study: str = "study"
    demo: bool = Field(False, description="Synthetic demo data: allows the published demo key.")
    cutoff_date: date
    output_dir: Path = Path("out")
    pseudonym_key: KeyConfig = KeyConfig()
    quality: QualityConfig = QualityConfig()
    federated: DisclosureConfig = DisclosureConfig()  # `carpool federate`: disclosure control
    sites: list[SiteConfig]
    path: Path | None = Field(None, exclude=True)

    @field_validator("sites")
    @classmethod
    def _unique_sites(cls, v: list[SiteConfig]) -> list[SiteConfig]:
        ids = [s.id for s in v]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise ValueError(f"site ids must be unique; repeated: {', '.join(dupes)}")
        if not v:
            raise ValueError("at least one site is required")
        return v

    @property
    def root(self) -> Path:
        return self.path.parent if self.path else Path.cwd()

    def resolve(self, p: Path) -> Path:
        return p if p.is_absolute() else (self.root / p)

    @property
    def out(self) -> Path:
        return self.resolve(self.output_dir)

    def site(self, site_id: str) -> SiteConfig:
        for s in self.sites:
            if s.id == site_id:
                return s
        known = ", ".join(s.id for s in self.sites)
        raise ConfigError(f"{self.path}: no site {site_id!r} in sites (known: {known})")

    def config_hash(self) -> str:
        return hashlib.sha256(self.path.read_bytes()).hexdigest()[:16] if self.path else ""


def load_config(path: Path) -> Config:
    """Read carpool.yml (or the file given with --config)."""
    path = Path(path).resolve()
    cfg = load_model(path, Config)
    cfg = cfg.model_copy(update={"path": path})
    key_file = cfg.pseudonym_key.file
    if key_file is not None:
        key_path = cfg.resolve(key_file).resolve()
        if key_path.is_relative_to(cfg.out.resolve()):
            raise ConfigError(f"{path}: pseudonym_key.file must not be under output_dir ({cfg.out})")
    check_output_dir(cfg)
    return cfg


KEY_SOURCES = ("env", "file", "demo")
MIN_KEY_BYTES = 16
DEMO_BANNER = "DEMO KEY, synthetic data only"


def pseudonym_key(cfg: Config) -> tuple[bytes, str]:
    """The HMAC key and its source: "env", "file" or "demo". The only code path that reads the key.

    An environment variable that is set wins, and must hold at least 16 bytes: a set but
    empty variable (a scheduler whose secret failed to load) is an error, never a silent
    fall-back. The published demo key is used only when the config says `demo: true`.
    """
    name = cfg.pseudonym_key.env
    env = os.environ.get(name)
    if env is not None:
        if len(env.encode("utf-8")) < MIN_KEY_BYTES:
            what = "is set but empty" if not env.strip() else f"is shorter than {MIN_KEY_BYTES} bytes"
            raise ConfigError(f"{cfg.path}: environment variable {name} {what}: set a key of at least "
                              f"{MIN_KEY_BYTES} bytes, or unset it to use pseudonym_key.file")
        return env.encode("utf-8"), "env"
    if cfg.pseudonym_key.file is not None:
        key_path = cfg.resolve(cfg.pseudonym_key.file)
        try:
            key = key_path.read_bytes().strip()
        except OSError as exc:
            raise ConfigError(f"{cfg.path}: pseudonym_key.file {key_path}: {exc.strerror}") from None
        if len(key) < MIN_KEY_BYTES:
            raise ConfigError(f"{cfg.path}: pseudonym_key.file {key_path}: key shorter than {MIN_KEY_BYTES} bytes")
        return key, "file"
    if cfg.pseudonym_key.demo_key and cfg.demo:
        return cfg.pseudonym_key.demo_key.encode("utf-8"), "demo"
    demo_hint = (" (pseudonym_key.demo_key is used only with `demo: true`, for synthetic data)"
                 if cfg.pseudonym_key.demo_key else "")
    raise ConfigError(
        f"{cfg.path}: no pseudonymization key: set ${name} "
        f"or pseudonym_key.file (outside output_dir){demo_hint}"
    )
