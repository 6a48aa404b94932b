drop function if exists backstop.append_attempt_error(jsonb, jsonb, integer);
