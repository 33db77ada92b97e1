-- The W3C traceparent of the work that queued a delivery (the verdict's trace): the send's span
-- joins it, so one trace runs from the request through the probe and the verdict to the alert.
ALTER TABLE notifier_deliveries ADD COLUMN traceparent text;
