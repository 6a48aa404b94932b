drop table if exists backstop.queue_health_alerts;
