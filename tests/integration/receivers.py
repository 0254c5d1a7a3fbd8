"""Local receivers that record every message an incident sends (issue 16): a chat webhook receiver and a small SMTP
server, each on 127.0.0.1 in a thread of the test process, and a closed port for a channel that is down. Used by
test_oncall.py, test_notices.py and test_reliability_faults.py (the on-call failure message)."""

from __future__ import annotations

import base64
import http.server
import json
import socket
import socketserver
import threading
import urllib.parse


class WebhookReceiver:
    """Records every POST (path, query, JSON body) and answers like a bot that accepted it (errcode 0)."""

    def __init__(self) -> None:
        self.posts: list[dict] = []
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                length = int(self.headers.get("Content-Length") or 0)
                parts = urllib.parse.urlsplit(self.path)
                receiver.posts.append(
                    {
                        "path": parts.path,
                        "query": urllib.parse.parse_qs(parts.query),
                        "body": json.loads(self.rfile.read(length).decode("utf-8")),
                    }
                )
                answer = b'{"errcode": 0, "errmsg": "ok"}'
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


class SMTPReceiver:
    """A minimal SMTP server (EHLO, AUTH PLAIN, MAIL, RCPT, DATA, QUIT) that keeps every message it accepts."""

    def __init__(self) -> None:
        self.messages: list[dict] = []
        receiver = self

        class Handler(socketserver.StreamRequestHandler):
            def reply(self, line: str) -> None:
                self.wfile.write(line.encode("ascii") + b"\r\n")

            def handle(self) -> None:
                self.reply("220 localhost ESMTP test")
                auth, sender, rcpts = None, None, []
                while raw := self.rfile.readline():
                    line = raw.decode("utf-8").rstrip("\r\n")
                    verb = line.split(" ", 1)[0].upper()
                    if verb in ("EHLO", "HELO"):
                        self.wfile.write(b"250-localhost\r\n250-AUTH PLAIN\r\n250 8BITMIME\r\n")
                    elif verb == "AUTH":
                        auth = base64.b64decode(line.split()[2]).split(b"\0")
                        self.reply("235 2.7.0 Authentication successful")
                    elif verb == "MAIL":
                        sender, rcpts = line[10:].split(">")[0].strip("<"), []
                        self.reply("250 OK")
                    elif verb == "RCPT":
                        rcpts.append(line[8:].split(">")[0].strip("<"))
                        self.reply("250 OK")
                    elif verb == "DATA":
                        self.reply("354 End data with <CR><LF>.<CR><LF>")
                        data = []
                        while (chunk := self.rfile.readline()) not in (b".\r\n", b""):
                            data.append(chunk[1:] if chunk.startswith(b"..") else chunk)
                        receiver.messages.append({"auth": auth, "from": sender, "to": rcpts, "data": b"".join(data)})
                        self.reply("250 OK queued")
                    elif verb == "QUIT":
                        self.reply("221 Bye")
                        return
                    else:
                        self.reply("250 OK")

        socketserver.ThreadingTCPServer.allow_reuse_address = True
        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def closed_port() -> int:
    """A local port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
