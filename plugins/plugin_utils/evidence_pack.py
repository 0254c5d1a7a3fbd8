# Copyright: ledgerguard engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Signed evidence packs (controller side): a manifest of every file in an evidence folder (sha256, size), signed
with ed25519.

``sign`` writes ``evidence-pack.json`` (the manifest) and ``evidence-pack.sig`` (the detached signature) into the
folder; ``verify`` checks the signature against the firm's public key, every file's hash, files missing or added,
and the hash chain of every ``timeline.jsonl``, and names each thing that fails. Used by the action plugin
``ledgerguard.recovery.evidence_pack`` (the report role's ``sign`` entry point, the compliance checklist) and by the
``ledgerguard evidence`` command line. Needs the Python package ``cryptography`` on the controller.

Also the one rule for the controller's default evidence root (:func:`default_evidence_root`).
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import os
import stat
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ansible_collections.ledgerguard.recovery.plugins.module_utils.timeline import verify_chain

try:
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
except ImportError as _exc:  # pragma: no cover - the requirement is declared; this names it when missing
    CRYPTOGRAPHY_ERROR: str | None = (
        f"the Python package cryptography is needed on the controller to sign and verify evidence packs ({_exc}); "
        "install it into the Python that runs Ansible: python3 -m pip install 'cryptography>=41'"
    )
else:
    CRYPTOGRAPHY_ERROR = None

MANIFEST_NAME = "evidence-pack.json"
SIGNATURE_NAME = "evidence-pack.sig"
PACK_FILES = (MANIFEST_NAME, SIGNATURE_NAME)
FORMAT = "ledgerguard-evidence-pack"
FORMAT_VERSION = 1
TIMELINE_NAME = "timeline.jsonl"
KEY_ENV = "LEDGERGUARD_EVIDENCE_KEY"
PUBKEY_ENV = "LEDGERGUARD_EVIDENCE_PUBKEY"
DEFAULT_KEY = Path("~/.config/ledgerguard/evidence-signing.key")
CHUNK = 1 << 20
EVIDENCE_ENV = "LEDGERGUARD_EVIDENCE_DIR"
SYSTEM_EVIDENCE_ROOT = Path("/var/lib/ledgerguard/evidence")


class EvidenceError(Exception):
    """Bad input to the evidence commands (exit code 2); the message names the path and what to do."""


class EvidenceKeyError(EvidenceError):
    """The signing or verification key is missing, unreadable or not an ed25519 key."""


def require_cryptography() -> None:
    if CRYPTOGRAPHY_ERROR:
        raise EvidenceError(CRYPTOGRAPHY_ERROR)


def default_evidence_root(environ: dict[str, str] | None = None, euid: int | None = None) -> Path:
    """Where evidence goes when ``ledgerguard_evidence_dir`` is not set: always outside the collection.

    ``$LEDGERGUARD_EVIDENCE_DIR`` when set; else ``/var/lib/ledgerguard/evidence`` for root; else
    ``$XDG_STATE_HOME/ledgerguard/evidence`` (``~/.local/state/ledgerguard/evidence``) -- the same places the CLI
    keeps its runner folders. Relative values are taken from the controller's working directory.
    """
    env = os.environ if environ is None else environ
    if env.get(EVIDENCE_ENV):
        return Path(env[EVIDENCE_ENV]).expanduser().absolute()
    if (os.geteuid() if euid is None else euid) == 0:
        return SYSTEM_EVIDENCE_ROOT
    state = env.get("XDG_STATE_HOME") or str(Path(env.get("HOME") or Path.home()) / ".local" / "state")
    return Path(state).expanduser().absolute() / "ledgerguard" / "evidence"


# ------------------------------------------------------------------------------------------------------------ keys


def default_key_path() -> Path:
    """The firm's signing key: $LEDGERGUARD_EVIDENCE_KEY, else ~/.config/ledgerguard/evidence-signing.key."""
    return Path(os.environ.get(KEY_ENV) or DEFAULT_KEY).expanduser()


def public_key_path_for(key_path: Path) -> Path:
    return Path(str(key_path) + ".pub")


def default_public_key_path() -> Path:
    env = os.environ.get(PUBKEY_ENV)
    return Path(env).expanduser() if env else public_key_path_for(default_key_path())


def key_id(public_key: Ed25519PublicKey) -> str:
    """sha256 of the raw 32-byte public key, first 16 hex digits (printed by keygen, recorded in the manifest)."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def _keygen_hint(path: Path) -> str:
    return f"create one with `ledgerguard evidence keygen --key {path}` (it also writes {public_key_path_for(path)})"


def keygen(key_path: Path | str | None = None, force: bool = False) -> dict[str, str]:
    """Create an ed25519 signing key (PEM PKCS8, mode 0600) and its public key (``<key>.pub``, PEM)."""
    require_cryptography()
    path = Path(key_path).expanduser() if key_path else default_key_path()
    pub = public_key_path_for(path)
    if not force:
        for existing in (path, pub):
            if existing.exists():
                raise EvidenceKeyError(
                    f"{existing} already exists; refusing to overwrite a signing key (packs signed with it could no "
                    "longer be checked against a new one). Pass --force to replace it, or choose another --key path"
                )
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    private = Ed25519PrivateKey.generate()
    pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    pub_pem = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    _atomic_write(path, pem, 0o600)
    _atomic_write(pub, pub_pem, 0o644)
    return {"key": str(path), "public_key": str(pub), "key_id": key_id(private.public_key())}


def load_private_key(key_path: Path | str | None = None) -> Ed25519PrivateKey:
    """Load the signing key; every failure is an EvidenceKeyError naming the path and the fix."""
    require_cryptography()
    path = Path(key_path).expanduser() if key_path else default_key_path()
    try:
        st = path.stat()
    except FileNotFoundError as exc:
        raise EvidenceKeyError(f"signing key {path} does not exist: {_keygen_hint(path)}") from exc
    except PermissionError as exc:
        raise EvidenceKeyError(f"signing key {path} cannot be read: permission denied on its folder") from exc
    if not stat.S_ISREG(st.st_mode):
        raise EvidenceKeyError(f"signing key {path} is not a regular file")
    if st.st_mode & 0o077:
        raise EvidenceKeyError(
            f"signing key {path} is accessible by group or others (mode {stat.S_IMODE(st.st_mode):04o}); "
            f"run `chmod 600 {path}`"
        )
    try:
        data = path.read_bytes()
    except PermissionError as exc:
        raise EvidenceKeyError(f"signing key {path} cannot be read: permission denied; run as the key's owner") from exc
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise EvidenceKeyError(
            f"signing key {path} is not an unencrypted PEM private key ({exc}); {_keygen_hint(path)}"
        ) from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise EvidenceKeyError(
            f"signing key {path} is a {type(key).__name__}, not an ed25519 key; {_keygen_hint(path)}"
        )
    return key


def load_public_key(pub_path: Path | str | None = None) -> Ed25519PublicKey:
    require_cryptography()
    path = Path(pub_path).expanduser() if pub_path else default_public_key_path()
    try:
        data = path.read_bytes()
    except FileNotFoundError as exc:
        raise EvidenceKeyError(
            f"public key {path} does not exist: pass the firm's public key with --public-key, or "
            f"{_keygen_hint(Path(str(path)[:-4]) if str(path).endswith('.pub') else path)}"
        ) from exc
    except PermissionError as exc:
        raise EvidenceKeyError(f"public key {path} cannot be read: permission denied") from exc
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, TypeError) as exc:
        raise EvidenceKeyError(f"public key {path} is not a PEM public key ({exc})") from exc
    if not isinstance(key, Ed25519PublicKey):
        raise EvidenceKeyError(f"public key {path} is a {type(key).__name__}, not an ed25519 key")
    return key


# ------------------------------------------------------------------------------------------------------- manifest


def _atomic_write(path: Path, data: bytes, mode: int) -> None:
    fd, tmp = tempfile.mkstemp(prefix="." + path.name + ".", dir=str(path.parent))
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def sha256_file(path: Path) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def walk_pack(folder: Path) -> tuple[list[str], list[str], list[str]]:
    """Relative POSIX paths of the regular files under ``folder`` (sorted, pack files excluded), of symlinks and
    special files, and the walk errors (``"<path>: <reason>"``) -- a folder that cannot be listed is an error, never
    skipped: what it hides cannot be checked."""
    files: list[str] = []
    links: list[str] = []
    errors: list[str] = []

    def failed(exc: OSError) -> None:
        where = exc.filename if exc.filename is not None else folder
        try:
            where = Path(os.fsdecode(where)).relative_to(folder).as_posix() or "."
        except ValueError:
            where = os.fsdecode(where)
        errors.append(f"{where}: {exc.strerror or exc}")

    for root, dirs, names in os.walk(folder, onerror=failed, followlinks=False):
        rel_root = Path(root).relative_to(folder)
        for name in sorted(dirs):
            rel = (rel_root / name).as_posix()
            try:
                if stat.S_ISLNK(os.lstat(Path(root) / name).st_mode):
                    links.append(rel)
            except OSError as exc:
                errors.append(f"{rel}: {exc.strerror or exc}")
        for name in names:
            rel = (rel_root / name).as_posix()
            if rel in PACK_FILES:
                continue
            try:
                mode = os.lstat(Path(root) / name).st_mode
            except OSError as exc:
                errors.append(f"{rel}: {exc.strerror or exc}")
                continue
            if stat.S_ISREG(mode):
                files.append(rel)
            else:
                links.append(rel)  # symlinks, sockets, fifos, devices: not evidence
    return sorted(files), sorted(links), sorted(errors)


SUMS_NAME = "SHA256SUMS"


def _sums_line(digest: str, rel: str) -> bytes:
    """One line as GNU ``sha256sum`` writes it (a name with a backslash or a newline is escaped, the line marked)."""
    if "\\" in rel or "\n" in rel:
        escaped = rel.replace("\\", "\\\\").replace("\n", "\\n")
        return b"\\" + f"{digest}  ".encode() + os.fsencode(escaped) + b"\n"
    return f"{digest}  ".encode() + os.fsencode(rel) + b"\n"


def write_sums(
    folder: Path | str, exclude: list[str] | tuple[str, ...] = (), check_mode: bool = False
) -> dict[str, Any]:
    """``SHA256SUMS`` of every regular file under ``folder`` (what ``sha256sum -c`` checks from inside it), sorted by
    path, leaving out files named in ``exclude`` at any depth (files still being appended to, such as a timeline).
    Replaced only when its content changes; nothing is written in check mode."""
    folder = Path(folder)
    skip = {SUMS_NAME, *exclude}
    files, _links, errors = walk_pack(folder)
    if errors:
        raise EvidenceError(f"cannot hash every file of {folder}: {'; '.join(errors)}")
    chosen = [rel for rel in files if Path(rel).name not in skip]
    data = b"".join(_sums_line(sha256_file(folder / rel)[0], rel) for rel in chosen)
    target = folder / SUMS_NAME
    try:
        changed = target.read_bytes() != data
    except FileNotFoundError:
        changed = True
    if changed and not check_mode:
        _atomic_write(target, data, 0o600)
    return {"changed": changed, "path": str(target), "files": len(chosen), "sha256": hashlib.sha256(data).hexdigest()}


def canonical_bytes(manifest: dict[str, Any]) -> bytes:
    return (json.dumps(manifest, sort_keys=True, ensure_ascii=False, indent=1) + "\n").encode("utf-8")


def build_manifest(folder: Path, *, signer: str, kind: str, public_key: Ed25519PublicKey) -> dict[str, Any]:
    files, odd, errors = walk_pack(folder)
    if errors:
        raise EvidenceError(
            f"evidence folder {folder} cannot be read completely: {'; '.join(errors)}; make every folder readable "
            "and retry (an unreadable folder cannot be signed)"
        )
    if odd:
        raise EvidenceError(
            f"evidence folder {folder} holds symlinks or special files, which cannot be evidence: {', '.join(odd)}; "
            "replace them with copies of the files they point to"
        )
    entries = []
    timelines = []
    for rel in files:
        digest, size = sha256_file(folder / rel)
        entries.append({"path": rel, "sha256": digest, "size": size})
        if Path(rel).name == TIMELINE_NAME:
            chain = verify_chain(str(folder / rel))
            if not chain["ok"]:
                raise EvidenceError(
                    f"{rel} in {folder}: the timeline hash chain is broken at line {chain['first_bad_line']} "
                    f"({chain['reason']}); refusing to sign a tampered timeline"
                )
            timelines.append({"path": rel, "lines": chain["lines"], "last_sha256": chain["last_sha256"]})
    return {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "pack": folder.name,
        "kind": kind,
        "created_at": dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z"),
        "signer": signer,
        "algorithm": "ed25519",
        "key_id": key_id(public_key),
        "files": entries,
        "timelines": timelines,
    }


def sign(
    folder: Path | str, key_path: Path | str | None = None, *, signer: str | None = None, kind: str = "incident"
) -> dict[str, Any]:
    """Write ``evidence-pack.json`` and ``evidence-pack.sig`` into ``folder``; returns a summary."""
    folder = Path(folder)
    if not folder.is_dir():
        raise EvidenceError(f"evidence folder {folder} does not exist or is not a directory")
    private = load_private_key(key_path)
    manifest = build_manifest(folder, signer=signer or whoami(), kind=kind, public_key=private.public_key())
    body = canonical_bytes(manifest)
    signature = private.sign(body)
    sig_doc = {
        "algorithm": "ed25519",
        "key_id": manifest["key_id"],
        "manifest_sha256": hashlib.sha256(body).hexdigest(),
        "signature": base64.b64encode(signature).decode("ascii"),
    }
    _atomic_write(folder / MANIFEST_NAME, body, 0o644)
    _atomic_write(folder / SIGNATURE_NAME, (json.dumps(sig_doc, sort_keys=True, indent=1) + "\n").encode(), 0o644)
    return {
        "pack": str(folder),
        "files": len(manifest["files"]),
        "timelines": len(manifest["timelines"]),
        "key_id": manifest["key_id"],
        "manifest_sha256": sig_doc["manifest_sha256"],
    }


def whoami() -> str:
    try:
        import pwd

        return pwd.getpwuid(os.getuid()).pw_name
    except (ImportError, KeyError):
        return str(os.getuid())


# --------------------------------------------------------------------------------------------------------- verify


@dataclass
class Problem:
    kind: str
    path: str
    detail: str

    def __str__(self) -> str:
        return f"{self.kind}: {self.path}: {self.detail}"


@dataclass
class VerifyReport:
    pack: str
    ok: bool = False
    key_id: str | None = None
    signer: str | None = None
    created_at: str | None = None
    files_checked: int = 0
    timelines_checked: int = 0
    problems: list[Problem] = field(default_factory=list)

    def add(self, kind: str, path: str, detail: str) -> None:
        self.problems.append(Problem(kind, path, detail))

    def as_dict(self) -> dict[str, Any]:
        return {
            "pack": self.pack,
            "ok": self.ok,
            "key_id": self.key_id,
            "signer": self.signer,
            "created_at": self.created_at,
            "files_checked": self.files_checked,
            "timelines_checked": self.timelines_checked,
            "problems": [str(p) for p in self.problems],
        }


def verify(folder: Path | str, public_key: Ed25519PublicKey | Path | str | None = None) -> VerifyReport:
    """Check a pack: signature (against the firm's public key), every hash, missing/added files, timeline chains.

    Never stops at the first problem: every file is checked so the report names all that fails.
    """
    require_cryptography()
    folder = Path(folder)
    report = VerifyReport(pack=str(folder))
    if not folder.is_dir():
        raise EvidenceError(f"evidence folder {folder} does not exist or is not a directory")
    pub = public_key if isinstance(public_key, Ed25519PublicKey) else load_public_key(public_key)
    trusted_id = key_id(pub)
    manifest_path = folder / MANIFEST_NAME
    try:
        body = manifest_path.read_bytes()
    except FileNotFoundError:
        report.add(
            "manifest-missing", MANIFEST_NAME, f"no manifest: sign the pack with `ledgerguard evidence sign {folder}`"
        )
        return report
    try:
        manifest = json.loads(body.decode("utf-8"))
        if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
            raise ValueError(f"not a {FORMAT} manifest")
        entries = manifest["files"]
    except (ValueError, KeyError, UnicodeDecodeError) as exc:
        report.add("manifest-invalid", MANIFEST_NAME, f"cannot be read as a manifest: {exc}")
        return report
    report.key_id, report.signer, report.created_at = (
        manifest.get("key_id"),
        manifest.get("signer"),
        manifest.get("created_at"),
    )

    _check_signature(folder, body, pub, trusted_id, manifest, report)

    expected = {e["path"]: e for e in entries}
    present, odd, errors = walk_pack(folder)
    for error in errors:
        rel, _sep, reason = error.rpartition(": ")
        report.add("folder-unreadable", rel, f"cannot be listed ({reason}): what it holds cannot be checked")
    for rel in odd:
        report.add("file-added", rel, "symlink or special file not in the manifest")
    for rel in present:
        if rel not in expected:
            report.add("file-added", rel, "file is not in the signed manifest")
    for rel, entry in expected.items():
        path = folder / rel
        if not path.is_file() or path.is_symlink():
            report.add("file-missing", rel, "listed in the manifest but not in the folder")
            continue
        try:
            digest, size = sha256_file(path)
        except OSError as exc:
            report.add("file-unreadable", rel, str(exc))
            continue
        report.files_checked += 1
        if digest != entry["sha256"]:
            report.add(
                "file-changed",
                rel,
                f"sha256 {digest} differs from the signed {entry['sha256']} (size {size}, signed {entry['size']})",
            )
    anchors = {t["path"]: t for t in manifest.get("timelines") or []}
    timeline_paths = sorted({r for r in present if Path(r).name == TIMELINE_NAME} | set(anchors))
    for rel in timeline_paths:
        path = folder / rel
        if not path.is_file():
            continue  # already reported missing
        anchor = anchors.get(rel, {}).get("last_sha256")
        try:
            chain = verify_chain(str(path), anchor=anchor)
        except (OSError, UnicodeDecodeError) as exc:
            report.add("timeline-broken", rel, f"cannot be read: {exc}")
            continue
        report.timelines_checked += 1
        if not chain["ok"]:
            report.add("timeline-broken", rel, f"line {chain['first_bad_line']}: {chain['reason']}")
        elif rel in anchors and chain["lines"] != anchors[rel].get("lines"):
            report.add("timeline-broken", rel, f"{chain['lines']} lines, the signed pack had {anchors[rel]['lines']}")
    report.ok = not report.problems
    return report


def _check_signature(
    folder: Path,
    body: bytes,
    pub: Ed25519PublicKey,
    trusted_id: str,
    manifest: dict[str, Any],
    report: VerifyReport,
) -> None:
    try:
        sig_doc = json.loads((folder / SIGNATURE_NAME).read_text(encoding="utf-8"))
        signature = base64.b64decode(sig_doc["signature"], validate=True)
    except FileNotFoundError:
        report.add("signature-missing", SIGNATURE_NAME, "no signature file: the pack is not signed")
        return
    except (ValueError, KeyError, TypeError) as exc:
        report.add("signature-invalid", SIGNATURE_NAME, f"cannot be read: {exc}")
        return
    if manifest.get("key_id") != trusted_id:
        report.add(
            "signature-invalid",
            SIGNATURE_NAME,
            f"signed with key {manifest.get('key_id')}, but the trusted public key is {trusted_id}",
        )
        return
    try:
        pub.verify(signature, body)
    except InvalidSignature:
        report.add(
            "signature-invalid",
            MANIFEST_NAME,
            f"the ed25519 signature does not match the manifest (key {trusted_id}): the manifest or signature was "
            "altered after signing",
        )
