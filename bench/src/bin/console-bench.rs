//! `backstop-console-bench`: how fast the console answers on a big database.
//!
//! Seeds a database with 10 million jobs (9 million live, 1 million dead in ten error groups;
//! ten kinds, four queues, varied payloads and errors), starts `backstop serve` on it, and
//! times each page and filter over HTTP (the whole server-rendered page, all its data included),
//! then bulk retries of 100,000 dead jobs by filter and by error group. Prints a table. Run it
//! through `./dev bench-console` (`./dev bench-console --live 5000000` for 5 million live jobs).

use std::process::Child;
use std::time::{Duration, Instant};

use anyhow::bail;
use clap::Parser;
use sqlx::PgPool;

#[derive(Debug, Parser)]
struct Args {
    /// Live jobs to seed.
    #[arg(long, default_value_t = 9_000_000)]
    live: i64,
    /// Dead jobs to seed (ten kinds, so each kind has a tenth of them).
    #[arg(long, default_value_t = 1_000_000)]
    dead: i64,
    /// Timed requests per page (after 3 untimed warm-ups).
    #[arg(long, default_value_t = 30)]
    samples: usize,
    /// The `backstop` binary to serve the console with.
    #[arg(long, env = "BACKSTOP_BIN", default_value = "target/release/backstop")]
    backstop: String,
    /// Time the pages only: no count and no bulk retries, which change the database (retried
    /// jobs become the newest live ones), so that another run can `--reuse` it as seeded.
    #[arg(long)]
    pages_only: bool,
    /// Reuse the database an earlier `--pages-only` run seeded (same `--live` and `--dead`)
    /// instead of seeding a new one: to time another build's console on the same rows. Needs
    /// `DATABASE_URL` on a server that outlives a run (not `./dev`'s private one).
    #[arg(long, requires = "pages_only")]
    reuse: bool,
}

const KINDS: [&str; 10] = [
    "send_email",
    "charge_card",
    "deliver_webhook",
    "sync_crm",
    "resize_image",
    "daily_digest",
    "export_csv",
    "refresh_token",
    "send_sms",
    "index_document",
];

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let (admin, db_url, pool, seed_s) = if args.reuse {
        let (admin, url, pool) =
            backstop_bench::existing_database("console_bench", "bench-console", 4).await?;
        (admin, url, pool, None)
    } else {
        let backstop_bench::BenchDatabase { admin, url, pool } =
            backstop_bench::fresh_database("console_bench", "bench-console", 4).await?;
        let started = Instant::now();
        seed(&pool, args.live, args.dead).await?;
        let seed_s = started.elapsed().as_secs_f64();
        eprintln!("seeded {} live and {} dead jobs in {seed_s:.0} s", args.live, args.dead);
        (admin, url, pool, Some(seed_s))
    };

    let port = free_port()?;
    let server = Server::start(&args.backstop, &db_url, port)?;
    // reqwest is built without a default TLS provider (see the workspace's Cargo.toml).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let http = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{port}");
    server.wait_ready(&http, &base).await?;

    let ids = Ids::read(&pool).await?;
    let mut rows = Vec::new();
    for (name, path) in pages(&ids, args.live, args.dead) {
        let timings = time_get(&http, &format!("{base}{path}"), args.samples).await?;
        eprintln!(
            "{name}: p50 {:.1} ms, p95 {:.1} ms",
            percentile(&timings.ms, 0.5),
            percentile(&timings.ms, 0.95)
        );
        rows.push((name, timings));
    }

    let bulk = if args.pages_only { None } else { Some(time_bulk_actions(&http, &base, &ids).await?) };
    drop(server);

    print_machine(&admin, args.live, args.dead, seed_s).await?;
    println!();
    println!("| page or filter | p50 | p95 | max |");
    println!("|---|---:|---:|---:|");
    for (name, timings) in &rows {
        let name =
            if timings.stopped { format!("{name}: stopped by the query time limit") } else { name.clone() };
        println!(
            "| {name} | {:.1} ms | {:.1} ms | {:.1} ms |",
            percentile(&timings.ms, 0.5),
            percentile(&timings.ms, 0.95),
            percentile(&timings.ms, 1.0)
        );
    }
    if let Some(bulk) = bulk {
        bulk.print();
    }
    Ok(())
}

/// The count and the bulk retries a bulk action makes, timed.
struct BulkTimes {
    count: String,
    count_ms: f64,
    matched: u64,
    changed: u64,
    steps: u32,
    bulk_s: f64,
    group_matched: u64,
    group_changed: u64,
    group_steps: u32,
    group_s: f64,
}

/// Counts the dead jobs of one kind, retries them by filter, then retries all of one error
/// group, as the console's pages do.
async fn time_bulk_actions(http: &reqwest::Client, base: &str, ids: &Ids) -> anyhow::Result<BulkTimes> {
    let kind_filter = "filter[state]=dead&filter[kind]=resize_image";
    let count_started = Instant::now();
    let count =
        post(http, &format!("{base}/api/count_matching"), &format!("{kind_filter}&limit=100000")).await?;
    let count_ms = count_started.elapsed().as_secs_f64() * 1000.0;
    let bulk_started = Instant::now();
    let (matched, changed, steps) = bulk_retry(http, base, kind_filter).await?;
    let bulk_s = bulk_started.elapsed().as_secs_f64();
    eprintln!(
        "count {count} in {count_ms:.0} ms; bulk retry {changed} of {matched} in {steps} steps, {bulk_s:.2} s"
    );
    // "Retry all" on an error group's page: the same stepped action, filtered by the group.
    let group_filter = format!("filter[state]=dead&filter[group]={}", ids.group_to_retry);
    let group_started = Instant::now();
    let (group_matched, group_changed, group_steps) = bulk_retry(http, base, &group_filter).await?;
    let group_s = group_started.elapsed().as_secs_f64();
    eprintln!("group retry {group_changed} of {group_matched} in {group_steps} steps, {group_s:.2} s");
    Ok(BulkTimes {
        count,
        count_ms,
        matched,
        changed,
        steps,
        bulk_s,
        group_matched,
        group_changed,
        group_steps,
        group_s,
    })
}

impl BulkTimes {
    fn print(&self) {
        let BulkTimes {
            count,
            count_ms,
            matched,
            changed,
            steps,
            bulk_s,
            group_matched,
            group_changed,
            group_steps,
            group_s,
        } = self;
        println!(
            "| count dead jobs of one kind before a bulk action (answer: {count}) | {count_ms:.0} ms | | |"
        );
        println!(
            "| bulk retry of one kind of dead jobs by filter: {changed} of {matched}, {steps} steps | {bulk_s:.2} s | | |"
        );
        println!(
            "| retry all of one error group: {group_changed} of {group_matched}, {group_steps} steps | {group_s:.2} s | | |"
        );
    }
}

/// Live jobs (a twentieth retrying, a tenth scheduled) and dead ones, one statement each.
/// Payloads carry a user id (100,000 distinct), an order number and a hash; errors come from
/// realistic templates with ids and numbers in them. Live jobs fail in runs of ten (every kind
/// and queue), mostly with one partner's timeout (3 % of live jobs), then 503s, refused
/// connections and panics (0.25 %); a duplicate key is rare (1 in 100,000); and an outage long
/// ago left a burst of 0.5 % of live jobs, all among the oldest tenth, failed with
/// "connection reset by peer".
async fn seed(pool: &PgPool, live: i64, dead: i64) -> anyhow::Result<()> {
    sqlx::query(
        r#"
        insert into backstop.jobs (queue, kind, payload, run_at, attempts, errors, last_error, created_at)
        select (array['default','emails','billing','webhooks'])[1 + i % 4],
               ($2::text[])[1 + i % 10],
               jsonb_build_object('user_id', i % 100000, 'order', i, 'ref', md5(i::text)),
               now() - make_interval(secs => i % 86400)
                     + case when i % 10 = 3 then interval '2 hours' else interval '0' end,
               case when e.msg is null then 0 else 1 end,
               case when e.msg is null then '[]'::jsonb
                    else jsonb_build_array(jsonb_build_object('at', now(), 'attempt', 1,
                         'error', e.msg, 'worker', 'w1')) end,
               e.msg,
               now() - make_interval(secs => i % 86400)
        from generate_series(1, $1) i,
             lateral (select case
                 when i % 100000 = 0 then
                     format('duplicate key value violates unique constraint "orders_pkey" (order_id=%s)', i)
                 when (i / 10) % 20 = 0 then case
                     when (i / 200) % 20 < 12 then 'timeout after 30s calling api.partner.example'
                     when (i / 200) % 20 < 17 then
                         format('HTTP 503 Service Unavailable from https://api.partner.example/v2/orders/%s', i)
                     when (i / 200) % 20 < 19 then
                         format('connection refused: could not connect to db-%s.internal:5432', i % 7)
                     else format('thread panicked at src/worker.rs:%s: called Option::unwrap() on a None value',
                                 40 + i % 9)
                 end
                 when i % 4 = 1 and i > $1 / 10 and i <= $1 / 10 + $1 / 50 then
                     'connection reset by peer (os error 104) sending to gateway.partner.example:443'
             end as msg) e
        "#,
    )
    .bind(live)
    .bind(KINDS.as_slice())
    .execute(pool)
    .await?;
    sqlx::query(
        r#"
        insert into backstop.dead_jobs (id, queue, kind, payload, priority, attempts, max_attempts,
                                        errors, last_error, created_at, died_at, reason)
        select 1000000000 + i,
               (array['default','emails','billing','webhooks'])[1 + i % 4],
               ($2::text[])[1 + i % 10],
               jsonb_build_object('user_id', i % 100000, 'order', i, 'ref', md5(i::text)),
               0, 5, 5,
               jsonb_build_array(jsonb_build_object('at', now(), 'attempt', 5, 'error', e.msg, 'worker', 'w1')),
               e.msg,
               now() - make_interval(secs => i % 604800) - interval '1 hour',
               now() - make_interval(secs => i % 604800),
               'exhausted'
        from generate_series(1, $1) i,
             lateral (select case i % 5
                 when 0 then format('connection refused: could not connect to db-%s.internal:5432', i % 7)
                 when 1 then format('HTTP 503 Service Unavailable from https://api.partner.example/v2/orders/%s', i)
                 when 2 then format('duplicate key value violates unique constraint "orders_pkey" (order_id=%s)', i)
                 when 3 then format('timeout after 30s calling api.partner.example (request %s)', md5(i::text))
                 else format('thread panicked at src/worker.rs:%s: called Option::unwrap() on a None value', 40 + i % 9)
             end as msg) e
        "#,
    )
    .bind(dead)
    .bind(KINDS.as_slice())
    .execute(pool)
    .await?;
    group_dead_jobs(pool).await?;
    sqlx::query("vacuum analyze backstop.jobs").execute(pool).await?;
    sqlx::query("vacuum analyze backstop.dead_jobs").execute(pool).await?;
    // Write the load out now, so its checkpoint does not land in the first pages timed.
    sqlx::query("checkpoint").execute(pool).await?;
    Ok(())
}

/// Puts the seeded dead jobs in error groups as the runner would have: one group per kind and
/// error template (ten groups of 100,000 for a million), with hourly arrivals for sparklines.
async fn group_dead_jobs(pool: &PgPool) -> anyhow::Result<()> {
    sqlx::query(
        r#"
        insert into backstop.error_groups (fingerprint, source, kind, queue, message, sample_error,
                                           sample_job_id, total, digested_total, first_seen, last_seen)
        select md5(kind || ':' || template), 'backstop', kind, min(queue), min(last_error), min(last_error),
               max(id), count(*), count(*), min(died_at), max(died_at)
        from (select kind, queue, id, last_error, died_at, (id - 1000000000) % 5 as template
              from backstop.dead_jobs) d
        group by kind, template
        "#,
    )
    .execute(pool)
    .await?;
    sqlx::query(
        "update backstop.dead_jobs d set group_id = g.id from backstop.error_groups g
         where g.fingerprint = md5(d.kind || ':' || (d.id - 1000000000) % 5)",
    )
    .execute(pool)
    .await?;
    sqlx::query(
        "insert into backstop.error_group_arrivals (group_id, hour, arrivals)
         select group_id, date_trunc('hour', died_at), count(*) from backstop.dead_jobs group by 1, 2",
    )
    .execute(pool)
    .await?;
    Ok(())
}

/// Ids and cursors for detail pages and deep pages, read from the seeded tables.
struct Ids {
    live: i64,
    live_middle: i64,
    dead: i64,
    dead_middle: String,
    /// The error group of one kind's dead jobs (charge_card), and another's to retry (send_email).
    group: i64,
    group_to_retry: i64,
}

impl Ids {
    async fn read(pool: &PgPool) -> anyhow::Result<Ids> {
        let (live, live_middle): (i64, i64) =
            sqlx::query_as("select max(id), (min(id) + max(id)) / 2 from backstop.jobs")
                .fetch_one(pool)
                .await?;
        let (dead, at, id): (i64, chrono::DateTime<chrono::Utc>, i64) = sqlx::query_as(
            "select (select max(id) from backstop.dead_jobs), died_at, id from backstop.dead_jobs
             order by died_at desc, id desc offset (select count(*) / 2 from backstop.dead_jobs) limit 1",
        )
        .fetch_one(pool)
        .await?;
        let group_of = |kind: &'static str| {
            sqlx::query_scalar::<_, i64>("select id from backstop.error_groups where kind = $1")
                .bind(kind)
                .fetch_one(pool)
        };
        let (group, group_to_retry) = (group_of("charge_card").await?, group_of("send_email").await?);
        // The console's dead-job cursor: died_at in microseconds, then the id.
        Ok(Ids {
            live,
            live_middle,
            dead,
            dead_middle: format!("{}_{id}", at.timestamp_micros()),
            group,
            group_to_retry,
        })
    }
}

/// Every page and filter timed, as (name, path).
fn pages(ids: &Ids, live: i64, dead: i64) -> Vec<(String, String)> {
    let mut pages: Vec<(String, String)> = vec![
        ("overview".into(), "/".into()),
        ("jobs, first page".into(), "/jobs".into()),
        ("jobs, deep page (keyset, middle of the table)".into(), format!("/jobs?before={}", ids.live_middle)),
        ("jobs, state = retrying".into(), "/jobs?state=retrying".into()),
        ("jobs, error text \"timeout\"".into(), "/jobs?error=timeout".into()),
        ("job detail (live)".into(), format!("/jobs/{}", ids.live)),
        ("dead letters, first page".into(), "/dead-letters".into()),
        (
            "dead letters, deep page (keyset, middle of the table)".into(),
            format!("/dead-letters?before={}", ids.dead_middle),
        ),
        ("dead letters, kind".into(), "/dead-letters?kind=charge_card".into()),
        ("dead letters, payload {\"user_id\": 4242}".into(), format!("/dead-letters?payload={PAYLOAD}")),
        (
            "dead letters, error text \"connection refused\"".into(),
            "/dead-letters?error=connection%20refused".into(),
        ),
        ("job detail (dead)".into(), format!("/jobs/{}", ids.dead)),
        ("queues".into(), "/queues".into()),
        ("audit log".into(), "/audit".into()),
        ("triage (error groups)".into(), "/triage".into()),
        ("error group page (100,000 dead jobs)".into(), format!("/triage/{}", ids.group)),
        ("dead letters, error group".into(), format!("/dead-letters?group={}", ids.group)),
    ];
    pages.extend(live_filters(live));
    pages.extend(dead_filters(dead));
    pages
}

/// `{"user_id": 4242}`, URL-encoded: 90 of the live jobs and 10 of the dead ones.
const PAYLOAD: &str = "%7B%22user_id%22%3A%204242%7D";

/// The commonest error, pasted whole into the error filter (URL-encoded).
const COMMON_MESSAGE: &str = "timeout%20after%2030s%20calling%20api.partner.example";

/// Live-job searches, common and rare: the planner must pick the newest-first scan for the
/// first and the live table's search indexes (migrations 20261127000001_live_search and
/// 20261130000007_failed_waiting) for the second. Error text is searched among the newest
/// failed jobs first, then through the full-text index (see `JOB_SEARCH` in the queue crate):
/// each of the seed's errors is searched, from a common message pasted whole to one that was
/// common only long ago.
fn live_filters(live: i64) -> Vec<(String, String)> {
    vec![
        ("jobs, queue".into(), "/jobs?queue=billing".into()),
        ("jobs, state = queued".into(), "/jobs?state=queued".into()),
        ("jobs, state = scheduled".into(), "/jobs?state=scheduled".into()),
        ("jobs, state = running (none running)".into(), "/jobs?state=running".into()),
        ("jobs, kind".into(), "/jobs?kind=charge_card".into()),
        ("jobs, kind matching nothing".into(), "/jobs?kind=no_such_kind".into()),
        ("jobs, queue + kind".into(), "/jobs?queue=billing&kind=deliver_webhook".into()),
        ("jobs, queue + kind matching nothing".into(), "/jobs?queue=billing&kind=sync_crm".into()),
        ("jobs, payload {\"user_id\": 4242}".into(), format!("/jobs?payload={PAYLOAD}")),
        ("jobs, payload matching nothing".into(), "/jobs?payload=%7B%22user_id%22%3A%20-1%7D".into()),
        (
            format!(
                "jobs, error text: the commonest message pasted whole ({} jobs)",
                thousands(live * 3 / 100)
            ),
            format!("/jobs?error={COMMON_MESSAGE}"),
        ),
        (
            format!("jobs, error text \"panicked\" ({} jobs)", thousands(live / 400)),
            "/jobs?error=panicked".into(),
        ),
        (
            format!(
                "jobs, error text \"connection reset\" (about {} jobs, all among the oldest tenth)",
                thousands(live / 200)
            ),
            "/jobs?error=connection%20reset".into(),
        ),
        (
            format!("jobs, error text \"duplicate key\" (rare: {} jobs)", thousands(live / 100_000)),
            "/jobs?error=duplicate%20key".into(),
        ),
        ("jobs, error text matching nothing".into(), "/jobs?error=nosuchword".into()),
        ("jobs, state = retrying, kind".into(), "/jobs?state=retrying&kind=send_email".into()),
        (
            "jobs, state = retrying, kind, error text \"timeout\"".into(),
            "/jobs?state=retrying&kind=send_email&error=timeout".into(),
        ),
    ]
}

/// Dead-letter searches the first list lacks: queue, and error text common (pasted whole),
/// rare and matching nothing.
fn dead_filters(dead: i64) -> Vec<(String, String)> {
    vec![
        ("dead letters, queue".into(), "/dead-letters?queue=billing".into()),
        (
            format!("dead letters, error text: a common message pasted whole ({} jobs)", thousands(dead / 5)),
            format!("/dead-letters?error={COMMON_MESSAGE}"),
        ),
        ("dead letters, error text \"4242\" (rare: 1 job)".into(), "/dead-letters?error=4242".into()),
        ("dead letters, error text matching nothing".into(), "/dead-letters?error=nosuchword".into()),
    ]
}

/// 1234567 as "1,234,567".
fn thousands(n: i64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Retries every dead job the filter matches, step by step as the console's page does;
/// returns (matched, changed, steps).
async fn bulk_retry(http: &reqwest::Client, base: &str, filter: &str) -> anyhow::Result<(u64, u64, u32)> {
    let (mut matched, mut changed, mut steps) = (0, 0, 0);
    let mut next = String::new();
    loop {
        let body =
            post(http, &format!("{base}/api/act_on_matching"), &format!("action=retry&{filter}{next}"))
                .await?;
        let step: serde_json::Value = serde_json::from_str(&body)?;
        matched += step["matched"].as_u64().unwrap_or(0);
        changed += step["changed"].as_u64().unwrap_or(0);
        steps += 1;
        match step["next"].as_str() {
            Some(after) => next = format!("&after={after}&audit_id={}", step["audit_id"]),
            None => return Ok((matched, changed, steps)),
        }
    }
}

/// Times `samples` GETs of `url` after 3 warm-ups. A page that says its query was stopped by
/// the console's time limit is timed too, with fewer samples (each costs the whole limit), and
/// reported as stopped.
async fn time_get(http: &reqwest::Client, url: &str, samples: usize) -> anyhow::Result<Timings> {
    let mut timings = Timings { ms: Vec::with_capacity(samples), stopped: false };
    let mut wanted = samples + 3;
    let mut i = 0;
    while i < wanted {
        let started = Instant::now();
        let response = http.get(url).send().await?;
        let status = response.status();
        let body = response.text().await?;
        let ms = started.elapsed().as_secs_f64() * 1000.0;
        if !status.is_success() || body.contains("Internal error") {
            bail!("GET {url}: {status}: {}", &body[..body.len().min(500)]);
        }
        if body.contains("took too long and was stopped") && !timings.stopped {
            timings.stopped = true;
            wanted = wanted.min(i + 4);
        }
        if i >= 3 || timings.stopped {
            timings.ms.push(ms);
        }
        i += 1;
    }
    Ok(timings)
}

/// One page's request times, and whether its query hit the console's time limit.
struct Timings {
    ms: Vec<f64>,
    stopped: bool,
}

/// A server-function call, as the console's own pages make it.
async fn post(http: &reqwest::Client, url: &str, form: &str) -> anyhow::Result<String> {
    let response = http
        .post(url)
        .header("content-type", "application/x-www-form-urlencoded")
        .header("sec-fetch-site", "same-origin")
        .body(form.to_owned())
        .send()
        .await?;
    let status = response.status();
    let body = response.text().await?;
    if !status.is_success() {
        bail!("POST {url}: {status}: {body}");
    }
    Ok(body)
}

fn percentile(samples: &[f64], q: f64) -> f64 {
    let mut sorted = samples.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted[((sorted.len() as f64 - 1.0) * q).round() as usize]
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// `backstop serve` on the seeded database, stopped when dropped.
struct Server(Child);

impl Server {
    fn start(binary: &str, db_url: &str, port: u16) -> anyhow::Result<Server> {
        let bind = format!("127.0.0.1:{port}");
        Ok(Server(backstop_bench::spawn_serve(binary, db_url, &["--bind", &bind])?))
    }

    async fn wait_ready(&self, http: &reqwest::Client, base: &str) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if http.get(format!("{base}/audit")).send().await.is_ok_and(|r| r.status().is_success()) {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        bail!("the console did not answer within 60 s")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn print_machine(admin: &PgPool, live: i64, dead: i64, seed_s: Option<f64>) -> anyhow::Result<()> {
    let version: String = sqlx::query_scalar("show server_version").fetch_one(admin).await?;
    let mut settings = Vec::new();
    for name in ["fsync", "shared_buffers", "work_mem"] {
        let value: String =
            sqlx::query_scalar(sqlx::AssertSqlSafe(format!("show {name}"))).fetch_one(admin).await?;
        settings.push(format!("{name}={value}"));
    }
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0);
    println!(
        "machine: {cores} cores; PostgreSQL {version} ({}); {live} live + {dead} dead jobs, {}",
        settings.join(", "),
        seed_s.map_or("as an earlier run seeded them".to_owned(), |s| format!("seeded in {s:.0} s"))
    );
    Ok(())
}
