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


class InvalidKeys(ValueError):
    pass


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
                raise InvalidKeys(f"API key {i} in the keys file is invalid: {error}") from error
            self.keys.append((digest, principal))

    @classmethod
    def from_file(cls, path: Path | None) -> "KeyRing":
        if path is None:
            return cls([])
        try:
            entries = json.loads(Path(path).read_text())
        except (OSError, json.JSONDecodeError) as error:
            raise InvalidKeys(f"cannot read the API keys file {path}: {error}") from error
        if not isinstance(entries, list):
            raise InvalidKeys(f"the API keys file {path} holds no list")
        return cls(entries)

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


class KeyFile:
    """The keys file, read again whenever it changes (a Secret mounted in a pod is replaced
    in place when the Secret is edited): revoking a key takes effect within
    VIZSEARCH_API_KEYS_RELOAD_S, without restarting anything. A file that turns invalid is
    refused, and the keys read last stay in force."""

    def __init__(self, path: Path | None):
        self.path = path
        self._version = self._stat()
        self.ring = KeyRing.from_file(path)

    def _stat(self) -> tuple | None:
        try:
            stat = Path(self.path).stat() if self.path else None
        except OSError:
            return None
        return (stat.st_mtime_ns, stat.st_size, stat.st_ino) if stat else None

    def reload_if_changed(self) -> bool:
        """True when new keys were read."""
        version = self._stat()
        if version == self._version:
            return False
        ring = KeyRing.from_file(self.path)  # raises InvalidKeys: the old ring stays
        self.ring, self._version = ring, version
        return True

    def authenticate(self, authorization: str | None) -> Principal:
        return self.ring.authenticate(authorization)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
