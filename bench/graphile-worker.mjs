// graphile-worker half of the Backstop side-by-side benchmark (see bench/README.md).
//
//   node bench/graphile-worker.mjs --jobs 200000 --concurrency 24 \
//        --latency-samples 1000 --mode defaults|tuned|all
//
// DATABASE_URL (from the environment) must point at a database whose user may create
// databases; each mode gets its own, freshly recreated `gw_bench_<mode>` beside it.
//
// Human-readable progress goes to stderr; stdout carries exactly one JSON line per mode,
// parsed by the Rust driver (bench/src/main.rs). The methodology deliberately mirrors the
// driver's Backstop half: same batch size for enqueueing, `vacuum analyze` before the run,
// "done" = jobs table empty, polled every 2 ms, same percentile formula.

// graphile-worker reads NO_LOG_SUCCESS once, at module load, to skip building a
// "Completed task ..." log line per job. Our logger drops info lines anyway (below), but
// formatting 200k strings we throw away would still be charged to graphile-worker, so turn
// it off before the (therefore dynamic) import.
process.env.NO_LOG_SUCCESS = "1";

import { parseArgs } from "node:util";
import { EventEmitter } from "node:events";
import { readFileSync } from "node:fs";

const { run, makeWorkerUtils, runMigrations, Logger } = await import("graphile-worker");
// `pg` is graphile-worker's own dependency (hoisted into node_modules); no new packages.
const { default: pg } = await import("pg");

// The version goes into the results. The package's `exports` hide package.json, so find it
// next to the resolved entry point (dist/index.js).
const GW_VERSION = JSON.parse(
  readFileSync(new URL("../package.json", import.meta.resolve("graphile-worker")), "utf8"),
).version;

// A single probe job that has not started after this long means something is broken.
const PROBE_TIMEOUT_MS = 10 * 1000;
// Clean-up on the error path must not hang either.
const CLEANUP_TIMEOUT_MS = 30 * 1000;
// Jobs per enqueue call: one statement each, as on the Backstop side.
const ENQUEUE_BATCH = 10_000;
// How often to look at the jobs table once every job has reported success.
const EMPTY_POLL_MS = 2;

// ---------------------------------------------------------------------------------------
// Arguments

const { values: opts } = parseArgs({
  options: {
    jobs: { type: "string", default: "200000" },
    concurrency: { type: "string", default: "24" },
    "latency-samples": { type: "string", default: "1000" },
    mode: { type: "string", default: "all" },
  },
  strict: true,
});
const JOBS = positiveInt(opts.jobs, "--jobs");
// Any phase (enqueue, throughput run, latency run, shutdown) that takes longer than this
// fails the whole benchmark rather than hanging the driver: 10 minutes, or 4,000 jobs/s for
// the backlog sizes (10 M) that a busy machine takes longer than that over.
const PHASE_TIMEOUT_MS = Math.max(10 * 60 * 1000, JOBS / 4);
const CONCURRENCY = positiveInt(opts.concurrency, "--concurrency");
const SAMPLES = positiveInt(opts["latency-samples"], "--latency-samples");
const MODES = ["defaults", "tuned"];
if (opts.mode !== "all" && !MODES.includes(opts.mode)) {
  die(`--mode must be defaults, tuned or all (got ${opts.mode})`);
}
const modes = opts.mode === "all" ? MODES : [opts.mode];
const BASE_URL = process.env.DATABASE_URL;
if (!BASE_URL) die("DATABASE_URL must be set (e.g. via `backstop with-postgres --durable --`)");

// ---------------------------------------------------------------------------------------
// Modes
//
// In 0.18 the batching knobs exist only as preset options (`preset.worker.*`); `run()`'s
// legacy top-level options (concurrency, maxPoolSize, pollInterval, ...) are translated
// into the same preset, so both can be mixed.
//
// Both modes set maxPoolSize to concurrency + 2: the library's default pool (10) is
// smaller than 24 workers, which it warns about at startup ("may lead to non-optimal
// performance") and its docs recommend `max(10, concurrentJobs + 2)`. (Measured here, 10 vs
// 26 makes no difference beyond run-to-run noise in either mode.) Everything else in
// `defaults` is the library default (pollInterval 2 s, no local queue, one
// complete/fail statement per job).
function runnerOptions(mode) {
  const worker = { maxPoolSize: CONCURRENCY + 2 };
  if (mode === "tuned") {
    // The settings graphile-worker's performance docs suggest for many tiny jobs:
    // lock and fetch up to 500 jobs per query into an in-process queue, and batch
    // completions/failures (0 ms = whatever piled up during the current tick).
    worker.localQueue = { size: 500 };
    worker.completeJobBatchDelay = 0;
    worker.failJobBatchDelay = 0;
  }
  return { preset: { worker } };
}

// ---------------------------------------------------------------------------------------
// Helpers

function positiveInt(s, name) {
  const n = Number(s);
  if (!Number.isSafeInteger(n) || n <= 0) die(`${name} must be a positive integer (got ${s})`);
  return n;
}

function die(message) {
  console.error(`graphile-worker bench: ${message}`);
  process.exit(2);
}

const log = (message) => console.error(`graphile-worker ${message}`);

// Warnings and errors from graphile-worker go to stderr (stdout is reserved for the JSON
// result lines); its info/debug chatter (startup banners, and per-job lines if
// NO_LOG_SUCCESS were unset) is dropped so it neither pollutes output nor costs time.
const logger = new Logger((scope) => (level, message) => {
  if (level === "error" || level === "warning") {
    console.error(`[graphile-worker ${scope.label ?? "core"}] ${level.toUpperCase()}: ${message}`);
  }
});

/** Rejects if `promise` has not settled within `ms` (default PHASE_TIMEOUT_MS). */
async function phase(name, promise, ms = PHASE_TIMEOUT_MS) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${name} took longer than ${ms / 1000} s`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const nowNs = () => process.hrtime.bigint();
const msSince = (t0) => Number(nowNs() - t0) / 1e6;

/** Same nearest-rank formula as the Rust driver, so the two halves are comparable. */
function percentile(sorted, q) {
  return sorted[Math.round((sorted.length - 1) * q)];
}

/** `DATABASE_URL` with its database name replaced. */
function urlFor(database) {
  const url = new URL(BASE_URL);
  url.pathname = `/${database}`;
  return url.toString();
}

/** Drops and recreates `name` so every run starts from an empty, unbloated database. */
async function freshDatabase(name) {
  const admin = new pg.Client({ connectionString: BASE_URL });
  await admin.connect();
  try {
    // `with (force)` (PG 13+) kicks out sessions left behind by an aborted earlier run.
    await admin.query(`drop database if exists ${name} with (force)`);
    await admin.query(`create database ${name}`);
  } finally {
    await admin.end();
  }
  return urlFor(name);
}

// ---------------------------------------------------------------------------------------
// The benchmark

async function benchMode(mode) {
  const connectionString = await freshDatabase(`gw_bench_${mode}`);
  const shared = { connectionString, logger };
  await runMigrations(shared);

  // A separate pool for enqueueing and for the probes' addJob, so the runner's own pool
  // is not shared with the "client" side.
  const utils = await makeWorkerUtils({ ...shared, maxPoolSize: 4 });
  const counter = new pg.Client({ connectionString });
  await counter.connect();
  const countJobs = async () =>
    Number(
      (await counter.query("select count(*) as n from graphile_worker._private_jobs")).rows[0].n,
    );
  let runner;
  try {
    // --- Enqueue everything first (not timed as part of throughput). addJobs is the
    // library's public bulk API: one `graphile_worker.add_jobs(...)` statement per batch.
    const enqueueStart = nowNs();
    const spec = { identifier: "noop", payload: {} };
    for (let left = JOBS; left > 0; left -= ENQUEUE_BATCH) {
      const n = Math.min(left, ENQUEUE_BATCH);
      await phase("enqueue", utils.addJobs(Array.from({ length: n }, () => spec)));
    }
    const enqueueSecs = msSince(enqueueStart) / 1000;
    log(`${mode}: enqueued ${JOBS} jobs in ${enqueueSecs.toFixed(1)}s`);
    if ((await countJobs()) !== JOBS) throw new Error("jobs table does not hold every enqueued job");
    // Give the planner statistics for the 200k-row table (as the Backstop half does), so
    // neither system is measured against a plan made for an empty table.
    await counter.query("vacuum analyze graphile_worker._private_jobs");

    // --- Throughput: one runner, CONCURRENCY workers, count `job:success` events.
    let succeeded = 0;
    let allSucceeded, jobFailed;
    const allSucceededP = new Promise((resolve, reject) => {
      allSucceeded = resolve;
      jobFailed = reject;
    });
    // Probe bookkeeping for the latency phase: the probe task resolves `probeArrived`.
    let probeArrived = null;
    const events = new EventEmitter();
    events.on("job:success", ({ job }) => {
      if (job.task_identifier === "noop" && ++succeeded === JOBS) allSucceeded();
    });
    // A no-op cannot fail; if one does, fail now instead of waiting out the timeout for
    // a success count that will never be reached (the job would be retried later).
    events.on("job:error", ({ job, error }) => {
      jobFailed(new Error(`job ${job.id} (${job.task_identifier}) failed: ${error}`));
    });
    const taskList = {
      noop: async () => {},
      // Records when the task *starts*; t0 travels in the payload (same process, so the
      // same monotonic clock).
      probe: async (payload) => {
        const latencyMs = msSince(BigInt(payload.t0));
        probeArrived?.(latencyMs);
      },
    };

    const runStart = nowNs();
    runner = await phase(
      "runner start",
      run({
        ...shared,
        ...runnerOptions(mode),
        events,
        concurrency: CONCURRENCY,
        noHandleSignals: true, // we own the process and shut the runner down ourselves
        taskList,
      }),
    );
    // A runner crash must fail the benchmark, not leave it waiting for events.
    const crashed = runner.promise.then(
      () => {
        throw new Error("runner stopped unexpectedly");
      },
      (e) => {
        throw e;
      },
    );
    crashed.catch(() => {}); // observed via the races below
    await phase("throughput run", Promise.race([allSucceededP, crashed]));
    // `job:success` fires before the job's row is deleted (and, when batched, before the
    // batch commits): done means the table is empty.
    await phase(
      "wait for empty table",
      (async () => {
        while ((await countJobs()) > 0) await sleep(EMPTY_POLL_MS);
      })(),
    );
    const seconds = msSince(runStart) / 1000;
    const jobsPerSec = JOBS / seconds;
    log(`${mode}: ${JOBS} jobs in ${seconds.toFixed(2)}s = ${Math.round(jobsPerSec)} jobs/s`);

    // --- Latency: runner idle; one probe at a time, enqueue call start -> task start. The
    // table is vacuumed first, as before the throughput run and as autovacuum soon would: the
    // phase measures an idle queue, not the dead rows of the 200,000 jobs just done.
    await counter.query("vacuum analyze graphile_worker._private_jobs");
    const latencies = [];
    const enqueueOnly = []; // how much of that is the addJob call's own (durable) commit
    await phase(
      "latency run",
      (async () => {
        for (let i = 0; i < SAMPLES; i++) {
          let timer;
          const arrived = new Promise((resolve, reject) => {
            probeArrived = resolve;
            timer = setTimeout(
              () => reject(new Error(`probe ${i} did not start within ${PROBE_TIMEOUT_MS} ms`)),
              PROBE_TIMEOUT_MS,
            );
          });
          const t0 = nowNs();
          await utils.addJob("probe", { t0: t0.toString() });
          enqueueOnly.push(msSince(t0));
          try {
            latencies.push(await Promise.race([arrived, crashed]));
          } finally {
            clearTimeout(timer);
            probeArrived = null;
          }
        }
      })(),
    );
    latencies.sort((a, b) => a - b);
    enqueueOnly.sort((a, b) => a - b);
    const p50 = percentile(latencies, 0.5);
    const p99 = percentile(latencies, 0.99);
    log(
      `${mode}: latency p50 ${p50.toFixed(2)} ms, p99 ${p99.toFixed(2)} ms ` +
        `(of which the addJob call itself: p50 ${percentile(enqueueOnly, 0.5).toFixed(2)} ms)`,
    );

    await phase("runner stop", runner.stop());
    runner = null;
    return {
      system: `graphile-worker ${GW_VERSION}`,
      mode,
      jobs: JOBS,
      concurrency: CONCURRENCY,
      seconds: round(seconds, 3),
      jobs_per_sec: round(jobsPerSec, 1),
      enqueue_jobs_per_sec: round(JOBS / enqueueSecs, 1),
      latency_p50_ms: round(p50, 3),
      latency_p99_ms: round(p99, 3),
    };
  } finally {
    // On the error path the runner may still be up; don't let cleanup hang either.
    if (runner) await phase("runner stop", runner.stop(), CLEANUP_TIMEOUT_MS).catch(() => {});
    await phase("utils release", utils.release(), CLEANUP_TIMEOUT_MS).catch(() => {});
    await phase("counter end", counter.end(), CLEANUP_TIMEOUT_MS).catch(() => {});
  }
}

function round(x, digits) {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

try {
  log(`${GW_VERSION} on Node ${process.version}: ${JOBS} jobs, concurrency ${CONCURRENCY}, ` +
    `${SAMPLES} latency samples, modes ${modes.join(", ")}`);
  for (const mode of modes) {
    const result = await benchMode(mode);
    process.stdout.write(JSON.stringify(result) + "\n");
  }
  // Explicit exit: a lingering timer or socket must not keep the process (and the driver)
  // waiting once the results are out.
  process.exit(0);
} catch (e) {
  console.error(`graphile-worker bench: FAILED: ${e?.stack ?? e}`);
  process.exit(1);
}
