"""A local HTTP server that answers like DingTalk, WeCom, Lark, a Twilio-shaped SMS gateway, Alibaba Cloud SendSms, a webhook
receiver and a JSON endpoint reached through Apprise.

It checks what the vendors check (DingTalk and Lark signatures and timestamp freshness, the WeCom
key, Basic auth, 20 messages a minute per robot, body size limits) and answers with their codes,
HTTP 200 included, so a channel that trusts the HTTP status alone fails these tests.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import threading
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

FRESH_SECONDS = 3600


@dataclass
class Received:
    vendor: str
    robot: str
    body: Any
    headers: dict[str, str]


@dataclass
class RobotState:
    dingtalk: dict[str, str] = field(default_factory=dict)  # access_token -> secret
    wecom: set[str] = field(default_factory=set)  # keys
    lark: dict[str, str] = field(default_factory=dict)  # hook token -> secret
    twilio: dict[str, str] = field(default_factory=dict)  # account sid -> auth token
    aliyun: dict[str, str] = field(default_factory=dict)  # AccessKeyId -> AccessKeySecret
    aliyun_templates: set[str] = field(default_factory=set)  # TemplateCodes approved
    webhook_secret: str = ""
    webhook_status: int = 200  # what the receiver answers a valid request
    retry_after: str = ""  # a Retry-After header on 429 answers (a receiver that rate-limits)
    apprise_status: int = 200  # what the Apprise JSON receiver answers
    per_minute: int = 20
    received: list[Received] = field(default_factory=list)
    arrived: int = 0  # requests that reached the server, answered or not
    hold: threading.Event | None = None  # set: each request waits for it (at most 30 s) before its answer
    _sent: dict[str, list[float]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def over_rate(self, robot: str) -> bool:
        now = time.monotonic()
        with self.lock:
            recent = [t for t in self._sent.get(robot, []) if now - t < 60]
            if len(recent) >= self.per_minute:
                self._sent[robot] = recent
                return True
            self._sent[robot] = [*recent, now]
            return False

    def of(self, vendor: str) -> list[Received]:
        with self.lock:
            return [r for r in self.received if r.vendor == vendor]


def _dingtalk(state: RobotState, query: dict[str, str], raw: bytes) -> tuple[int, dict[str, Any]]:
    token = query.get("access_token", "")
    if token not in state.dingtalk:
        return 200, {"errcode": 300001, "errmsg": "token is not exist"}
    secret = state.dingtalk[token]
    ts = query.get("timestamp", "")
    if not ts.isdigit() or abs(time.time() * 1000 - int(ts)) > FRESH_SECONDS * 1000:
        return 200, {"errcode": 310000, "errmsg": "sign not match, timestamp is stale or missing"}
    want = base64.b64encode(hmac.new(secret.encode(), f"{ts}\n{secret}".encode(), hashlib.sha256).digest())
    if not hmac.compare_digest(want.decode(), query.get("sign", "")):
        return 200, {"errcode": 310000, "errmsg": "sign not match"}
    if len(raw) > 20_000:
        return 200, {"errcode": 460101, "errmsg": "message too long"}
    if state.over_rate("dingtalk:" + token):
        return 200, {"errcode": 130101, "errmsg": "send too fast, exceed 20 times per minute"}
    return 0, {"errcode": 0, "errmsg": "ok"}


def _wecom(state: RobotState, query: dict[str, str], raw: bytes) -> tuple[int, dict[str, Any]]:
    key = query.get("key", "")
    if key not in state.wecom:
        return 200, {"errcode": 93000, "errmsg": "invalid webhook url"}
    content = json.loads(raw).get("markdown", {}).get("content", "")
    if len(content.encode()) > 4096:
        return 200, {"errcode": 40058, "errmsg": "markdown.content exceed max length 4096"}
    if state.over_rate("wecom:" + key):
        return 200, {"errcode": 45009, "errmsg": "api freq out of limit"}
    return 0, {"errcode": 0, "errmsg": "ok"}


def _lark(state: RobotState, token: str, raw: bytes) -> tuple[int, dict[str, Any]]:
    if token not in state.lark:
        return 200, {"code": 19001, "msg": "param invalid: incoming webhook access token invalid"}
    secret = state.lark[token]
    body = json.loads(raw)
    if secret:
        ts = str(body.get("timestamp", ""))
        if not ts.isdigit() or abs(time.time() - int(ts)) > FRESH_SECONDS:
            return 200, {
                "code": 19021,
                "msg": "sign match fail or timestamp is not within one hour from current time",
            }
        want = base64.b64encode(hmac.new(f"{ts}\n{secret}".encode(), b"", hashlib.sha256).digest()).decode()
        if not hmac.compare_digest(want, str(body.get("sign", ""))):
            return 200, {
                "code": 19021,
                "msg": "sign match fail or timestamp is not within one hour from current time",
            }
    if len(raw) > 20_000:
        return 200, {"code": 9499, "msg": "request body too large"}
    if state.over_rate("lark:" + token):
        return 200, {"code": 11232, "msg": "frequency limited"}
    return 0, {"code": 0, "msg": "success", "data": {}}


def _webhook(state: RobotState, headers: dict[str, str], raw: bytes) -> tuple[int, dict[str, Any]]:
    ts = headers.get("x-certwatch-timestamp", "")
    if not ts.isdigit() or abs(time.time() - int(ts)) > 300:  # replay window
        return 401, {"error": "stale or missing timestamp"}
    want = (
        "sha256="
        + hmac.new(state.webhook_secret.encode(), f"{ts}.".encode() + raw, hashlib.sha256).hexdigest()
    )
    if not hmac.compare_digest(want, headers.get("x-certwatch-signature", "")):
        return 401, {"error": "bad signature"}
    return (0 if state.webhook_status == 200 else state.webhook_status), {}


def _twilio(state: RobotState, sid: str, auth: str, raw: bytes) -> tuple[int, dict[str, Any]]:
    want = "Basic " + base64.b64encode(f"{sid}:{state.twilio.get(sid, '')}".encode()).decode()
    if sid not in state.twilio or not hmac.compare_digest(want, auth):
        return 401, {"code": 20003, "message": "Authenticate", "status": 401}
    form = dict(urllib.parse.parse_qsl(raw.decode()))
    if not form.get("To") or not form.get("Body"):
        return 400, {"code": 21604, "message": "A 'To' and a 'Body' are required", "status": 400}
    return 0, {"sid": f"SM{len(state.received):032d}", "status": "queued", "to": form["To"]}


def _aliyun(state: RobotState, headers: dict[str, str], raw: bytes) -> tuple[int, dict[str, Any]]:
    """`SendSms` as dysmsapi answers it: the RPC v1 signature checked by the VOD API's own verifier
    (written against the official SDK), then the template, the number and the variables."""
    from certwatch.vod.errors import ApiError
    from certwatch.vod.signing import Request, Secret, parse

    form = dict(urllib.parse.parse_qsl(raw.decode()))
    request = Request("POST", "/", {}, form, {k: [v] for k, v in headers.items()}, raw)
    try:
        claim = parse(request)
    except ApiError as exc:
        return 400, {"Code": exc.code, "Message": exc.message}
    if claim.access_key_id not in state.aliyun:
        return 404, {"Code": "InvalidAccessKeyId.NotFound", "Message": "Specified access key is not found."}
    if not Secret(state.aliyun[claim.access_key_id]).signs(claim):
        return 400, {"Code": "SignatureDoesNotMatch", "Message": "Specified signature is not matched."}
    if form.get("Action") != "SendSms" or form.get("Version") != "2017-05-25":
        return 400, {"Code": "InvalidAction.NotFound", "Message": "Specified api is not found."}
    if form.get("TemplateCode") not in state.aliyun_templates:
        return 200, {"Code": "isv.SMS_TEMPLATE_ILLEGAL", "Message": "template not approved"}
    if not form.get("PhoneNumbers", "").lstrip("+").isdigit():
        return 200, {"Code": "isv.MOBILE_NUMBER_ILLEGAL", "Message": "invalid mobile number"}
    content = json.loads(form.get("TemplateParam", "{}")).get("content", "")
    if any(part in content for part in ("://", ".com", ".test", "www.")):
        return 200, {"Code": "isv.PARAM_NOT_SUPPORT_URL", "Message": "template variables may not be URLs"}
    if state.over_rate("aliyun:" + form["PhoneNumbers"]):
        return 200, {"Code": "isv.BUSINESS_LIMIT_CONTROL", "Message": "too many messages to this number"}
    return 0, {"Code": "OK", "Message": "OK", "BizId": f"{len(state.received)}^0", "RequestId": "r"}


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # keep test output clean
        pass

    def do_POST(self) -> None:
        state = self.server.state
        url = urllib.parse.urlsplit(self.path)
        query = dict(urllib.parse.parse_qsl(url.query))
        raw = self.rfile.read(int(self.headers.get("content-length", "0")))
        with state.lock:
            state.arrived += 1
        if state.hold is not None:  # a send caught in flight: the test kills its sender meanwhile
            state.hold.wait(timeout=30)
        parts = url.path.strip("/").split("/")
        headers = {k.lower(): v for k, v in self.headers.items()}
        if url.path == "/robot/send":
            vendor, robot, (status, answer) = (
                "dingtalk",
                query.get("access_token", ""),
                _dingtalk(state, query, raw),
            )
        elif url.path == "/cgi-bin/webhook/send":
            vendor, robot, (status, answer) = "wecom", query.get("key", ""), _wecom(state, query, raw)
        elif parts[:4] == ["open-apis", "bot", "v2", "hook"] and len(parts) == 5:
            vendor, robot, (status, answer) = "lark", parts[4], _lark(state, parts[4], raw)
        elif parts[:2] == ["2010-04-01", "Accounts"] and len(parts) == 4 and parts[3] == "Messages.json":
            auth = self.headers.get("authorization", "")
            vendor, robot, (status, answer) = "sms", parts[2], _twilio(state, parts[2], auth, raw)
        elif url.path == "/" and b"Action=SendSms" in raw:
            vendor, robot, (status, answer) = "aliyun", "", _aliyun(state, headers, raw)
        elif url.path == "/hook":
            vendor, robot, (status, answer) = "webhook", "", _webhook(state, headers, raw)
        elif url.path == "/apprise":  # Apprise's generic json:// service posts here
            vendor, robot, (status, answer) = (
                "apprise",
                "",
                ((0 if state.apprise_status == 200 else state.apprise_status), {}),
            )
        else:
            self.send_error(404)
            return
        if status == 0:  # accepted: record what a person would receive
            form = vendor in ("sms", "aliyun")
            body: Any = dict(urllib.parse.parse_qsl(raw.decode())) if form else json.loads(raw)
            with state.lock:
                state.received.append(Received(vendor, robot, body, headers))
        payload = json.dumps(answer).encode()
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # its sender was killed meanwhile
            self.send_response(status or (201 if vendor == "sms" else 200))
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(payload)))
            if status == 429 and state.retry_after:
                self.send_header("retry-after", state.retry_after)
            self.end_headers()
            self.wfile.write(payload)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # socketserver's 5 resets connections when many senders post at once

    def __init__(self, state: RobotState) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.state = state


@contextlib.contextmanager
def robot_server(state: RobotState) -> Iterator[str]:
    """Serve `state` on a free loopback port; yields the base URL (http://127.0.0.1:PORT)."""
    server = _Server(state)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
