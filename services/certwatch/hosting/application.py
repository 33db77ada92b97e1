"""Checking what a user submits: subscription length and the certificate application.

Pure. Every violation names its field, as `InvalidArgument` reports it to gRPC clients.
"""

from __future__ import annotations

from collections.abc import Sequence

from certwatch.contracts.hosting import Application, KeyType, Validation
from certwatch.platform.errors import InvalidArgument
from certwatch.rules.targets import ValidationError, normalize_hostname

HOSTING_YEARS = (2, 3)
MAX_NAMES = 100  # Let's Encrypt's limit of names per certificate
MAX_TEXT = 200


def checked_years(years: int) -> int:
    if years not in HOSTING_YEARS:
        raise InvalidArgument([("years", f"hosting needs a subscription of 2 or 3 years, got {years}"
                                " (a 1-year certificate cannot be hosted)")])  # fmt: skip
    return years


def _name(raw: str, i: int, validation: Validation | None) -> str:
    field = f"domains[{i}]"
    wildcard = raw.startswith("*.")
    try:
        host = normalize_hostname(raw[2:] if wildcard else raw, field=field)
    except ValidationError as exc:
        raise InvalidArgument(exc.field_descriptions()) from None
    if wildcard and validation != Validation.DNS_01:
        raise InvalidArgument([(field, "a wildcard name can only be validated with dns-01")])
    return f"*.{host}" if wildcard else host


def _email(raw: str) -> str:
    local, at, domain = raw.strip().rpartition("@")
    if not at or not local or " " in local or len(raw) > 254:
        raise InvalidArgument([("contact_email", "enter an address like 'ops@example.com'")])
    try:
        return f"{local}@{normalize_hostname(domain, field='contact_email')}"
    except ValidationError:
        raise InvalidArgument([("contact_email", "the part after '@' is not a valid domain")]) from None


def checked_application(
    names: Sequence[str], key_type: str, company: str, contact_email: str, validation: str
) -> Application:
    violations: list[tuple[str, str]] = []
    method: Validation | None = None
    try:
        method = Validation(validation or Validation.HTTP_01)
    except ValueError:
        violations.append(("validation", f"must be one of {', '.join(v.value for v in Validation)}"))
    try:
        key = KeyType(key_type or KeyType.EC256)
    except ValueError:
        violations.append(("key_type", f"must be one of {', '.join(k.value for k in KeyType)}"))
        key = KeyType.EC256
    if not names:
        violations.append(("domains", "give at least one domain name"))
    elif len(names) > MAX_NAMES:
        violations.append(("domains", f"at most {MAX_NAMES} names per certificate"))
    if not company.strip() or len(company) > MAX_TEXT:
        violations.append(("company", f"required, at most {MAX_TEXT} characters"))
    checked: list[str] = []
    email = ""
    for i, raw in enumerate(names[:MAX_NAMES]):
        try:
            host = _name(raw, i, method)
        except InvalidArgument as exc:
            violations.extend(exc.violations)
            continue
        if host not in checked:
            checked.append(host)
    try:
        email = _email(contact_email)
    except InvalidArgument as exc:
        violations.extend(exc.violations)
    if violations:
        raise InvalidArgument(violations)
    assert method is not None
    return Application(names=checked, key_type=key, company=company.strip(), contact_email=email,
                       validation=method)  # fmt: skip
