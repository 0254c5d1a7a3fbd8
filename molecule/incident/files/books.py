#!/usr/bin/env python3
"""Sample books and damage for the incident scenario (runs inside the test containers with Debian's python3).

books.py create ROOT ID NAME      CSV vouchers (UTF-8 with BOM), a SQLite ledger, two fake scans
books.py hashes ROOT OUT          sha256sum lines of every file under ROOT (relative paths)
books.py ransomware DIR           encrypt and rename every file (.locked), drop a ransom note
books.py delete DIR               remove the client's folder
"""

import hashlib
import os
import shutil
import sqlite3
import sys


def create(root, cid, name):
    base = os.path.join(root, cid)
    os.makedirs(os.path.join(base, "凭证"), exist_ok=True)
    os.makedirs(os.path.join(base, "账簿"), exist_ok=True)
    os.makedirs(os.path.join(base, "扫描件"), exist_ok=True)
    for month in ("2026-09", "2026-10"):
        lines = ["期间,凭证字,凭证号,日期,分录号,摘要,科目编码,科目名称,借方金额,贷方金额"]
        for n in range(1, 9):
            amount = f"{(n * 137) % 9000 + 100}.00"
            lines.append(f"{month},记,{n},{month}-0{n},1,{name} 收款,1002,银行存款,{amount},")
            lines.append(f"{month},记,{n},{month}-0{n},2,{name} 收款,1122,应收账款,,{amount}")
        with open(os.path.join(base, "凭证", f"{month}.csv"), "w", encoding="utf-8-sig") as handle:
            handle.write("\n".join(lines) + "\n")
    db = sqlite3.connect(os.path.join(base, "账簿", "ledger.sqlite"))
    db.execute("CREATE TABLE IF NOT EXISTS voucher_entries (period TEXT, voucher_no INTEGER, debit TEXT, credit TEXT)")
    rows = [("2026-10", n, "1.00", "") for n in range(1, 50)]
    db.executemany("INSERT INTO voucher_entries VALUES (?, ?, ?, ?)", rows)
    db.commit()
    db.close()
    for n in (1, 2):
        with open(os.path.join(base, "扫描件", f"记-{n:04d}.pdf"), "wb") as handle:
            handle.write(b"%PDF-1.4\n" + (f"{name} voucher {n}\n" * 40).encode() + b"%%EOF\n")


def hashes(root, out):
    with open(out, "w", encoding="utf-8") as handle:
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames.sort()
            for name in sorted(filenames):
                path = os.path.join(dirpath, name)
                with open(path, "rb") as data:
                    digest = hashlib.sha256(data.read()).hexdigest()
                handle.write(f"{digest}  {path}\n")


def ransomware(folder):
    for dirpath, _dirnames, filenames in os.walk(folder):
        for name in filenames:
            path = os.path.join(dirpath, name)
            size = max(os.path.getsize(path), 256)
            with open(path, "wb") as handle:
                handle.write(os.urandom(size))
            os.rename(path, path + ".locked")
    with open(os.path.join(folder, "HOW_TO_DECRYPT.txt"), "w", encoding="utf-8") as handle:
        handle.write("Your files are encrypted. 您的文件已被加密。\n")


if __name__ == "__main__":
    command, args = sys.argv[1], sys.argv[2:]
    if command == "create":
        create(*args)
    elif command == "hashes":
        hashes(*args)
    elif command == "ransomware":
        ransomware(args[0])
    elif command == "delete":
        shutil.rmtree(args[0])
    else:
        sys.exit(f"unknown command {command}")
