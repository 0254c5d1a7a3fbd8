# Copyright: ledgerguard engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin ledgerguard.recovery.evidence_pack: sign or verify evidence packs on the controller.

The evidence lives on the controller, so nothing is sent to the managed host; the work is done by
plugin_utils/evidence_pack.py (the code behind ``ledgerguard evidence sign|verify`` too).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ansible_collections.ledgerguard.recovery.plugins.plugin_utils import evidence_pack as ep
from ansible_collections.ledgerguard.recovery.plugins.plugin_utils.controller_action import ControllerAction

SPEC: dict[str, Any] = {
    "state": {"type": "str", "choices": ["signed", "verified"], "default": "verified"},
    "path": {"type": "list", "elements": "path", "required": True},
    "key": {"type": "path"},
    "public_key": {"type": "path"},
    "kind": {"type": "str", "choices": ["incident", "drill", "verify", "compliance", "other"], "default": "incident"},
    "signer": {"type": "str"},
    "fail_on_problems": {"type": "bool", "default": True},
}


def _signed_already(folder: Path, public_key: Any, signer: str, kind: str) -> dict[str, Any] | None:
    """The verification of an existing pack that matches this key, signer and kind, else None."""
    try:
        manifest = json.loads((folder / ep.MANIFEST_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(manifest, dict) or manifest.get("signer") != signer or manifest.get("kind") != kind:
        return None
    report = ep.verify(folder, public_key)
    return report.as_dict() if report.ok else None


class ActionModule(ControllerAction):
    ARGUMENT_SPEC = SPEC
    REQUIRED_IF = [("state", "signed", ("key",))]

    def act(self, args: dict[str, Any], task_vars: dict[str, Any]) -> dict[str, Any]:
        try:
            return self._sign(args) if args["state"] == "signed" else self._verify(args)
        except ep.EvidenceError as exc:
            return {"failed": True, "msg": f"evidence_pack: {exc}"}

    def _sign(self, args: dict[str, Any]) -> dict[str, Any]:
        if len(args["path"]) != 1:
            raise ep.EvidenceError(
                f"path: state=signed signs one folder, {len(args['path'])} were given; sign each folder in its own task"
            )
        folder = Path(args["path"][0])
        key_path = Path(args["key"])
        signer = args["signer"] or ep.whoami()
        public = ep.load_private_key(key_path).public_key()
        if not folder.is_dir():
            raise ep.EvidenceError(f"path: evidence folder {folder} does not exist or is not a directory")
        existing = _signed_already(folder, public, signer, args["kind"])
        if existing is not None:
            return {"changed": False, "ok": True, "packs": [existing], "msg": f"{folder} is already signed and intact"}
        if self._task.check_mode:
            return {"changed": True, "ok": True, "packs": [], "msg": f"would sign {folder} (check mode)"}
        signed = ep.sign(folder, key_path, signer=signer, kind=args["kind"])
        report = ep.verify(folder, public).as_dict()
        out = {"changed": True, "ok": report["ok"], "signed": signed, "packs": [report]}
        out["msg"] = (
            f"signed {folder}: {signed['files']} files, {signed['timelines']} timeline(s), key {signed['key_id']}, "
            f"manifest sha256 {signed['manifest_sha256']}; verified"
        )
        if not report["ok"]:
            out.update(
                failed=True,
                msg=f"evidence_pack: {folder} was signed but does not verify: " + "; ".join(report["problems"]),
            )
        return out

    @staticmethod
    def _verify_one(folder: str, public: Any) -> dict[str, Any]:
        """One folder's report; a folder that cannot be verified at all (missing) is a failed pack, and the others
        are still verified."""
        try:
            return ep.verify(folder, public).as_dict()
        except ep.EvidenceError as exc:
            report = ep.VerifyReport(pack=str(folder))
            report.add("folder-missing", str(folder), str(exc))
            return report.as_dict()

    def _verify(self, args: dict[str, Any]) -> dict[str, Any]:
        trusted = args["public_key"] or (str(ep.public_key_path_for(Path(args["key"]))) if args["key"] else None)
        if not trusted:
            raise ep.EvidenceError(
                "public_key: state=verified needs the firm's public key (public_key, or key whose .pub is trusted)"
            )
        public = ep.load_public_key(trusted)
        packs = [self._verify_one(folder, public) for folder in args["path"]]
        ok = all(p["ok"] for p in packs)
        out: dict[str, Any] = {"changed": False, "ok": ok, "packs": packs}
        failed = [p for p in packs if not p["ok"]]
        out["msg"] = f"{len(packs) - len(failed)} of {len(packs)} pack(s) verified"
        if failed and args["fail_on_problems"]:
            out["failed"] = True
            out["msg"] = "evidence_pack: " + "; ".join(f"{p['pack']}: {', '.join(p['problems'])}" for p in failed)
        return out
