-- Removes everything Backstop created. Live and dead jobs are lost: only for tests and for
-- uninstalling.
drop schema if exists backstop cascade;
