drop statistics if exists backstop.jobs_error_words;
drop statistics if exists backstop.jobs_queue_kind;
drop index if exists backstop.jobs_retrying;
drop index if exists backstop.jobs_error_text_failed;
drop index if exists backstop.jobs_payload_waiting;
drop index if exists backstop.jobs_kind_waiting;
