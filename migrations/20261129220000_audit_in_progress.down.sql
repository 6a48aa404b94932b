alter table backstop.audit_log drop column in_progress;
