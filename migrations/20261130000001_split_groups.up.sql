-- Operators split error groups: a group whose template varies at a place that, to them, names
-- the problem (a bucket, a tenant, a provider) becomes one group per value found there among its
-- dead jobs. Each of those keeps the place fixed, one bit per token position, so template
-- learning never widens it again, and a new value there starts a group of its own
-- (queue/src/triage/split.rs).
--
-- Operator notes: one column with a constant default (instant, no rewrite).

alter table backstop.error_groups add column template_fixed bigint not null default 0;
