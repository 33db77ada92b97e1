"""SMS through Alibaba Cloud's `SendSms` (dysmsapi 2017-05-25), a signed RPC call (signature v1).

The template is fixed and registered with Alibaba Cloud (`CERTWATCH_SMS_TEMPLATE`, its text
holding one `${content}` variable): variables may not carry URLs, IPs or domain names
(`isv.PARAM_NOT_SUPPORT_URL`), so the variable is the alert's count-only SMS text. Success is the
body's `Code == "OK"`, not the HTTP status; throttling and the gateway's own errors are retried.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Callable, Mapping
from urllib.parse import quote

import httpx

from certwatch.notifier.channels.base import (
    Delivered,
    Delivery,
    Failed,
    Limits,
    Message,
    Overflow,
    Retryable,
    check_url,
    fit,
    post,
    vendor_json,
)
from certwatch.notifier.channels.sms import check_text

HOSTS = ("dysmsapi.aliyuncs.com",)
# Busy, throttled (per number per minute/hour/day): worth waiting for; anything else is final.
_RETRYABLE = {"isp.SYSTEM_ERROR": 30.0, "Throttling.User": 60.0, "isv.BUSINESS_LIMIT_CONTROL": 3600.0,
              "ServiceUnavailable": 30.0}  # fmt: skip
_THROTTLED = ("Throttling.User", "isv.BUSINESS_LIMIT_CONTROL")


def _encode(text: str) -> str:
    return quote(text, safe="~")


def sign(params: Mapping[str, str], secret: str, method: str = "POST") -> str:
    """The RPC v1 `Signature`: HMAC-SHA1 (key `secret + "&"`) over the sorted, percent-encoded parameters."""
    canonical = "&".join(f"{_encode(k)}={_encode(v)}" for k, v in sorted(params.items()))
    string_to_sign = f"{method}&%2F&{_encode(canonical)}"
    return base64.b64encode(
        hmac.new(f"{secret}&".encode(), string_to_sign.encode(), hashlib.sha1).digest()
    ).decode()


class AliyunSms:
    name = "sms"
    limits = Limits(max_body_bytes=500, per_minute=60, overflow=Overflow.TRUNCATE)

    def __init__(
        self, client: httpx.AsyncClient, endpoint: str, access_key_id: str, access_key_secret: str,
        sign_name: str, template_code: str, to: str, *, allow_custom: bool = False,
        clock: Callable[[], float] = time.time,
    ) -> None:  # fmt: skip
        self._url = check_url("sms.endpoint", endpoint, HOSTS, allow_custom).rstrip("/") + "/"
        self._client = client
        self._key_id = access_key_id
        self._secret = access_key_secret
        self._sign_name = sign_name
        self._template = template_code
        self._to = to
        self._clock = clock

    def _params(self, content: str) -> dict[str, str]:
        params = {
            "Action": "SendSms", "Version": "2017-05-25", "Format": "JSON", "RegionId": "cn-hangzhou",
            "AccessKeyId": self._key_id, "SignatureMethod": "HMAC-SHA1", "SignatureVersion": "1.0",
            "SignatureNonce": uuid.uuid4().hex, "Timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self._clock())),
            "PhoneNumbers": self._to, "SignName": self._sign_name, "TemplateCode": self._template,
            "TemplateParam": json.dumps({"content": content}, ensure_ascii=False, separators=(",", ":")),
        }  # fmt: skip
        return {**params, "Signature": sign(params, self._secret)}

    async def send(self, message: Message) -> Delivery:
        if message.sms is None:
            return Failed("template", "this alert has no SMS template")
        refused = check_text(message.sms)
        if refused:
            return Failed("template", refused)
        response = await post(self._client, self._url, data=self._params(fit(message.sms, self.limits)[0]))
        if isinstance(response, Retryable):
            return response
        body = vendor_json(response)
        if isinstance(body, Failed):
            return body
        code, text = str(body.get("Code", f"http {response.status_code}")), str(body.get("Message", ""))
        if code == "OK":
            return Delivered(str(body.get("BizId", "")))
        if code in _RETRYABLE:
            return Retryable(code, text, _RETRYABLE[code], throttled=code in _THROTTLED)
        return Failed(code, text)
