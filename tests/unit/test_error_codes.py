"""One table maps the project's errors for every transport: gRPC codes and HTTP statuses agree."""

from __future__ import annotations

import grpc

from certwatch.platform import auth, error_codes, errors


def test_each_error_has_one_grpc_code_and_one_http_status() -> None:
    for cls, answer in error_codes.TABLE:
        assert grpc.StatusCode[answer.code].name == answer.code, cls
        assert 400 <= answer.http < 600, cls
    assert error_codes.answer(errors.NotFound("x")) == ("NOT_FOUND", 404)
    assert error_codes.answer(errors.InvalidArgument([("port", "too big")])) == ("INVALID_ARGUMENT", 400)
    assert error_codes.answer(auth.Unauthenticated("no key")) == ("UNAUTHENTICATED", 401)
    assert error_codes.answer(errors.ConcurrencyConflict("s", 1, 2, "moved")) == ("ABORTED", 409)


def test_an_error_the_table_does_not_know_is_not_answered_as_a_known_one() -> None:
    assert error_codes.answer(errors.DuplicateEventId("x")) is None
    assert error_codes.answer(ValueError("x")) is None
