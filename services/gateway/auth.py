"""API keys: who is calling, what they may do, and which datasets they may see.

Keys are configured as sha256 hashes (never the keys themselves) in a JSON file
mounted from a Secret: [{"name": "ci", "sha256": "<hex>", "role": "read",
"datasets": ["bdd"], "rate_limit_per_minute": 60}] (datasets and the limit are
optional). Roles nest: read (search, embeddings, datasets, jobs,
images) < write (+ scans) < admin (+ deleting datasets). A key with `datasets`
sees only those; without, all. Keys are never logged; their names are.
"""

import hashlib
import hmac
import ipaddress
import json
from dataclasses import dataclass
from pathlib import Path

ROLES = ("read", "write", "admin")


class AuthError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status  # 401 or 403


@dataclass(frozen=True)
class Principal:
    name: str
    role: str
    datasets: frozenset[str] | None  # None: every dataset
    rate_limit_per_minute: int | None = None  # None: the gateway's default

    def require(self, role: str) -> None:
        if ROLES.index(self.role) < ROLES.index(role):
            raise AuthError(403, f"key {self.name!r} has role {self.role}; this needs {role}")

    def can_see(self, dataset: str) -> bool:
        return self.datasets is None or dataset in self.datasets

    def check_dataset(self, dataset: str) -> None:
        if not self.can_see(dataset):
            raise AuthError(403, f"key {self.name!r} may not see dataset {dataset!r}")

    def scope(self, requested: list[str]) -> list[str]:
        """The datasets a search may touch: those requested (each must be visible),
        or every visible one when none is requested ([] meaning all)."""
        for dataset in requested:
            self.check_dataset(dataset)
        if requested or self.datasets is None:
            return list(requested)
        return sorted(self.datasets)


ANONYMOUS = Principal("anonymous", "admin", None)


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


class KeyRing:
    def __init__(self, entries: list[dict]):
        self.keys: list[tuple[bytes, Principal]] = []
        for i, entry in enumerate(entries):
            try:
                role = entry.get("role", "read")
                if role not in ROLES:
                    raise ValueError(f"role {role!r} is not one of {', '.join(ROLES)}")
                digest = bytes.fromhex(entry["sha256"])
                if len(digest) != 32:
                    raise ValueError("sha256 must be 64 hex digits")
                datasets = entry.get("datasets")
                limit = entry.get("rate_limit_per_minute")
                if limit is not None and (not isinstance(limit, int) or limit < 0):
                    raise ValueError(f"rate_limit_per_minute {limit!r} is not a count >= 0")
                principal = Principal(str(entry["name"]), role, frozenset(datasets) if datasets is not None else None,
                                      limit)
            except (KeyError, ValueError, TypeError) as error:
                raise SystemExit(f"API key {i} in the keys file is invalid: {error}") from error
            self.keys.append((digest, principal))

    @classmethod
    def from_file(cls, path: Path | None) -> "KeyRing":
        if path is None:
            return cls([])
        try:
            return cls(json.loads(Path(path).read_text()))
        except (OSError, json.JSONDecodeError) as error:
            raise SystemExit(f"cannot read the API keys file {path}: {error}") from error

    def authenticate(self, authorization: str | None) -> Principal:
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise AuthError(401, "missing API key: send Authorization: Bearer <key>")
        digest = hashlib.sha256(token.strip().encode()).digest()
        found = None
        for known, principal in self.keys:  # compare with every key: timing says nothing
            if hmac.compare_digest(known, digest):
                found = principal
        if found is None:
            raise AuthError(401, "unknown API key")
        return found


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
