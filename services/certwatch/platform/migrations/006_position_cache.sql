-- Positions only need to be unique and to increase within a transaction (global order is
-- (transaction_id, position)), so each backend may draw them from a cached block: no WAL
-- record and no shared sequence lock per event.
ALTER SEQUENCE event_position_seq CACHE 1000;
