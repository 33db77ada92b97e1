"""The errors of the VOD API, in Alibaba Cloud's codes and HTTP statuses.

Clients (the official SDKs among them) branch on `Code`; the HTTP status decides which
exception the SDK raises (4xx ClientException, 5xx ServerException, any status with a
positive `x-acs-retry-after` header ThrottlingException). Every code is listed in
`CODES` with its status, so the README's table and the server cannot disagree.
"""

from __future__ import annotations

# code -> (HTTP status, what the caller should do)
CODES: dict[str, tuple[int, str]] = {
    "MissingParameter": (400, "Add the parameter the message names."),
    "MissingDomainName": (400, "Give DomainName, the accelerated domain name."),
    "InvalidParameter": (400, "Correct the parameter the message names."),
    "InvalidDomainName.Malformed": (400, "Give a host name such as www.example.com."),
    "InvalidDomain.NotFound": (404, "Check the domain name: it is not a domain of this account."),
    "DomainAlreadyExist": (409, "The domain is already an accelerated domain of this account."),
    "InvalidCertificate": (
        400,
        "Upload a certificate chain that verifies for the domain against the trust store.",
    ),
    "InvalidCertificate.KeyMismatch": (400, "Give the private key of the certificate in SSLPub."),
    "InvalidCertificate.NotFound": (
        404,
        "Give the CertId of a certificate of this account (DescribeVodCertificateList).",
    ),
    "InvalidAction.NotFound": (404, "Check the Action name and the API version."),
    "UnsupportedOperation": (
        400,
        "certwatch serves only the certificate actions of the VOD API (see the README).",
    ),
    "NoSuchVersion": (400, "Use Version=2017-03-21."),
    # 400 as Alibaba Cloud's API references list it ("The api is not supported in this region.").
    "RegionId.ApiNotSupported": (400, "Call the region this endpoint serves (CERTWATCH_VOD_REGION)."),
    "UnsupportedHTTPMethod": (400, "Send GET or POST."),
    "InvalidAccessKeyId.NotFound": (404, "Check the AccessKeyId: no such key exists."),
    "InvalidAccessKeyId.Inactive": (400, "The AccessKey was revoked: create a new one."),
    "IncompleteSignature": (400, "Sign the request with ACS3-HMAC-SHA256 or HMAC-SHA1 (v1)."),
    "SignatureDoesNotMatch": (400, "Check the AccessKeySecret and how the request is signed."),
    "SignatureNonceUsed": (400, "Send a new random SignatureNonce with every request."),
    "InvalidTimeStamp.Format": (400, "Give the time as yyyy-MM-ddTHH:mm:ssZ (UTC)."),
    "InvalidTimeStamp.Expired": (400, "Send the current UTC time; check the client's clock."),
    "Throttling": (400, "Retry after x-acs-retry-after milliseconds."),
    "ServiceUnavailable": (503, "Retry shortly."),
    "InternalError": (500, "Retry; report the RequestId if it persists."),
}


class ApiError(Exception):
    """An answer in the cloud's error format; `retry_after_ms` only for Throttling; `field`:
    the request parameter at fault, when one is."""

    def __init__(
        self, code: str, message: str, *, retry_after_ms: int | None = None, field: str | None = None
    ) -> None:
        if code not in CODES:
            raise ValueError(f"{code} is not a documented VOD API error code")
        super().__init__(f"{code}: {message}")
        self.code, self.message, self.retry_after_ms = code, message, retry_after_ms
        self.field = field or _FIELD_OF.get(code)

    @property
    def status(self) -> int:
        return CODES[self.code][0]

    @property
    def recommend(self) -> str:
        return CODES[self.code][1]


_FIELD_OF = {"MissingDomainName": "DomainName", "InvalidDomainName.Malformed": "DomainName",
             "InvalidDomain.NotFound": "DomainName", "DomainAlreadyExist": "DomainName",
             "InvalidCertificate": "SSLPub", "InvalidCertificate.KeyMismatch": "SSLPri",
             "InvalidCertificate.NotFound": "CertId"}  # fmt: skip


def missing(name: str) -> ApiError:
    return ApiError("MissingParameter", f"The input parameter {name} that is mandatory for processing this request is not supplied.", field=name)  # fmt: skip


def invalid(name: str, rule: str) -> ApiError:
    return ApiError("InvalidParameter", f"The parameter {name} is invalid: {rule}.", field=name)
