-- Bulk actions done in steps keep one audit entry, which the server now creates and binds to
-- the action, the filter and the actor: `in_progress` is true from the first step until the
-- last, and only an entry still in progress, of the same action, filter and actor, can be
-- continued (a client can no longer fold a bulk delete into an old "pause" entry). Every
-- earlier entry is a finished one. Adding a column with a constant default is instant.
alter table backstop.audit_log add column in_progress boolean not null default false;
