// The real graphile-worker (the npm package pinned in package-lock.json) for the compatibility
// tests: migrates the schema of DATABASE_URL and works jobs with these tasks until killed.
//   always_fails  throws payload.message (or "always fails")
//   until_fixed   throws until a row named payload.name exists in public.gw_fixed
//   slow          takes payload.ms milliseconds (default 20 s), to be caught running
// Prints "ready" once the worker runs. Usage: node queue/tests/graphile-worker.mjs
process.env.NO_LOG_SUCCESS = "1";
const { run, Logger } = await import("graphile-worker");

const quiet = new Logger(() => (level, message) => {
  if (level === "error") console.error(message);
});

const runner = await run({
  connectionString: process.env.DATABASE_URL,
  concurrency: 4,
  pollInterval: 100,
  logger: quiet,
  taskList: {
    always_fails: async (payload) => {
      throw new Error(payload?.message ?? "always fails");
    },
    until_fixed: async (payload, helpers) => {
      const { rows } = await helpers.query("select exists (select 1 from public.gw_fixed where name = $1) as fixed", [
        payload.name,
      ]);
      if (!rows[0].fixed) throw new Error(`not fixed yet: ${payload.name}`);
    },
    slow: async (payload) => {
      await new Promise((resolve) => setTimeout(resolve, payload?.ms ?? 20_000));
    },
  },
});
console.log("ready");
await runner.promise;
