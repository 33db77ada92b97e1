"""RFC 8555 through certbot's `acme` library: synchronous calls, run in a thread by the caller.

Every CA failure leaves this module as one `AcmeFailure` with a `FailureKind` (the one
place the library's exceptions are mapped); the `Retry-After` of an error answer (`rateLimited`,
or a CA unavailable for now) is kept, which the library itself drops. `ClientNetwork` retries a `badNonce` once; a second one in a
row is a `BAD_NONCE` failure the orchestrator backs off from.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import email.utils
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import requests
from acme import challenges, client, crypto_util, errors, messages
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from josepy.jwa import ES256, RS256, JWASignature
from josepy.jwk import JWK, JWKEC, JWKRSA

from certwatch.contracts.hosting import FailureKind, Validation

USER_AGENT = "certwatch-hosting"
_FINALIZE_S = 90.0
_ORDER_PAGES = 10  # of an account's order list, when looking for an order placed before a crash


class AcmeFailure(Exception):
    def __init__(self, kind: FailureKind, detail: str, *, retry_after: dt.timedelta | None = None,
                 order_invalid: bool = False, account_unknown: bool = False) -> None:  # fmt: skip
        super().__init__(f"{kind}: {detail}")
        self.kind = kind
        self.detail = detail[:500]
        self.retry_after = retry_after
        self.order_invalid = order_invalid
        self.account_unknown = account_unknown  # the CA no longer knows the account: register again


class _Gone(Exception):
    """The CA answered 404 with a problem: the resource (an order it forgot) is not there."""

    def __init__(self, problem: messages.Error) -> None:
        super().__init__(str(problem))
        self.problem = problem


class _Throttled(Exception):
    """A problem that came with a `Retry-After` (a `rateLimited` answer, or a CA saying it is
    unavailable for now); the library's own error drops the header."""

    def __init__(self, problem: messages.Error, retry_after: dt.timedelta | None) -> None:
        super().__init__(str(problem))
        self.problem = problem
        self.retry_after = retry_after


class _Network(client.ClientNetwork):
    """Keeps the `Retry-After` of an error answer (the library's error has no headers), tells
    a 404 apart, and keeps the CA's clock as its last answer's `Date` header gave it."""

    ca_date: dt.datetime | None = None

    def _check_response(  # type: ignore[override]
        self, response: requests.Response, content_type: str | None = None
    ) -> requests.Response:
        date = response.headers.get("Date")
        if date:
            with contextlib.suppress(TypeError, ValueError):
                self.ca_date = email.utils.parsedate_to_datetime(date)
        try:
            return super()._check_response(response, content_type=content_type)
        except messages.Error as problem:
            retry_after = _retry_after(response)
            # badNonce stays the library's own: it retries that once by itself.
            if problem.code == "rateLimited" or (retry_after is not None and problem.code != "badNonce"):
                raise _Throttled(problem, retry_after) from problem
            if response.status_code == 404 and problem.code != "accountDoesNotExist":
                raise _Gone(problem) from problem
            raise


def _retry_after(response: requests.Response) -> dt.timedelta | None:
    raw = response.headers.get("Retry-After")
    if raw is None:
        return None
    when = client.ClientV2.retry_after(response, 0)
    return max(dt.timedelta(0), when - dt.datetime.now())


def account_jwk(private_key_pem: bytes) -> JWK:
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    key = load_pem_private_key(private_key_pem, password=None)
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return JWKEC(key=key)
    if isinstance(key, rsa.RSAPrivateKey):
        return JWKRSA(key=key)
    raise ValueError("an ACME account key is EC P-256 or RSA")


def _alg(jwk: JWK) -> JWASignature:
    return ES256 if isinstance(jwk, JWKEC) else RS256


@dataclass(frozen=True, slots=True)
class CaConfig:
    directory: str
    ca_file: str | None = None  # trust for the ACME server's own TLS
    timeout_s: int = 30
    eab_kid: str | None = None
    eab_hmac_key: str | None = None


class Solver(Protocol):
    """Makes a challenge answerable: (method, domain, http-01 token or dns-01 record name,
    key authorization or TXT value); `cleanup` undoes it once the order is done."""

    def present(self, method: Validation, domain: str, key: str, value: str) -> None: ...
    def cleanup(self, method: Validation, domain: str, key: str, value: str) -> None: ...


@dataclass(frozen=True, slots=True)
class Issued:
    fullchain_pem: str
    renew_at: dt.datetime | None  # from the CA's ARI window, when it has one


@dataclass(frozen=True, slots=True)
class Ari:
    renew_at: dt.datetime | None  # None: no window known
    check_again_in: dt.timedelta | None  # None: the CA has no ARI


def mapped(fn: Callable[[], Any]) -> Any:
    """Run `fn`, turning every failure the CA or the network can cause into `AcmeFailure`."""
    try:
        return fn()
    except AcmeFailure:
        raise
    except _Throttled as exc:
        kind = FailureKind.RATE_LIMITED if exc.problem.code == "rateLimited" else FailureKind.CA_ERROR
        detail = exc.problem.detail or str(exc.problem)
        raise AcmeFailure(kind, detail if kind == FailureKind.RATE_LIMITED else f"{exc.problem.code}: {detail}",
                          retry_after=exc.retry_after) from exc  # fmt: skip
    except _Gone as exc:
        raise AcmeFailure(FailureKind.CA_ERROR, f"not found at the CA: {exc.problem.detail}",
                          order_invalid=True) from exc  # fmt: skip
    except errors.ValidationError as exc:
        detail = "; ".join(str(a.body.identifier.value) for a in exc.failed_authzrs) or str(exc)
        raise AcmeFailure(
            FailureKind.CHALLENGE_FAILED, f"validation failed for {detail}", order_invalid=True
        ) from exc
    except errors.IssuanceError as exc:
        raise AcmeFailure(FailureKind.CA_ERROR, f"order invalid: {exc.error}", order_invalid=True) from exc
    except messages.Error as exc:
        kind = FailureKind.BAD_NONCE if exc.code == "badNonce" else FailureKind.CA_ERROR
        raise AcmeFailure(
            kind, f"{exc.code}: {exc.detail}", account_unknown=exc.code == "accountDoesNotExist"
        ) from exc
    except errors.TimeoutError as exc:
        raise AcmeFailure(FailureKind.CA_ERROR, "the CA did not finish the order in time") from exc
    except (requests.ConnectionError, requests.Timeout) as exc:
        raise AcmeFailure(FailureKind.CA_UNREACHABLE, type(exc).__name__) from exc
    except (errors.ClientError, errors.Error, requests.RequestException) as exc:
        raise AcmeFailure(FailureKind.CA_ERROR, str(exc)) from exc


class Session:
    """One ACME account at one CA. Blocking: every method runs in a worker thread."""

    def __init__(self, config: CaConfig, account_key: JWK, account_url: str | None) -> None:
        # requests' `verify` takes a CA bundle path too; the library only types it as bool.
        verify: Any = config.ca_file or True
        self.key = account_key
        self._config = config
        self.net = _Network(account_key, alg=_alg(account_key), verify_ssl=verify,
                            user_agent=USER_AGENT, timeout=config.timeout_s)  # fmt: skip
        self.client = client.ClientV2(client.ClientV2.get_directory(config.directory, self.net), self.net)
        if account_url:
            self.net.account = messages.RegistrationResource(uri=account_url, body=messages.Registration())

    def register(self, email: str | None) -> str:
        """The account's URL, creating the account at the CA when it has none yet."""
        eab = None
        if self._config.eab_kid and self._config.eab_hmac_key:
            eab = messages.ExternalAccountBinding.from_data(
                account_public_key=self.key.public_key(), kid=self._config.eab_kid,
                hmac_key=self._config.eab_hmac_key, directory=self.client.directory,
            )  # fmt: skip
        reg = messages.NewRegistration.from_data(email=email, terms_of_service_agreed=True,
                                                 external_account_binding=eab)  # fmt: skip
        try:
            regr = self.client.new_account(reg)
        except errors.ConflictError as exc:  # the key already has an account: its URL
            url = str(exc.location)
            self.net.account = messages.RegistrationResource(uri=url, body=messages.Registration())
            return url
        return str(regr.uri)

    def new_order(self, csr_pem: bytes) -> messages.OrderResource:
        return self.client.new_order(csr_pem)

    def open_orders_for(self, csr_pem: bytes) -> list[str]:
        """URLs of this account's orders that are still open (pending or ready) for exactly the
        CSR's names, when the CA lists an account's orders (RFC 8555 7.1.2.1; pebble does,
        Boulder does not: then none)."""
        assert self.net.account is not None
        account = self.client._post_as_get(self.net.account.uri).json()
        url = account.get("orders")
        csr = x509.load_pem_x509_csr(csr_pem)
        names, _ips = crypto_util.get_identifiers_from_x509(csr.subject, csr.extensions)
        found: list[str] = []
        for _page in range(_ORDER_PAGES):
            if not url:
                break
            response = self.client._post_as_get(url)
            for order_url in response.json().get("orders", []):
                order = messages.Order.from_json(self.client._post_as_get(order_url).json())
                if order.status in (messages.STATUS_PENDING, messages.STATUS_READY) and sorted(
                    i.value for i in order.identifiers
                ) == sorted(names):
                    found.append(order_url)
            nxt = self.client._get_links(response, "next")
            url = nxt[0] if nxt else None
        return found

    def load_order(self, order_url: str, csr_pem: bytes) -> messages.OrderResource:
        body = messages.Order.from_json(self.client._post_as_get(order_url).json())
        authzrs = [messages.AuthorizationResource(
            body=messages.Authorization.from_json(self.client._post_as_get(u).json()), uri=u)
            for u in body.authorizations]  # fmt: skip
        return messages.OrderResource(body=body, uri=order_url, authorizations=authzrs, csr_pem=csr_pem)

    def complete(self, orderr: messages.OrderResource, method: Validation, solver: Solver) -> str:
        """Answer the pending challenges of `method`, then finalize; the full chain PEM."""
        presented: list[tuple[str, str, str]] = []
        try:
            return self._complete(orderr, method, solver, presented)
        finally:
            for domain, key, value in presented:
                solver.cleanup(method, domain, key, value)

    def _complete(self, orderr: messages.OrderResource, method: Validation, solver: Solver,
                  presented: list[tuple[str, str, str]]) -> str:  # fmt: skip
        if orderr.body.status == messages.STATUS_INVALID:
            raise AcmeFailure(FailureKind.CA_ERROR, "the order is invalid", order_invalid=True)
        wanted = challenges.HTTP01 if method == Validation.HTTP_01 else challenges.DNS01
        for authzr in orderr.authorizations:
            if authzr.body.status != messages.STATUS_PENDING:
                continue
            challb = next((c for c in authzr.body.challenges if isinstance(c.chall, wanted)), None)
            if challb is None:
                raise AcmeFailure(
                    FailureKind.CA_ERROR, f"the CA offers no {method} challenge", order_invalid=True
                )
            domain = authzr.body.identifier.value
            response, validation = challb.response_and_validation(self.key)
            if method == Validation.HTTP_01:
                key = challb.chall.encode("token")
            else:
                key = challb.chall.validation_domain_name(domain.removeprefix("*."))
            solver.present(method, domain, key, validation)
            presented.append((domain, key, validation))
            if challb.status == messages.STATUS_PENDING:
                self.client.answer_challenge(challb, response)
        deadline = dt.datetime.now() + dt.timedelta(seconds=_FINALIZE_S)
        if orderr.body.status == messages.STATUS_VALID and orderr.body.certificate:
            return str(self.client._post_as_get(orderr.body.certificate).text)
        done = self.client.poll_and_finalize(orderr, deadline)
        return str(done.fullchain_pem)

    @property
    def ca_date(self) -> dt.datetime | None:
        """The CA's time at its last answer (HTTP `Date`, to the second), None before any."""
        return self.net.ca_date

    def renewal_info(self, cert_pem: bytes) -> Ari:
        """The CA's ARI advice for a certificate (RFC 9773): a random time inside its suggested
        window and when to ask again; nothing when the CA has no ARI."""
        try:
            self.client.directory["renewalInfo"]
        except KeyError:
            return Ari(None, None)
        try:
            when, next_check = self.client.renewal_time(cert_pem)
        except errors.ARIError as exc:  # asked, not answered: ask again when the library says
            return Ari(None, max(dt.timedelta(0), exc.retry_after - dt.datetime.now()))
        at = when if when is None or when.tzinfo else when.replace(tzinfo=dt.UTC)
        # The library's next check is a naive local time: keep only how far ahead it is.
        return Ari(at, max(dt.timedelta(0), next_check - dt.datetime.now()))
