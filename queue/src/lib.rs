//! Backstop: durable PostgreSQL jobs.
