"""Disclosure control of a federated site: what may leave it, and the log of what did.

The rules are the *site's*, not the central's: a node reads them from its own policy
(`policy_from_env`: the JSON file named by `$CARPOOL_FEDERATED_POLICY`, written from the
`federated:` section of carpool.yml), so a central function cannot lower them.

* `min_rows` (default 10): a site with fewer patients refuses every request
  (`SiteRefused`, whose message says why and which setting decides it).
* `min_cell` (default 5): applied to what the central releases to the researcher
  (the results table), with the same primary and secondary suppression as
  `carpool export-aggregates` (`warehouse.aggregates.results`).
* `coarsen_days` (default none): event and censoring times are rounded *up* to the end of
  their interval of this many days before a site counts them, for KM, log-rank and Cox.
* `histogram_resolution` (default 0.05): the relative bin width of the histograms that
  medians, ranges and rank tests are approximated from (`federated.histogram`).

`DisclosureLog` appends one JSON line per request to `<log_dir>/<site>.jsonl`: the request
number, the method, its description, the bytes sent, and the exact payload that left.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field

if TYPE_CHECKING:   # numpy is imported where used: carpool.yml's `federated:` loads without it
    import numpy as np

POLICY_ENV = "CARPOOL_FEDERATED_POLICY"
DAYS_PER_MONTH = 365.25 / 12  # the warehouse's months (analysis_patient.sql)


class DisclosureConfig(BaseModel):
    """The `federated:` section of carpool.yml."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    min_rows: int = Field(10, ge=1, description="A site with fewer patients refuses every request.")
    min_cell: int = Field(5, ge=1, description="Released counts from 1 to min_cell - 1 are suppressed; 1 = off.")
    coarsen_days: float | None = Field(None, gt=0, description="Round event/censoring times up to this many days.")
    histogram_resolution: float = Field(0.05, gt=0, le=1, description="Relative bin width for approximate medians.")
    log_dir: Path | None = Field(None, description="Where each site writes its disclosure log.")


class SiteRefused(RuntimeError):
    """A site declines a request; the message is for people and names the rule."""


def policy_from_env() -> DisclosureConfig:
    """The node's own policy (defaults when `$CARPOOL_FEDERATED_POLICY` is unset)."""
    path = os.environ.get(POLICY_ENV)
    if not path:
        return DisclosureConfig()
    return DisclosureConfig.model_validate(json.loads(Path(path).read_text(encoding="utf-8")))


def check_site(site: str, n_patients: int, policy: DisclosureConfig) -> None:
    if n_patients < policy.min_rows:
        raise SiteRefused(
            f"site {site} refuses: it holds {n_patients} patients, fewer than the minimum of "
            f"{policy.min_rows} (federated.min_rows in carpool.yml); no aggregate leaves it")


def coarsen(months, days: float | None) -> np.ndarray:
    """Times in months rounded up to the end of their `days`-long interval (None: unchanged)."""
    import numpy as np

    t = np.asarray(months, dtype=float)
    if days is None:
        return t
    width = days / DAYS_PER_MONTH
    return np.ceil(np.round(t / width, 9)) * width


class DisclosureLog:
    """One JSON line per request: what left `site` and how many bytes it took."""

    def __init__(self, log_dir: Path | None, site: str):
        self.path = None if log_dir is None else Path(log_dir) / f"{site}.jsonl"
        self.site = site

    def record(self, method: str, description: str, payload) -> int:
        text = json.dumps(payload, separators=(",", ":"), allow_nan=True)
        size = len(text.encode("utf-8"))
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            request = _next_request(self.path)
            line = {"request": request, "site": self.site, "method": method,
                    "description": description, "bytes": size, "payload": payload}
            with self.path.open("a", encoding="utf-8") as fh:
                fh.write(json.dumps(line, separators=(",", ":"), allow_nan=True) + "\n")
        return size


def _next_request(path: Path) -> int:
    if not path.exists():
        return 1
    with path.open("rb") as fh:
        return sum(1 for _ in fh) + 1
