"""A real S3 API server on localhost for the tests (moto's server mode), and a proxy in front of it that
answers some requests with the errors S3 gives under load (500, 503 SlowDown)."""
from __future__ import annotations

import http.client
import http.server
import logging
import os
import socket
import threading
from pathlib import Path
from typing import Any

CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class S3Server:
    """moto's S3 server in a thread of the test process; `use()` points this process (and the worker processes
    it starts) at it through the standard variables, as a user's environment would."""

    def __init__(self) -> None:
        from moto.server import ThreadedMotoServer

        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        self.port = free_port()
        self.server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
        self.server.start()
        self.endpoint = f"http://127.0.0.1:{self.port}"

    def use(self, endpoint: str | None = None) -> dict[str, str]:
        """Set the environment for `endpoint` (this server by default); returns what was there before."""
        from pipelines.runtime import storage

        env = {**CREDENTIALS, "AWS_ENDPOINT_URL": endpoint or self.endpoint}
        before = {k: os.environ.get(k) for k in env}
        os.environ.update(env)
        storage._filesystem_cache.clear()
        return before  # type: ignore[return-value]

    def client(self) -> Any:
        import boto3

        return boto3.client("s3", endpoint_url=self.endpoint, **{
            "aws_access_key_id": "testing", "aws_secret_access_key": "testing", "region_name": "us-east-1"})

    def bucket(self, name: str) -> str:
        self.client().create_bucket(Bucket=name)
        return f"s3://{name}"

    def upload(self, folder: Path, url: str) -> None:
        """Every file under `folder` to the same relative keys under `url` (s3://bucket/prefix)."""
        bucket, _, prefix = url[len("s3://"):].partition("/")
        client = self.client()
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                key = "/".join(p for p in (prefix, path.relative_to(folder).as_posix()) if p)
                client.upload_file(str(path), bucket, key)

    def keys(self, url: str) -> list[str]:
        bucket, _, prefix = url[len("s3://"):].partition("/")
        pages = self.client().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        return sorted(o["Key"] for page in pages for o in page.get("Contents", []))

    def read(self, url: str) -> bytes:
        bucket, _, key = url[len("s3://"):].partition("/")
        return self.client().get_object(Bucket=bucket, Key=key)["Body"].read()

    def stop(self) -> None:
        self.server.stop()


FAULTS = [(500, "InternalError", "We encountered an internal error. Please try again."),
          (503, "SlowDown", "Please reduce your request rate."),
          (503, "ServiceUnavailable", "Service is unable to handle request.")]


class FaultyProxy:
    """Forwards every request to `target`, except every `every`-th one, which gets one of FAULTS instead (never
    reaching the server), as S3 does under load. `faults` counts the errors given."""

    def __init__(self, target: str, every: int = 5) -> None:
        host, port = target.split("//", 1)[1].split(":")
        self.target = (host, int(port))
        self.every, self.seen, self.faults, self.bytes_out = every, 0, 0, 0
        self.lock = threading.Lock()
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _any(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                with proxy.lock:
                    proxy.seen += 1
                    fault = FAULTS[proxy.faults % len(FAULTS)] if proxy.seen % proxy.every == 0 else None
                    if fault:
                        proxy.faults += 1
                if fault:
                    status, code, message = fault
                    text = (f'<?xml version="1.0" encoding="UTF-8"?><Error><Code>{code}</Code>'
                            f"<Message>{message}</Message></Error>").encode()
                    self.send_response(status)
                    self.send_header("Content-Type", "application/xml")
                    self.send_header("Content-Length", str(len(text)))
                    self.end_headers()
                    self.wfile.write(text)
                    return
                conn = http.client.HTTPConnection(*proxy.target, timeout=60)
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("connection",)}
                conn.request(self.command, self.path, body=body, headers=headers)
                reply = conn.getresponse()
                data = reply.read()
                with proxy.lock:
                    proxy.bytes_out += len(data)
                self.send_response(reply.status)
                for k, v in reply.getheaders():
                    if k.lower() not in ("transfer-encoding", "connection", "content-length"):
                        self.send_header(k, v)
                length = reply.getheader("Content-Length") if self.command == "HEAD" else None
                self.send_header("Content-Length", length or str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)
                conn.close()

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _any

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.endpoint = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
