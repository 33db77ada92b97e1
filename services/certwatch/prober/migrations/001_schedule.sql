-- The probe schedule, a projection of domain lifecycle events. Probers claim due rows with
-- FOR UPDATE SKIP LOCKED and push `next_due` forward by a lease, so N replicas never probe
-- one domain twice in a round, and a prober that dies mid-batch only delays its rows by
-- the lease.
CREATE TABLE probe_schedule (
    domain_id   uuid        PRIMARY KEY,
    account_id  uuid        NOT NULL,
    host        text        NOT NULL,
    port        integer     NOT NULL,
    generation  integer     NOT NULL,
    traceparent text,
    first_check boolean     NOT NULL DEFAULT true,
    paused      boolean     NOT NULL DEFAULT false,
    next_due    timestamptz NOT NULL,
    claimed_by  text,
    last_probed timestamptz
);
CREATE INDEX probe_schedule_due ON probe_schedule (next_due) WHERE NOT paused;
