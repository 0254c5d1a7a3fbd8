"""``ledgerguard survey`` end to end (one playbook run through ansible-runner, real restic): a repository holding
clients backed up in different layouts (Chinese folder names), one client only another machine backs up, and one
client no snapshot holds. The survey names, per client, the snapshots, host, tags and in-snapshot path, and flags the
two the incident would not find with what to set."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ledgerguard import cli, survey

HOST = "books-a"


def restic(repo: str, pw: Path, *args: str, cwd: Path | None = None) -> str:
    env = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/root"), "LC_ALL": "C"}
    env.update(RESTIC_REPOSITORY=repo, RESTIC_PASSWORD_FILE=str(pw))
    res = subprocess.run(["restic", *args], env=env, cwd=cwd, capture_output=True, text=True, check=False)  # noqa: S607
    assert res.returncode == 0, res.stderr
    return res.stdout


def backup(repo: str, pw: Path, *args: str, host: str = HOST, cwd: Path | None = None) -> str:
    out = restic(repo, pw, "backup", "--json", "--host", host, "--tag", "nightly", *args, cwd=cwd)
    return [json.loads(line) for line in out.splitlines() if '"summary"' in line][-1]["snapshot_id"]


@pytest.fixture
def books(tmp_path):
    srv = tmp_path / "srv"
    names = {"c001": "杭州贸易", "c002": "宁波餐饮", "c003": "温州五金", "c004": "台州电子", "c005": "金华物流"}
    folders = {}
    for cid, name in names.items():
        folder = srv / "账套" / name if cid in ("c001", "c002") else srv / "其他" / name
        (folder / "凭证").mkdir(parents=True)
        (folder / "凭证" / "2026-10.csv").write_text(f"编号,金额\n1,{cid}\n", encoding="utf-8")
        folders[cid] = folder
    return srv, names, folders


def test_survey_lists_each_clients_snapshots_and_flags_the_gaps(tmp_path, books, capsys):
    srv, names, folders = books
    pw = tmp_path / "restic-password"
    pw.write_text("调查-secret\n", encoding="utf-8")
    pw.chmod(0o600)
    repo = str(tmp_path / "repo")
    restic(repo, pw, "init")
    relative = backup(repo, pw, "账套", cwd=srv)  # cd /srv && restic backup 账套: c001 and c002 as /账套/<name>
    dot = backup(repo, pw, ".", cwd=folders["c002"])  # cd <c002> && restic backup .: c002 at /
    absolute = backup(repo, pw, str(folders["c003"]))
    other = backup(repo, pw, str(folders["c005"]), host="books-b")  # only another machine backs c005 up
    clients = [{"id": cid, "name": f"{name}有限公司", "paths": [str(folders[cid])]} for cid, name in names.items()]
    inventory = tmp_path / "inventory.json"
    host = {
        "ansible_connection": "local",
        "ansible_python_interpreter": sys.executable,
        "ledgerguard_clients": clients,
        "ledgerguard_backup_host": HOST,
    }
    inventory.write_text(json.dumps({"all": {"hosts": {"localhost": host}}}, ensure_ascii=False), encoding="utf-8")
    argv = ["survey", "-i", str(inventory), "--repository", repo, "--password-file", str(pw)]
    argv += ["--evidence-dir", str(tmp_path / "evidence"), "--private-data-dir", str(tmp_path / "runner"), "--json"]
    code = cli.main(argv)
    out = json.loads(capsys.readouterr().out)
    assert code == 1 and out["exit_code"] == 1 and out["gaps"] == 2 and out["unreachable"] == []
    (host_out,) = out["hosts"]
    assert host_out["host"] == "localhost" and host_out["backup_host"] == HOST and host_out["reachable"] is True
    rows = {r["client"]: r for r in host_out["clients"]}
    assert sorted(rows) == sorted(names)

    def held(cid):
        return {(c["short_id"], c["hostname"], c["snapshot_path"], tuple(c["tags"])) for c in rows[cid]["covering"]}

    assert held("c001") == {(relative[:8], HOST, f"/账套/{names['c001']}", ("nightly",))}
    assert held("c002") == {
        (relative[:8], HOST, f"/账套/{names['c002']}", ("nightly",)),
        (dot[:8], HOST, "/", ("nightly",)),
    }
    assert held("c003") == {(absolute[:8], HOST, str(folders["c003"]), ("nightly",))}
    assert [rows[c]["verdict"] for c in ("c001", "c002", "c003")] == ["ok", "ok", "ok"]
    assert rows["c002"]["newest"]["short_id"] == dot[:8] and rows["c002"]["snapshots"] == 2
    assert rows["c004"]["verdict"] == "not_covered" and rows["c004"]["covering"] == []
    assert (
        "ledgerguard_clients[].snapshot_path" in rows["c004"]["note"] and str(folders["c004"]) in rows["c004"]["note"]
    )
    assert rows["c005"]["verdict"] == "other_hosts" and held("c005") == {
        (other[:8], "books-b", str(folders["c005"]), ("nightly",))
    }
    assert "only snapshots of books-b hold it" in rows["c005"]["note"]
    assert Path(out["result"]).is_file()  # backup_verify's result.json of the survey run

    # the table an operator reads (the same data, rendered)
    text = survey.render(out)
    lines = text.splitlines()
    assert lines[0] == f"Host localhost (incident restores from snapshots of host {HOST}, repository {repo})"
    c004 = next(line for line in lines if line.lstrip().startswith("c004 台州电子有限公司"))
    assert c004.rstrip().endswith("NOT COVERED")
    c002 = next(line for line in lines if line.lstrip().startswith("c002 宁波餐饮有限公司"))
    assert f"/, /账套/{names['c002']}" in c002 and c002.rstrip().endswith("finds it")
    assert (
        f"  ! c004 {folders['c004']}: no snapshot holds {folders['c004']}: set ledgerguard_clients[].snapshot_path"
        in text
    )
    assert lines[-1] == "Survey: 2 client path(s) the incident would not find"
