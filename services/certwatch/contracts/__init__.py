"""What services say to each other: every event they append, as typed, versioned payloads.

One module per stream category (`domain`, `quota`, `contact`, `probe`, `status`), each
with its event types, stream ids, bus subject, payload structs and the upcasters that lift
old schema versions. Pure: nothing here (nor anything it imports) loads a database, bus or
RPC library; `lint-imports` enforces it. Producers build a payload and append
`payload.new_event()`; consumers read `Payload.of(event)` (or `payload.decode(event)` and
`match` on the type) and get typed, validated objects (`DomainClassified.verdict.status` is
a `Status`), never `data["verdict"]["status"]`. The stored JSON is unchanged.

Why msgspec structs (frozen) rather than frozen dataclasses or the plain dicts, measured by
`bench/contracts.py` (`make bench`) on a real `DomainClassified` (1,474 B of JSON: two
addresses, findings, ATS), per event, best of 5 x 20,000 on this shared 2-core machine
(three runs; the quietest first, the range after):

- from JSON bytes (a consumer off the bus): msgspec struct, validated, 2.1 µs (1.9-3.5),
  against 4.0 µs (4.0-5.7) for orjson to a dict plus reading by key the fields a
  projection reads, unvalidated: typed is faster than the dicts;
- from the dict the event log hands over (psycopg already decodes jsonb with orjson):
  msgspec struct, validated, 1.4 µs (1.4-2.4) against 0.3 µs (0.3-0.5) reading the dict by
  key; frozen dataclasses built by hand-written `from_dict` (the verdict's former code),
  6.0 µs (6.0-9.6), with far less checking.

So a typed, validated payload costs about 1 µs an event over raw dict access (a replay of
a million verdicts: one second), a quarter of what dataclasses cost, and replaces the
hand-written (de)serialisers; read straight from bytes it beats the dicts.
"""
