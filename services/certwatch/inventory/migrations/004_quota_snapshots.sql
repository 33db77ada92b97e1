-- The quota state of each account as of a version of its quota stream: a write-side cache,
-- so deciding an enable reads the few events after it instead of the whole stream (one or
-- two events per domain ever enabled). `rules` is the fold's version: a snapshot taken
-- under other rules is ignored and replaced.
CREATE TABLE inventory_quota_snapshots (
    account_id uuid     PRIMARY KEY,
    version    integer  NOT NULL,
    rules      smallint NOT NULL,
    purchased  integer  NOT NULL,
    consumed   integer  NOT NULL,
    reserved   integer  NOT NULL
);
