"""A certificate instance as a fold of its events, and what the orchestrator should do next.

Pure: `evolve(instance, payload)` replays the `hosting-<id>` stream; `step(instance, now)`
says what is due (place or resume an order, end the year) and `due_at` when. One order at
most is in flight per instance: a new order is placed only when the instance has no attempt
whose order may still complete.
"""

from __future__ import annotations

import dataclasses
import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from certwatch.contracts import hosting as hc
from certwatch.contracts.payload import Payload

YEAR = timedelta(days=365)
BACKOFF_BASE = timedelta(seconds=30)
BACKOFF_CAP = timedelta(hours=6)  # Let's Encrypt allows 5 failed validations an hour per name


@dataclass(frozen=True, slots=True)
class Attempt:
    attempt_id: str
    certificate_id: str
    csr_pem: str
    sealed_key: str
    renewal: bool
    order_url: str | None = None


@dataclass(frozen=True, slots=True)
class Current:
    certificate_id: str
    not_after: datetime
    renew_at: datetime
    renew_source: str
    ari_check_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Passed:
    state: hc.InstanceState
    reason: str
    at: datetime


@dataclass(frozen=True, slots=True)
class Instance:
    instance_id: str
    account_id: str
    subscription_id: str
    year: int
    years: int
    state: hc.InstanceState
    previous_instance_id: str | None
    next_instance_id: str | None
    history: tuple[Passed, ...]
    application: hc.Application | None = None
    year_ends_at: datetime | None = None
    attempt: Attempt | None = None
    failures: int = 0
    retry_at: datetime | None = None
    current: Current | None = None
    renew_requested: bool = False
    ending_announced: bool = False
    orders_placed: int = 0


def evolve(instance: Instance | None, e: Payload) -> Instance:
    if isinstance(e, hc.InstanceCreated):
        return Instance(
            e.instance_id, e.account_id, e.subscription_id, e.year, e.years, e.state,
            e.previous_instance_id, e.next_instance_id, (Passed(e.state, "subscribed", e.at),),
        )  # fmt: skip
    if instance is None:
        raise ValueError(f"{type(e).__name__} before the instance was created")
    replace = dataclasses.replace
    match e:
        case hc.InstanceStateChanged():
            return replace(
                instance, state=e.state, history=(*instance.history, Passed(e.state, e.reason, e.at)),
                year_ends_at=e.year_ends_at or instance.year_ends_at,
            )  # fmt: skip
        case hc.ApplicationSubmitted():
            return replace(instance, application=e.application, retry_at=None, failures=0)
        case hc.OrderRequested():
            requested = Attempt(e.attempt_id, e.certificate_id, e.csr_pem, e.sealed_key, e.renewal)
            return replace(instance, attempt=requested, renew_requested=False)
        case hc.OrderPlaced():
            assert instance.attempt is not None and instance.attempt.attempt_id == e.attempt_id
            return replace(
                instance, attempt=replace(instance.attempt, order_url=e.order_url),
                orders_placed=instance.orders_placed + 1,
            )  # fmt: skip
        case hc.OrderFailed():
            attempt = None if e.order_abandoned else instance.attempt
            return replace(instance, failures=e.failures, retry_at=e.retry_at, attempt=attempt)
        case hc.CertificateIssued():  # and CertificateRenewed
            current = Current(
                e.certificate_id, e.certificate.not_after, e.renew_at, e.renew_source, e.ari_check_at
            )
            return replace(instance, attempt=None, failures=0, retry_at=None, current=current)
        case hc.RenewalRescheduled():
            assert instance.current is not None
            moved = replace(
                instance.current,
                renew_at=e.renew_at,
                renew_source=e.renew_source,
                ari_check_at=e.ari_check_at,
            )
            return replace(instance, current=moved)
        case hc.RenewalRequested():
            return replace(instance, renew_requested=True)
        case hc.HostingEnding():
            return replace(instance, ending_announced=True)
    raise ValueError(f"not an instance event: {type(e).__name__}")


def fold(events: list[Payload]) -> Instance:
    instance: Instance | None = None
    for e in events:
        instance = evolve(instance, e)
    if instance is None:
        raise ValueError("an empty stream")
    return instance


class Step(StrEnum):
    ORDER = "ORDER"  # place a new order (or re-send the recorded one that has no URL yet)
    RESUME = "RESUME"  # carry on with the recorded order
    END_YEAR = "END_YEAR"  # the year is over: activate the next instance or announce the end
    CHECK_ARI = "CHECK_ARI"  # ask the CA's ARI again whether the renewal window moved


def due_at(instance: Instance) -> datetime | None:
    """When `step` next has something to do (None: nothing ever, until an event changes it)."""
    if (
        instance.state in (hc.InstanceState.APPLYING, hc.InstanceState.HOSTED)
        and instance.attempt is not None
    ):
        return instance.retry_at or datetime.min.replace(tzinfo=instance.history[0].at.tzinfo)
    if instance.state == hc.InstanceState.APPLYING:
        return instance.retry_at or instance.history[-1].at
    if instance.state == hc.InstanceState.HOSTED and instance.current is not None:
        if instance.renew_requested:
            return instance.retry_at or instance.history[-1].at
        check = instance.current.ari_check_at
        renew = renewal_due(instance)
        return min(renew, check) if check else renew
    return None


def renewal_due(instance: Instance) -> datetime:
    """When the current certificate is renewed next (later than planned after a failure)."""
    assert instance.current is not None
    return max(instance.current.renew_at, instance.retry_at or instance.current.renew_at)


def step(instance: Instance, now: datetime) -> Step | None:
    due = due_at(instance)
    if due is None or due > now:
        return None
    if instance.attempt is not None:
        return Step.RESUME if instance.attempt.order_url else Step.ORDER
    if instance.state == hc.InstanceState.HOSTED and not instance.renew_requested:
        assert instance.year_ends_at is not None
        if now < renewal_due(instance):
            return Step.CHECK_ARI  # only the ARI check is due
        if now >= instance.year_ends_at:
            return Step.END_YEAR
    return Step.ORDER


def backoff(
    failures: int, retry_after: timedelta | None = None, *, rng: random.Random | None = None
) -> timedelta:
    """Exponential (30 s, 1 min, 2 min, ...) with jitter, capped at 6 h; never before the
    CA's own Retry-After."""
    exp = min(BACKOFF_CAP, BACKOFF_BASE * (2 ** max(0, failures - 1)))
    jittered: timedelta = exp * (0.5 + (rng or random).random() / 2)
    return max(jittered, retry_after or timedelta(0))


def lifetime_renewal(
    not_before: datetime, not_after: datetime, ca_offset: timedelta = timedelta(0)
) -> datetime:
    """Without ARI: renew when a third of the lifetime is left (cert-manager's default), the
    lifetime counted from the certificate's notBefore, as the CA wrote it: a certificate that
    arrives late (an order resumed days later) or backdated is renewed no later for it.
    `ca_offset` (this clock minus the CA's) puts that CA time on this clock."""
    return not_after - (not_after - not_before) / 3 + ca_offset


def earliest_renewal(not_before: datetime, not_after: datetime) -> timedelta:
    """How soon after it arrives a certificate may be renewed, whatever ARI says: a tenth of
    its lifetime, a day at most. A CA's window already open for a new certificate would
    otherwise renew it in a loop (cert-manager's users hit such loops)."""
    return min((not_after - not_before) / 10, timedelta(days=1))


def ca_clock_offset(now: datetime, ca_date: datetime | None) -> timedelta:
    """This clock minus the CA's, as its last answer dated it; zero within a minute (the
    `Date` header counts whole seconds, and the network takes some), or when unknown."""
    if ca_date is None:
        return timedelta(0)
    offset = now - ca_date
    return offset if abs(offset) > timedelta(minutes=1) else timedelta(0)
