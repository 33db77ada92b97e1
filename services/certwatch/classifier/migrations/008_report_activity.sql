-- The monthly and per-domain reports read an account's alerts and renewals from their
-- contract events by the time they record (classifier/reports/activity.py). Without this
-- the alerts query scanned every event of the log (~290 ms at 1M events, 300k of them
-- notifications, twice a PDF). Partial: only those four event types are indexed, so appends
-- of every other event (probes, statuses) pay nothing. `at` as "C"-collated text, because
-- its cast to timestamptz is not immutable; the query takes a range of dates a day wider.
CREATE INDEX events_report_activity ON events (event_type, (data->>'account_id'), ((data->>'at') COLLATE "C"))
    WHERE event_type IN ('NotificationSent', 'NotificationFailed', 'HostingRenewalSucceeded', 'HostingRenewalFailed');
