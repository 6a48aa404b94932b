-- The enqueuing request's trace context (W3C `traceparent`, and `tracestate` when there is
-- one), so the job's span joins the trace that enqueued it. Written only by a Backstop built
-- with its `opentelemetry` feature, and only when the enqueue ran inside a sampled-or-not
-- span; otherwise null, which costs a null-bitmap bit per row. Carried into the dead-letter
-- table and back when a dead job is retried.
alter table backstop.jobs add column trace_context jsonb;
alter table backstop.dead_jobs add column trace_context jsonb;
