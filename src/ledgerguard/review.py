"""``ledgerguard review``: after the incident, the post-incident review (复盘) built from the evidence alone.

- ``review draft INCIDENT_ID`` reads ``<evidence root>/<id>/incident.json``, ``report.json`` and ``timeline.jsonl``
  (and the drills' histories under the evidence root, for the RTO / RPO targets) and writes a draft review in
  zh-CN and en to ``<id>/review/review.<lang>.md``: the timeline from detection to containment to each client
  verified, what went well and badly by the figures, the cause per client, the incident's action items and the
  customers' answers. It never contacts a host; a file it cannot read is named with the reason.
- ``review action add|list|done`` keeps action items in ``<evidence root>/actions.json``, one file across incidents
  (the periodic compliance report lists the overdue ones: roles/report/tasks/compliance_actions.yml).
- ``review followup INCIDENT_ID`` writes a short satisfaction form per client of the incident
  (``<id>/review/followup/<client>.<lang>.md``), in the languages of the client's contacts (their preferred
  language, as the incident's notices recorded it in ``notices/index.json``; zh-CN and en for a client without);
  ``review answer INCIDENT_ID CLIENT --score N`` records an answer in ``<id>/review/followup/answers.json``.

Files written beside a signed evidence pack are not in its manifest: sign the folder again once the review is final.
Exit codes: 0 done, 2 bad input (a missing or unreadable file, a bad date, owner, score or id).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import fcntl
import json
import os
import re
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ledgerguard import collection
from ledgerguard.common import EXIT_OK, BadInput

ACTIONS_FILE = "actions.json"
REVIEW_DIR = "review"
LANGS = ("zh-CN", "en")
DEFAULT_TIMEZONE = "Asia/Shanghai"
DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
ACTION_ID_RE = re.compile(r"^A-(\d{3,})$")
OWNER_MAX, TEXT_MAX, COMMENT_MAX = 64, 500, 2000
SCORES = range(1, 6)


# ----------------------------------------------------------------------------------------------------- small helpers


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


def iso_utc(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def parse_time(value: Any) -> dt.datetime | None:
    """An ISO time from the evidence (``...Z`` or with an offset); None when empty or not a time."""
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        moment = dt.datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise BadInput(f"--timezone {name!r} is not a known IANA zone name; give one such as Asia/Shanghai") from None


def today(tz: ZoneInfo) -> dt.date:
    return dt.datetime.now(tz).date()


def parse_date(text: str, option: str) -> dt.date:
    if not DATE_RE.match(text or ""):
        raise BadInput(f"{option} {text!r}: not a date; write it as YYYY-MM-DD, e.g. 2026-12-31")
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise BadInput(f"{option} {text}: no such day in the calendar; write a real date as YYYY-MM-DD") from None


def clean_text(value: str, option: str, limit: int, single_line: bool = True) -> str:
    text = (value or "").strip()
    if not text:
        raise BadInput(f"{option} is empty; give a non-empty text")
    if len(text) > limit:
        raise BadInput(f"{option} is {len(text)} characters long; keep it to {limit}")
    bad = [c for c in text if ord(c) < 32 and not (c == "\n" and not single_line)]
    if bad:
        raise BadInput(f"{option} holds a control character ({bad[0]!r}); write it on one line without tabs")
    return text


def check_owner(value: str) -> str:
    owner = clean_text(value, "--owner", OWNER_MAX)
    if not any(c.isalnum() for c in owner):
        raise BadInput(f"--owner {owner!r}: name a person (letters or characters), e.g. --owner 王会计")
    return owner


def read_json(path: Path, what: str) -> Any:
    """JSON from the evidence, or BadInput naming the file and why it could not be read."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise BadInput(f"cannot read {path}: no such file ({what})") from None
    except UnicodeDecodeError:
        raise BadInput(f"cannot read {path}: not UTF-8 text ({what})") from None
    except OSError as exc:
        raise BadInput(f"cannot read {path}: {exc.strerror} ({what})") from None
    try:
        return json.loads(text)
    except ValueError as exc:
        raise BadInput(f"cannot read {path}: not valid JSON ({exc}) ({what})") from None


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file and a rename (mode 0600)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def dump(data: Any) -> str:
    return json.dumps(data, ensure_ascii=False, indent=2, sort_keys=True) + "\n"


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    """An exclusive lock on ``<path>.lock`` while a JSON file is read, changed and written."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(f"{path}.lock", os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as exc:
        raise BadInput(f"cannot lock {path}: {exc.strerror}; check the folder's permissions") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def duration_text(seconds: float | None, lang: str) -> str:
    if seconds is None:
        return "-"
    total = int(round(float(seconds)))
    d, rest = divmod(total, 86400)
    h, rest = divmod(rest, 3600)
    m, s = divmod(rest, 60)
    units = ("天", "小时", "分", "秒") if lang == "zh-CN" else (" d", " h", " min", " s")
    parts = [f"{n}{u}" for n, u in zip((d, h, m, s), units, strict=True) if n]
    return ("" if lang == "zh-CN" else " ").join(parts) or f"0{units[3]}"


# ------------------------------------------------------------------------------------------------------- the evidence


def default_root() -> Path:
    return collection.module("plugins.plugin_utils.evidence_pack").default_evidence_root().resolve()


def evidence_root(args: argparse.Namespace) -> Path:
    return Path(args.evidence_dir).expanduser().resolve() if getattr(args, "evidence_dir", None) else default_root()


@dataclass
class Evidence:
    """What the review reads from one incident's evidence folder (never the hosts)."""

    folder: Path
    incident: dict[str, Any]
    report: dict[str, Any]
    timeline: list[dict[str, Any]] = field(default_factory=list)
    unread: list[str] = field(default_factory=list)  # "<path>: <reason>" of optional files that could not be read

    @property
    def clients(self) -> list[dict[str, Any]]:
        return [c for c in self.report.get("clients") or [] if isinstance(c, dict)]


def load_evidence(root: Path, incident_id: str) -> Evidence:
    folder = root / incident_id
    if not folder.is_dir():
        raise BadInput(
            f"no evidence folder {folder} for incident {incident_id}; check the id and --evidence-dir "
            f"(the folders there: {', '.join(sorted(p.name for p in root.glob('INC-*'))[:10]) or 'none'})"
        )
    incident = read_json(folder / "incident.json", "the incident object")
    report = read_json(folder / "report.json", "the incident report; it is written at the end of the incident run")
    for path, data in ((folder / "incident.json", incident), (folder / "report.json", report)):
        if not isinstance(data, dict):
            raise BadInput(f"cannot read {path}: expected a JSON object, found {type(data).__name__}")
    ev = Evidence(folder, incident, report)
    path = folder / "timeline.jsonl"
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        ev.unread.append(f"{path}: {getattr(exc, 'strerror', None) or exc.__class__.__name__}")
        lines = []
    for number, line in enumerate(lines, start=1):
        try:
            event = json.loads(line)
        except ValueError:
            ev.unread.append(f"{path}: line {number} is not JSON (the rest of the timeline was not read)")
            break
        if isinstance(event, dict):
            ev.timeline.append(event)
    return ev


def drill_records(root: Path, extra: list[str]) -> tuple[list[dict[str, Any]], list[str]]:
    """Drill history records: the copies in each drill's evidence folder (<root>/*/hosts/*/history.jsonl) and the
    files given. Returns (records, "<path>: <reason>" for files that could not be read)."""
    paths = sorted(root.glob("*/hosts/*/history.jsonl")) + [Path(p).expanduser() for p in extra]
    records, unread = [], []
    for path in paths:
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            unread.append(f"{path}: {getattr(exc, 'strerror', None) or exc.__class__.__name__}")
            continue
        for line in text.splitlines():
            with contextlib.suppress(ValueError):
                rec = json.loads(line)
                if isinstance(rec, dict) and rec.get("kind", "drill") == "drill":
                    records.append(rec)
    return records, unread


def drill_for_client(records: list[dict[str, Any]], client_id: str, before: dt.datetime | None) -> dict[str, Any]:
    """The newest drill result of a client (finished by ``before`` when given): its measured RTO / RPO, its
    targets, the drill id."""
    best: dict[str, Any] = {}
    best_time = None
    for rec in records:
        finished = parse_time(rec.get("finished")) or parse_time(rec.get("started"))
        if finished is None or (before is not None and finished > before):
            continue
        for c in rec.get("clients") or []:
            if isinstance(c, dict) and c.get("id") == client_id and (best_time is None or finished > best_time):
                best_time = finished
                best = dict(c, drill_id=rec.get("drill_id"), drill_finished=rec.get("finished"))
    return best


# ---------------------------------------------------------------------------------------------------------- the draft

LABELS = {
    "zh-CN": {
        "title": "事件复盘(草稿)",
        "draft_note": "本文由 ledgerguard 根据证据自动生成,供复盘会议讨论修改;数字均取自证据文件。",
        "incident": "事件编号", "cause_declared": "申报原因", "operator": "处置人", "summary": "概述",
        "tz": "时间均为", "sources": "读取的证据", "unread": "未能读取的文件", "timeline": "时间线",
        "figures": "关键数字", "well": "做得好的", "badly": "需要改进的", "causes": "各客户原因",
        "actions": "改进措施(行动项)", "answers": "客户满意度回访", "none": "无",
        "ev_loss_started": "损失可能开始", "ev_detected": "发现数据损失",
        "ev_declared": "宣布事件,开始处置(操作人 {0})",
        "ev_rerun": "再次运行处置流程", "ev_frozen": "{0}:冻结写入(遏制),发现写入进程 {1} 个,已停止 {2} 个",
        "ev_started": "{0}({1}):开始恢复", "ev_verified": "{0}({1}):恢复完成并校验通过",
        "ev_failed": "{0}({1}):恢复失败:{2}", "ev_thawed": "{0}:解除冻结", "ev_writer": "{0}:写入进程 {1} 已{2}",
        "act_stopped": "暂停", "act_killed": "终止", "ev_report": "生成事件报告",
        "ev_step_failed": "{0}:步骤失败:{1}", "ev_run_end": "处置流程结束",
        "fig_status": "事件结果", "fig_rto": "实际RTO(宣布到最后一个客户校验通过)", "fig_loss": "最大数据损失窗口",
        "fig_clients": "客户:恢复 {0} / 共 {1}", "fig_files": "恢复文件 {0} 个,隔离文件 {1} 个,需人工复核文件 {2} 个",
        "fig_writers": "写入进程:发现 {0},停止 {1},终止 {2},解冻时仍在运行 {3}",
        "client": "客户", "rto": "本次RTO", "rto_target": "演练RTO目标", "drill_rto": "最近演练实测RTO",
        "loss": "数据损失窗口", "rpo_target": "演练RPO目标", "result": "结果",
        "ok": "已恢复并校验", "failed": "失败",
        "w_rto": "{0}:RTO {1},在演练目标 {2} 之内", "b_rto": "{0}:RTO {1},超过演练目标 {2}",
        "n_target": "{0}:没有演练RTO目标记录,无法比较(请安排演练)",
        "w_rpo": "{0}:数据损失窗口 {1},在RPO目标 {2} 之内", "b_rpo": "{0}:数据损失窗口 {1},超过RPO目标 {2}",
        "w_all": "全部 {0} 个客户已恢复并校验通过", "b_failed": "{0}:未恢复({1})",
        "b_review": "{0}:{1} 个文件需人工复核", "b_unverified": "{0}:恢复后未通过校验",
        "w_writers": "发现的 {0} 个写入进程均在冻结时被停止", "b_writers": "解冻时仍有 {0} 个写入进程在运行",
        "b_late": "{0}:恢复过程中出现迟到的写入进程 {1} 个", "b_repo": "备份仓库有损坏:{0}",
        "b_problem": "报告中的问题:{0}", "b_reruns": "处置流程运行了 {0} 次", "b_skipped": "{0}:跳过了 {1} 个受损快照",
        "w_thawed": "所有主机已解除冻结", "b_not_thawed": "{0}:未解除冻结({1})",
        "c_cause": "原因", "c_source_detected": "根据证据检测", "c_source_declared": "沿用申报原因,证据中未检测到迹象",
        "c_evidence": "证据", "c_writers": "相关写入进程",
        "a_id": "编号", "a_text": "措施", "a_owner": "负责人", "a_due": "截止日期", "a_status": "状态",
        "a_hint": "添加:ledgerguard review action add --incident {0} --text ... --owner ... --due YYYY-MM-DD",
        "q_score": "评分", "q_comment": "意见", "q_avg": "平均分 {0}({1} 位客户回复)",
        "q_missing": "未回复:{0}",
        "drills_read": "演练记录 {0} 条({1}/*/hosts/*/history.jsonl)",
        "drill_none": "在 {0} 下没有找到演练记录,RTO/RPO 目标未知",
    },
    "en": {
        "title": "Post-incident review (draft)",
        "draft_note": "Generated by ledgerguard from the evidence, to be discussed and edited in the review meeting; "
        "every figure is taken from the evidence files.",
        "incident": "Incident", "cause_declared": "Declared cause", "operator": "Operator", "summary": "Summary",
        "tz": "Times are in", "sources": "Evidence read", "unread": "Files that could not be read",
        "timeline": "Timeline", "figures": "Figures", "well": "What went well", "badly": "What went badly",
        "causes": "Cause per client", "actions": "Action items", "answers": "Customer satisfaction follow-up",
        "none": "none",
        "ev_loss_started": "Loss may have started", "ev_detected": "Loss detected",
        "ev_declared": "Incident declared, response started (operator {0})", "ev_rerun": "Response run again",
        "ev_frozen": "{0}: writes frozen (containment); {1} writer(s) found, {2} stopped",
        "ev_started": "{0} ({1}): restore started", "ev_verified": "{0} ({1}): restored and verified",
        "ev_failed": "{0} ({1}): restore failed: {2}", "ev_thawed": "{0}: thawed",
        "ev_writer": "{0}: writer {1} {2}", "act_stopped": "stopped", "act_killed": "killed",
        "ev_report": "Incident report written",
        "ev_step_failed": "{0}: step failed: {1}", "ev_run_end": "Response run ended",
        "fig_status": "Outcome", "fig_rto": "RTO achieved (declaration to the last client verified)",
        "fig_loss": "Largest data-loss window", "fig_clients": "Clients: {0} restored of {1}",
        "fig_files": "{0} files restored, {1} quarantined, {2} left for a person to review",
        "fig_writers": "Writers: {0} found, {1} stopped, {2} killed, {3} still running at the thaw",
        "client": "Client", "rto": "RTO here", "rto_target": "Drill RTO target", "drill_rto": "Last drill's RTO",
        "loss": "Data-loss window", "rpo_target": "Drill RPO target", "result": "Result",
        "ok": "restored and verified", "failed": "failed",
        "w_rto": "{0}: RTO {1}, within the drills' target of {2}",
        "b_rto": "{0}: RTO {1}, over the drills' target of {2}",
        "n_target": "{0}: no drill RTO target on record, nothing to compare with (schedule a drill)",
        "w_rpo": "{0}: data-loss window {1}, within the RPO target of {2}",
        "b_rpo": "{0}: data-loss window {1}, over the RPO target of {2}",
        "w_all": "All {0} clients restored and verified", "b_failed": "{0}: not restored ({1})",
        "b_review": "{0}: {1} file(s) left for a person to review",
        "b_unverified": "{0}: not verified after the restore",
        "w_writers": "All {0} writer(s) found were stopped at the freeze",
        "b_writers": "{0} writer(s) still running at the thaw",
        "b_late": "{0}: {1} late writer(s) appeared during the restore",
        "b_repo": "The backup repository was damaged: {0}",
        "b_problem": "Problem in the report: {0}", "b_reruns": "The response ran {0} times",
        "b_skipped": "{0}: {1} damaged snapshot(s) skipped",
        "w_thawed": "Every host was thawed", "b_not_thawed": "{0}: not thawed ({1})",
        "c_cause": "cause", "c_source_detected": "detected from the evidence",
        "c_source_declared": "the declared cause; no sign of it was detected", "c_evidence": "Evidence",
        "c_writers": "Writers involved",
        "a_id": "Id", "a_text": "Action", "a_owner": "Owner", "a_due": "Due", "a_status": "Status",
        "a_hint": "Add one: ledgerguard review action add --incident {0} --text ... --owner ... --due YYYY-MM-DD",
        "q_score": "Score", "q_comment": "Comment", "q_avg": "Average {0} ({1} client(s) answered)",
        "q_missing": "No answer yet: {0}",
        "drills_read": "{0} drill record(s) ({1}/*/hosts/*/history.jsonl)",
        "drill_none": "No drill records found under {0}; the RTO / RPO targets are unknown",
    },
}  # fmt: skip


@dataclass
class Review:
    """The figures of a review, computed once and rendered per language."""

    evidence: Evidence
    drills: list[dict[str, Any]]
    drills_root: Path
    unread: list[str]
    actions: list[dict[str, Any]]
    answers: dict[str, list[dict[str, Any]]]
    tz: ZoneInfo

    def local(self, moment: dt.datetime | None) -> str:
        return moment.astimezone(self.tz).strftime("%Y-%m-%d %H:%M:%S") if moment else "-"


def client_label(c: dict[str, Any]) -> str:
    return f"{c.get('name') or c.get('id')} ({c.get('id')})" if c.get("name") else str(c.get("id"))


def timeline_entries(rv: Review, lang: str) -> list[tuple[dt.datetime, str]]:
    t = LABELS[lang]
    inc, rep = rv.evidence.incident, rv.evidence.report
    out: list[tuple[dt.datetime | None, str]] = [
        (parse_time(inc.get("loss_started")), t["ev_loss_started"]),
        (parse_time(inc.get("detected_at")), t["ev_detected"]),
        (parse_time(inc.get("declared_at")), t["ev_declared"].format(inc.get("operator") or "-")),
    ]
    out += [(parse_time(run), t["ev_rerun"]) for run in (inc.get("runs") or [])[1:]]
    rows = [r for r in rep.get("containment") or [] if isinstance(r, dict)]
    for h in rep.get("hosts") or []:
        mine = [r for r in rows if r.get("host") == h.get("host") and r.get("role") == "writer"]
        acted = [r for r in mine if r.get("action") in ("stopped", "killed")]
        out.append((parse_time(h.get("frozen_at")), t["ev_frozen"].format(h.get("host"), len(mine), len(acted))))
        out.append((parse_time(h.get("thawed_at")), t["ev_thawed"].format(h.get("host"))))
    for r in rows:
        if r.get("role") == "writer" and r.get("action") in ("stopped", "killed"):
            what = f"{r.get('comm') or r.get('exe') or '?'} (pid {r.get('pid')}, {r.get('user') or '-'})"
            out.append(
                (parse_time(r.get("acted_at")), t["ev_writer"].format(r.get("host"), what, t["act_" + r["action"]]))
            )
    for c in rv.evidence.clients:
        out.append((parse_time(c.get("started")), t["ev_started"].format(client_label(c), c.get("host"))))
        if c.get("status") == "ok" and c.get("verified", True):
            out.append((parse_time(c.get("finished")), t["ev_verified"].format(client_label(c), c.get("host"))))
        else:
            why = c.get("msg") or c.get("status") or "-"
            out.append((parse_time(c.get("finished")), t["ev_failed"].format(client_label(c), c.get("host"), why)))
    for e in rv.evidence.timeline:
        if e.get("event") == "task" and e.get("status") in ("failed", "unreachable") and not e.get("ignored"):
            out.append((parse_time(e.get("time")), t["ev_step_failed"].format(e.get("host") or "-", e.get("task"))))
    out.append((parse_time(rep.get("generated_at")), t["ev_report"]))
    ends = [e for e in rv.evidence.timeline if e.get("event") == "run_end"]
    if ends:
        out.append((parse_time(ends[-1].get("time")), t["ev_run_end"]))
    return sorted(((when, text) for when, text in out if when is not None), key=lambda item: item[0])


def client_rows(rv: Review) -> list[dict[str, Any]]:
    """Per client: this incident's RTO (declaration to verified) and data-loss window, the drills' targets."""
    declared = parse_time(rv.evidence.incident.get("declared_at"))
    rows = []
    for c in rv.evidence.clients:
        finished = parse_time(c.get("finished"))
        drill = drill_for_client(rv.drills, str(c.get("id")), None)
        targets = drill.get("targets") or {}
        rows.append(
            {
                "client": c,
                "ok": c.get("status") == "ok" and bool(c.get("verified", True)),
                "rto": (finished - declared).total_seconds()
                if finished and declared and c.get("status") == "ok"
                else None,
                "loss": c.get("data_loss_window_seconds"),
                "rto_target": targets.get("rto_seconds") or None,
                "rpo_target": targets.get("rpo_seconds") or None,
                "drill_rto": drill.get("rto_seconds"),
                "drill_id": drill.get("drill_id"),
            }
        )
    return rows


def judgements(rv: Review, lang: str) -> tuple[list[str], list[str]]:
    t = LABELS[lang]
    well, badly = [], []
    rep = rv.evidence.report
    summary = rep.get("summary") or {}
    rows = client_rows(rv)
    for row in rows:
        who = client_label(row["client"])
        if row["rto"] is not None and row["rto_target"]:
            args = (who, duration_text(row["rto"], lang), duration_text(row["rto_target"], lang))
            (well if row["rto"] <= float(row["rto_target"]) else badly).append(
                t["w_rto" if row["rto"] <= float(row["rto_target"]) else "b_rto"].format(*args)
            )
        elif row["rto"] is not None:
            badly.append(t["n_target"].format(who))
        if row["loss"] is not None and row["rpo_target"]:
            fine = float(row["loss"]) <= float(row["rpo_target"])
            args = (who, duration_text(row["loss"], lang), duration_text(row["rpo_target"], lang))
            (well if fine else badly).append(t["w_rpo" if fine else "b_rpo"].format(*args))
    failed = [r for r in rows if not r["ok"]]
    if rows and not failed:
        well.append(t["w_all"].format(len(rows)))
    for r in failed:
        c = r["client"]
        if c.get("status") == "ok":
            badly.append(t["b_unverified"].format(client_label(c)))
        else:
            badly.append(t["b_failed"].format(client_label(c), c.get("msg") or c.get("status") or "-"))
    review = {}
    for f in rep.get("files_to_review") or []:
        review[f.get("client")] = review.get(f.get("client"), 0) + 1
    names = {c.get("id"): c for c in rv.evidence.clients}
    for cid, n in sorted(review.items(), key=lambda kv: str(kv[0])):
        badly.append(t["b_review"].format(client_label(names.get(cid) or {"id": cid}), n))
    for c in rv.evidence.clients:
        if c.get("late_writers"):
            badly.append(t["b_late"].format(client_label(c), len(c["late_writers"])))
        if c.get("skipped"):
            badly.append(t["b_skipped"].format(client_label(c), len(c["skipped"])))
    cont = summary.get("containment") or {}
    if cont.get("still_running"):
        badly.append(t["b_writers"].format(cont["still_running"]))
    elif cont.get("writers_found"):
        well.append(t["w_writers"].format(cont["writers_found"]))
    hosts = rep.get("hosts") or []
    not_thawed = [h for h in hosts if h.get("frozen") and not h.get("thawed")]
    for h in not_thawed:
        badly.append(t["b_not_thawed"].format(h.get("host"), h.get("thaw_msg") or "-"))
    if hosts and any(h.get("frozen") for h in hosts) and not not_thawed:
        well.append(t["w_thawed"])
    damage = rep.get("repository_damage") or {}
    if summary.get("repository_damaged") or damage:
        badly.append(t["b_repo"].format("; ".join(map(str, damage.get("errors") or [])) or "-"))
    for problem in rep.get("problems") or []:
        badly.append(
            t["b_problem"].format(problem if isinstance(problem, str) else json.dumps(problem, ensure_ascii=False))
        )
    runs = rv.evidence.incident.get("runs") or []
    if len(runs) > 1:
        badly.append(t["b_reruns"].format(len(runs)))
    return well, badly


def render_draft(rv: Review, lang: str) -> str:
    t = LABELS[lang]
    inc, rep = rv.evidence.incident, rv.evidence.report
    summary = rep.get("summary") or {}
    iid = inc.get("incident_id") or rv.evidence.folder.name
    lines = [f"# {t['title']}: {iid}", "", f"> {t['draft_note']}", ""]
    lines += [
        f"- {t['incident']}: {iid}",
        f"- {t['cause_declared']}: {inc.get('cause') or '-'}",
        f"- {t['operator']}: {inc.get('operator') or '-'}",
        f"- {t['summary']}: {inc.get('summary') or '-'}",
        f"- {t['tz']}: {rv.tz.key}",
        f"- {t['sources']}: {rv.evidence.folder}/incident.json, report.json, timeline.jsonl; "
        + t["drills_read"].format(len(rv.drills), rv.drills_root),
    ]
    if rv.unread:
        lines += ["", f"**{t['unread']}:**", ""] + [f"- {item}" for item in rv.unread]
    lines += [
        "",
        f"## {t['timeline']}",
        "",
        "| # | " + ("时间" if lang == "zh-CN" else "Time") + " | |",
        "|---|---|---|",
    ]
    for n, (when, text) in enumerate(timeline_entries(rv, lang), start=1):
        lines.append(f"| {n} | {rv.local(when)} | {text} |")
    cont = summary.get("containment") or {}
    lines += [
        "",
        f"## {t['figures']}",
        "",
        f"- {t['fig_status']}: {rep.get('status') or summary.get('status') or '-'}",
        f"- {t['fig_rto']}: {duration_text(summary.get('rto_seconds'), lang)}"
        + (f" ({summary['rto_seconds']:g} s)" if summary.get("rto_seconds") is not None else ""),
        f"- {t['fig_loss']}: {duration_text(summary.get('max_data_loss_window_seconds'), lang)}",
        "- " + t["fig_clients"].format(summary.get("clients_restored", "-"), summary.get("clients_total", "-")),
        "- "
        + t["fig_files"].format(
            summary.get("files_restored", "-"),
            summary.get("files_quarantined", "-"),
            summary.get("files_to_review", "-"),
        ),  # fmt: skip
        "- "
        + t["fig_writers"].format(
            cont.get("writers_found", 0), cont.get("stopped", 0), cont.get("killed", 0), cont.get("still_running", 0)
        ),  # fmt: skip
        "",
        f"| {t['client']} | {t['result']} | {t['rto']} | {t['rto_target']} | {t['drill_rto']} | {t['loss']} "
        f"| {t['rpo_target']} |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in client_rows(rv):
        c = row["client"]
        drill = f" ({row['drill_id']})" if row["drill_id"] else ""
        result = t["ok"] if row["ok"] else f"{t['failed']}: {c.get('msg') or c.get('status')}"
        lines.append(
            f"| {client_label(c)} | {result} "
            f"| {duration_text(row['rto'], lang)} | {duration_text(row['rto_target'], lang)} "
            f"| {duration_text(row['drill_rto'], lang)}{drill} | {duration_text(row['loss'], lang)} "
            f"| {duration_text(row['rpo_target'], lang)} |"
        )
    if not rv.drills:
        lines += ["", t["drill_none"].format(rv.drills_root)]
    well, badly = judgements(rv, lang)
    for title, items in ((t["well"], well), (t["badly"], badly)):
        lines += ["", f"## {title}", ""] + ([f"- {i}" for i in items] or [f"- {t['none']}"])
    lines += ["", f"## {t['causes']}", ""]
    for c in rv.evidence.clients:
        cause = c.get("cause") or {}
        source = t["c_source_detected"] if cause.get("source") == "detected" else t["c_source_declared"]
        signs = ", ".join(cause.get("signs") or [])
        lines.append(f"### {client_label(c)}")
        lines.append("")
        lines.append(f"- {t['c_cause']}: **{cause.get('cause') or '-'}** ({source}{'; ' + signs if signs else ''})")
        for item in cause.get("evidence") or []:
            lines.append(f"  - {t['c_evidence']}: {item}")
        for w in cause.get("writers") or []:
            lines.append(f"  - {t['c_writers']}: {json.dumps(w, ensure_ascii=False) if isinstance(w, dict) else w}")
        lines.append("")
    lines += [f"## {t['actions']}", ""]
    mine = [a for a in rv.actions if a.get("incident") == iid]
    if mine:
        lines += [f"| {t['a_id']} | {t['a_text']} | {t['a_owner']} | {t['a_due']} | {t['a_status']} |",
                  "|---|---|---|---|---|"]  # fmt: skip
        lines += [f"| {a['id']} | {a['text']} | {a['owner']} | {a['due']} | {a['status']} |" for a in mine]
    else:
        lines.append(f"- {t['none']}. {t['a_hint'].format(iid)}")
    lines += ["", f"## {t['answers']}", ""]
    latest = {cid: items[-1] for cid, items in rv.answers.items() if items}
    if latest:
        avg = sum(a["score"] for a in latest.values()) / len(latest)
        lines.append(f"- {t['q_avg'].format(f'{avg:.1f}', len(latest))}")
        for c in rv.evidence.clients:
            a = latest.get(c.get("id"))
            if a:
                lines.append(
                    f"- {client_label(c)}: {t['q_score']} {a['score']}/5; {t['q_comment']}: {a.get('comment') or '-'}"
                )
    missing = [client_label(c) for c in rv.evidence.clients if c.get("id") not in latest]
    if missing:
        lines.append(f"- {t['q_missing'].format(', '.join(missing))}")
    return "\n".join(lines).rstrip() + "\n"


def build_review(root: Path, incident_id: str, drill_files: list[str], tz: ZoneInfo) -> Review:
    ev = load_evidence(root, incident_id)
    drills, unread = drill_records(root, drill_files)
    answers_path = ev.folder / REVIEW_DIR / "followup" / "answers.json"
    answers = read_json(answers_path, "the follow-up answers") if answers_path.exists() else {}
    return Review(ev, drills, root, ev.unread + unread, load_actions(root / ACTIONS_FILE), answers, tz)


def cmd_draft(args: argparse.Namespace) -> int:
    root = evidence_root(args)
    rv = build_review(root, args.incident_id, args.drill_history, zone(args.timezone))
    langs = langs_of(args.lang)
    texts = {lang: render_draft(rv, lang) for lang in langs}
    if args.stdout:
        sys.stdout.write("\n".join(texts.values()))
        return EXIT_OK
    for lang, text in texts.items():
        path = rv.evidence.folder / REVIEW_DIR / f"review.{lang}.md"
        if path.exists() and not args.force:
            try:
                same = path.read_text(encoding="utf-8") == text
            except (OSError, UnicodeDecodeError):
                same = False
            if not same:
                raise BadInput(f"{path} exists and differs from a new draft (edited?); give --force to replace it")
        write_atomic(path, text)
        print(f"wrote {path}")
    for item in rv.unread:
        print(f"ledgerguard review: could not read {item}", file=sys.stderr)
    return EXIT_OK


def langs_of(text: str) -> list[str]:
    langs = [x.strip() for x in (text or "").split(",") if x.strip()]
    bad = [x for x in langs if x not in LANGS]
    if bad or not langs:
        raise BadInput(f"--lang {text!r}: expected zh-CN, en or both (zh-CN,en)")
    return langs


# ------------------------------------------------------------------------------------------------------ action items


def load_actions(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    data = read_json(path, "the action items")
    if not isinstance(data, dict) or not isinstance(data.get("actions"), list):
        raise BadInput(f"cannot read {path}: expected an object with an 'actions' list; restore it from a backup")
    for n, item in enumerate(data["actions"], start=1):
        missing = [
            k
            for k in ("id", "incident", "text", "owner", "due", "status")
            if not isinstance(item, dict) or k not in item
        ]
        if missing:
            raise BadInput(f"cannot read {path}: action #{n} lacks {', '.join(missing)}; fix the file")
    return data["actions"]


def save_actions(path: Path, actions: list[dict[str, Any]]) -> None:
    write_atomic(path, dump({"version": 1, "actions": actions}))


def is_overdue(action: dict[str, Any], on: dt.date) -> bool:
    return action.get("status") == "open" and str(action.get("due")) < on.isoformat()


def cmd_action_add(args: argparse.Namespace) -> int:
    root = evidence_root(args)
    tz = zone(args.timezone)
    if not (root / args.incident / "incident.json").is_file():
        raise BadInput(
            f"--incident {args.incident}: no {root / args.incident / 'incident.json'}; an action belongs to an "
            "incident with evidence (check the id and --evidence-dir)"
        )
    text = clean_text(args.text, "--text", TEXT_MAX)
    owner = check_owner(args.owner)
    due = parse_date(args.due, "--due")
    if due < today(tz):
        raise BadInput(f"--due {due}: the date is past (today is {today(tz)} in {tz.key}); give today or a later date")
    path = root / ACTIONS_FILE
    with locked(path):
        actions = load_actions(path)
        numbers = [int(m.group(1)) for a in actions if (m := ACTION_ID_RE.match(str(a.get("id"))))]
        action = {
            "id": f"A-{max(numbers, default=0) + 1:03d}",
            "incident": args.incident,
            "text": text,
            "owner": owner,
            "due": due.isoformat(),
            "status": "open",
            "created_at": iso_utc(utc_now()),
            "closed_at": None,
            "note": "",
        }
        save_actions(path, [*actions, action])
    print(f"added {action['id']} ({args.incident}): {text} -- {owner}, due {action['due']} ({path})")
    return EXIT_OK


def cmd_action_list(args: argparse.Namespace) -> int:
    root = evidence_root(args)
    tz = zone(args.timezone)
    on = parse_date(args.as_of, "--as-of") if args.as_of else today(tz)
    actions = load_actions(root / ACTIONS_FILE)
    chosen = [
        dict(a, overdue=is_overdue(a, on))
        for a in actions
        if (not args.incident or a["incident"] == args.incident)
        and (args.status == "all" or a["status"] == args.status)
        and (not args.overdue or is_overdue(a, on))
    ]
    if args.json:
        print(json.dumps(chosen, ensure_ascii=False, indent=2))
        return EXIT_OK
    for a in chosen:
        late = f"  OVERDUE by {(on - dt.date.fromisoformat(a['due'])).days} d" if a["overdue"] else ""
        print(f"{a['id']}  {a['status']:<4}  due {a['due']}  {a['owner']}  {a['incident']}  {a['text']}{late}")
    if not chosen:
        print(f"no action items match in {root / ACTIONS_FILE}")
    return EXIT_OK


def cmd_action_done(args: argparse.Namespace) -> int:
    root = evidence_root(args)
    path = root / ACTIONS_FILE
    note = clean_text(args.note, "--note", TEXT_MAX) if args.note else ""
    with locked(path):
        actions = load_actions(path)
        found = [a for a in actions if a["id"] == args.action_id]
        if not found:
            known = ", ".join(a["id"] for a in actions) or "none"
            raise BadInput(f"no action {args.action_id} in {path} (known: {known}); 'ledgerguard review action list'")
        action = found[0]
        if action["status"] == "done":
            raise BadInput(
                f"action {args.action_id} is already done (closed {action.get('closed_at')}); nothing changed"
            )
        action.update(status="done", closed_at=iso_utc(utc_now()), note=note)
        save_actions(path, actions)
    print(f"closed {action['id']} ({action['incident']}): {action['text']} at {action['closed_at']}")
    return EXIT_OK


# ------------------------------------------------------------------------------------------------- customer follow-up

FOLLOWUP = {
    "zh-CN": (
        "# 服务满意度回访:{name}\n\n"
        "尊敬的{name}:\n\n"
        "关于事件 {iid},贵公司的账套数据{result}。为改进我们的服务,请您抽出一分钟回答以下问题:\n\n"
        "1. 您对本次处理的总体满意度(1 = 很不满意,5 = 非常满意):____\n"
        "2. 我们的通知是否及时、清楚?(是 / 否)____\n"
        "3. 恢复后的数据是否有任何问题?____\n"
        "4. 其他意见或建议:____\n\n"
        "感谢您的支持。\n\n"
        '<!-- 记录回复:ledgerguard review answer {iid} {cid} --score N --comment "..." -->\n'
    ),
    "en": (
        "# Satisfaction follow-up: {name}\n\n"
        "Dear {name},\n\n"
        "Regarding incident {iid}, your books {result}. To improve our service, please take a minute to answer:\n\n"
        "1. Overall, how satisfied are you with how we handled it (1 = very dissatisfied, 5 = very satisfied)? ____\n"
        "2. Were our notices timely and clear? (yes / no) ____\n"
        "3. Have you found any problem in the restored data? ____\n"
        "4. Anything else you would like to tell us: ____\n\n"
        "Thank you.\n\n"
        '<!-- Record the answer: ledgerguard review answer {iid} {cid} --score N --comment "..." -->\n'
    ),
}
FOLLOWUP_RESULT = {
    "zh-CN": ("已于 {when} 恢复并校验完成", "未能完全恢复,我们正在继续处理"),
    "en": ("were restored and verified on {when}", "could not be fully restored yet; we are still working on it"),
}


def render_followup(ev: Evidence, client: dict[str, Any], lang: str, tz: ZoneInfo) -> str:
    ok_text, failed_text = FOLLOWUP_RESULT[lang]
    finished = parse_time(client.get("finished"))
    ok = client.get("status") == "ok" and client.get("verified", True) and finished
    when = f"{finished.astimezone(tz):%Y-%m-%d %H:%M} ({tz.key})" if finished else ""
    iid = ev.incident.get("incident_id") or ev.folder.name
    name = client.get("name") or client.get("id")
    result = ok_text.format(when=when) if ok else failed_text
    return FOLLOWUP[lang].format(name=name, iid=iid, cid=client.get("id"), result=result)


def contact_langs(ev: Evidence) -> dict[str, list[str]]:
    """Each client's contacts' languages, as the incident's notice drafts recorded them (notices/index.json: one
    entry per client, milestone and contact language). Empty when the incident has no notices."""
    path = ev.folder / "notices" / "index.json"
    if not path.exists():
        return {}
    doc = read_json(path, "the customer notices' index")
    entries = doc.get("notices") if isinstance(doc, dict) else None
    if not isinstance(entries, list):
        raise BadInput(f"cannot read {path}: expected an object with a 'notices' list (the customer notices' index)")
    found: dict[str, set[str]] = {}
    for entry in entries:
        if isinstance(entry, dict) and entry.get("language") in LANGS:
            found.setdefault(str(entry.get("client")), set()).add(entry["language"])
    return {cid: [lang for lang in LANGS if lang in langs] for cid, langs in found.items()}


def cmd_followup(args: argparse.Namespace) -> int:
    ev = load_evidence(evidence_root(args), args.incident_id)
    tz = zone(args.timezone)
    # --lang chooses for every client; without it each client's form is in its contacts' languages.
    chosen = langs_of(args.lang) if args.lang else None
    by_client = {} if chosen else contact_langs(ev)
    clients = ev.clients
    if args.client:
        clients = [c for c in clients if c.get("id") in args.client]
        unknown = sorted(set(args.client) - {c.get("id") for c in clients})
        if unknown:
            raise BadInput(f"--client {', '.join(unknown)}: not a client of {args.incident_id} ({known_clients(ev)})")
    for c in clients:
        for lang in chosen or by_client.get(str(c.get("id"))) or list(LANGS):
            path = ev.folder / REVIEW_DIR / "followup" / f"{c.get('id')}.{lang}.md"
            write_atomic(path, render_followup(ev, c, lang, tz))
            print(f"wrote {path}")
    return EXIT_OK


def known_clients(ev: Evidence) -> str:
    return "its clients: " + (", ".join(str(c.get("id")) for c in ev.clients) or "none")


def cmd_answer(args: argparse.Namespace) -> int:
    ev = load_evidence(evidence_root(args), args.incident_id)
    if args.client not in {c.get("id") for c in ev.clients}:
        raise BadInput(f"{args.client}: not a client of {args.incident_id} ({known_clients(ev)})")
    if args.score not in SCORES:
        raise BadInput(
            f"--score {args.score}: expected a whole number from 1 (very dissatisfied) to 5 (very satisfied)"
        )
    comment = clean_text(args.comment, "--comment", COMMENT_MAX, single_line=False) if args.comment else ""
    by = clean_text(args.by, "--by", OWNER_MAX) if args.by else ""
    path = ev.folder / REVIEW_DIR / "followup" / "answers.json"
    with locked(path):
        answers = read_json(path, "the follow-up answers") if path.exists() else {}
        if not isinstance(answers, dict):
            raise BadInput(f"cannot read {path}: expected an object of client id -> answers")
        answer = {"score": args.score, "comment": comment, "recorded_by": by, "recorded_at": iso_utc(utc_now())}
        answers.setdefault(args.client, []).append(answer)
        write_atomic(path, dump(answers))
    print(f"recorded {args.client}'s answer to {args.incident_id}: score {args.score}/5 ({path})")
    return EXIT_OK


# ---------------------------------------------------------------------------------------------------------------- CLI


def add_subparser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``review draft|action|followup|answer`` on the CLI's subparsers; each sets ``func``."""
    from ledgerguard.playbook_cmd import identifier

    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--evidence-dir", help="evidence folder root (default: the collection's evidence root)")
    common.add_argument("--timezone", default=DEFAULT_TIMEZONE, help="wall clock for dates and times (%(default)s)")

    parser = subparsers.add_parser("review", help="after the incident: review draft, action items, follow-up")
    sub = parser.add_subparsers(dest="review_command", metavar="ACTION", required=True)
    p = sub.add_parser("draft", parents=[common], help="write the draft review (zh-CN, en) from the evidence")
    p.add_argument("incident_id", type=identifier, metavar="INCIDENT_ID")
    p.add_argument("--lang", default="zh-CN,en", help="zh-CN, en or both (default zh-CN,en)")
    p.add_argument("--drill-history", action="append", default=[], help="more drill history.jsonl files")
    p.add_argument("--stdout", action="store_true", help="print the draft instead of writing it")
    p.add_argument("--force", action="store_true", help="replace a draft that was edited")
    p.set_defaults(func=cmd_draft)

    action = sub.add_parser("action", help="action items kept in <evidence root>/actions.json")
    asub = action.add_subparsers(dest="action_command", metavar="ACTION", required=True)
    p = asub.add_parser("add", parents=[common], help="add an action item")
    p.add_argument("--incident", required=True, type=identifier, help="the incident it comes from")
    p.add_argument("--text", required=True, help="what is to be done")
    p.add_argument("--owner", required=True, help="who does it")
    p.add_argument("--due", required=True, help="due date, YYYY-MM-DD")
    p.set_defaults(func=cmd_action_add)
    p = asub.add_parser("list", parents=[common], help="list action items")
    p.add_argument("--incident", help="only this incident's")
    p.add_argument("--status", choices=("open", "done", "all"), default="all", help="(default all)")
    p.add_argument("--overdue", action="store_true", help="only open items past their due date")
    p.add_argument("--as-of", help="the day overdue is judged on, YYYY-MM-DD (default today)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_action_list)
    p = asub.add_parser("done", parents=[common], help="close an action item")
    p.add_argument("action_id", metavar="ACTION_ID", help="e.g. A-001")
    p.add_argument("--note", help="how it was done")
    p.set_defaults(func=cmd_action_done)

    p = sub.add_parser(
        "followup", parents=[common], help="write each client's satisfaction form in its contacts' languages"
    )
    p.add_argument("incident_id", type=identifier, metavar="INCIDENT_ID")
    p.add_argument("--client", action="append", help="only this client (repeatable)")
    p.add_argument(
        "--lang",
        default="",
        help="zh-CN, en or both for every client (default: each client's contacts' languages, as its notices "
        "recorded them; zh-CN,en for a client without)",
    )
    p.set_defaults(func=cmd_followup)

    p = sub.add_parser("answer", parents=[common], help="record a client's answer to the follow-up")
    p.add_argument("incident_id", type=identifier, metavar="INCIDENT_ID")
    p.add_argument("client", metavar="CLIENT", help="client id")
    p.add_argument("--score", type=int, required=True, help="1 (very dissatisfied) to 5 (very satisfied)")
    p.add_argument("--comment", help="the client's words")
    p.add_argument("--by", help="who recorded it")
    p.set_defaults(func=cmd_answer)
    return parser
