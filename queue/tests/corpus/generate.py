#!/usr/bin/env python3
"""Labelled corpus of dead-job error messages for measuring Backstop's error grouper.

What this is
    Synthetic but realistic failure messages, as Backstop stores them in `last_error` when a
    job dies, each labelled with the *problem* it belongs to: the group a person on call wants
    to see as one row in the console. A grouper is scored by grouping accuracy: the share of
    messages whose predicted group holds exactly the same messages as their true group.

    Sources (the `source` field): postgres (as sqlx formats database errors), reqwest (HTTP
    client errors), rust-panic (panic messages with backtraces), node (graphile-worker task
    errors with stacks), python (tracebacks), smtp (server replies), payment (Stripe-like
    provider errors and billing rules), webhook (outgoing webhook responses, including long
    proxy HTML pages), timeout, s3 (object storage), serde-json (decode errors), os (io errors).

How labels were chosen (the same rules are in README.md)
    One group = one problem. Within a group these vary, as they do in production: ids of every
    length (1 to 19 digits), UUIDs, emails, amounts, request/charge/customer ids, timestamps (in
    several formats), durations and byte counts, the thread name of a panic, line:column of the
    same frame (code moves between deploys), stack frames below the failing frame, quoted user
    values (with spaces and non-ASCII), JSON bodies, attempt counters, proxy ray ids and client
    IPs, the presence or absence of a backtrace.
    Groups are split when any of these differ: the constraint name; the table / relation or
    column named; the HTTP status (502 vs 503 vs 404 vs 429, even for the same host); the
    exception class or error kind; the missing field or key name; the decline code; the SMTP
    reply code (550 vs 554, even with the same text); the file of a panic location; the OS error
    code; the TLS verification failure; the partner host of a DNS / connect / webhook failure
    (a host that stays constant within a problem keeps problems apart) -- except webhook 410
    Gone, where every subscriber's endpoint being deleted is one problem with one fix.
    Labels are short slugs: <source prefix>-<kind>-<what stays constant>.

How to regenerate
    python3 queue/tests/corpus/generate.py > queue/tests/corpus/job-failures.jsonl
    Output is deterministic (one random.Random(SEED), no clock, no environment); Python 3.11,
    standard library only. Lines are in arrival order over a simulated week: groups are mixed,
    some arrive steadily, some in bursts (outages, deploys), some 2-5 times, a few once.
"""

import json
import random
import sys
from datetime import datetime, timedelta, timezone

SEED = 20261129
START = datetime(2026, 11, 16, 0, 0, 0, tzinfo=timezone.utc)
WEEK = 7 * 24 * 3600.0
# Deploys change line numbers in stacks and the rustc hash in backtraces.
DEPLOYS = [0.0, 2.3 * 86400, 5.1 * 86400]
RUSTC = ["90b35a6239c3d8bdabc530a6a0816f7ff89a0aaf", "129f3b9964af4d4a709d1383930ade12dfe7c081",
         "129f3b9964af4d4a709d1383930ade12dfe7c081"]


def deploy_of(sec):
    return max(i for i, d in enumerate(DEPLOYS) if sec >= d)


# ---------------------------------------------------------------- variable parts

B62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def num_id(r, lo=1, hi=19):
    """An id of any length: half uniform over lo..hi digits, half typical 3..7 digits."""
    n = r.randint(lo, hi) if r.random() < 0.5 else r.randint(max(lo, 3), min(hi, 7))
    first = r.randint(1, 8 if n == 19 else 9)
    return str(first) + "".join(str(r.randint(0, 9)) for _ in range(n - 1))


def small_id(r):
    return str(r.choice([r.randint(1, 9), r.randint(10, 99), r.randint(100, 999), r.randint(1000, 99999)]))


def b62(r, n):
    return "".join(r.choice(B62) for _ in range(n))


def hexs(r, n):
    return "".join(r.choice("0123456789abcdef") for _ in range(n))


def uuid4(r):
    h = hexs(r, 32)
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{r.choice('89ab')}{h[17:20]}-{h[20:]}"


FIRST = ["bob", "alice", "jane", "li", "zoë", "josé", "mohammed", "o.brien", "anna-maria", "kenji",
         "x", "sam", "priya", "lukas", "fatima", "wei", "ola", "chris", "dmitri", "grace"]
LAST = ["smith", "doe", "nguyen", "müller", "garcia", "ito", "khan", "brown", "rossi", "kowalski"]
DOMAINS = ["example.org", "example.com", "gmail.com", "outlook.com", "acme.io", "mail.example.de",
           "yahoo.co.jp", "customer-17.example", "proton.me", "fastmail.fm"]


def email(r, ascii_only=False):
    f = r.choice(FIRST)
    if ascii_only:
        f = f.replace("ë", "e").replace("é", "e")
    style = r.randint(0, 4)
    if style == 0:
        local = f
    elif style == 1:
        local = f"{f}.{r.choice(LAST)}"
    elif style == 2:
        local = f"{f}{r.randint(1, 9999)}"
    elif style == 3:
        local = f"{f}+{r.choice(['news', 'shop', 'test', 'x'])}"
    else:
        local = f"{f[0]}{r.choice(LAST)}"
    if ascii_only:
        local = local.replace("ü", "u")
    return f"{local}@{r.choice(DOMAINS)}"


USER_VALUES = ["Jane Doe", "abc", "N/A", "José Álvarez", "O'Brien & Sons, Ltd.", "北京市朝阳区",
               "  ", "null", "12 345", "Zoë", "TBD - ask Mark", "😀 party", "1e9", "--", "yes",
               "Müller GmbH", "n/a (see notes)", "0x1F", "ten", "-", "Ωmega"]


def user_value(r):
    if r.random() < 0.25:
        return b62(r, r.randint(1, 12))
    return r.choice(USER_VALUES)


def ip(r, private=False):
    if private:
        return f"10.{r.randint(0, 9)}.{r.randint(0, 255)}.{r.randint(1, 254)}"
    return f"{r.randint(1, 223)}.{r.randint(0, 255)}.{r.randint(0, 255)}.{r.randint(1, 254)}"


def rfc3339(t, r):
    return t.strftime("%Y-%m-%dT%H:%M:%S") + f".{r.randint(0, 999):03d}Z"


def pg_ts(t, r):
    return t.strftime("%Y-%m-%d %H:%M:%S") + f".{r.randint(0, 999999):06d}+00"


def http_date(t):
    return t.strftime("%a, %d %b %Y %H:%M:%S GMT")


def amount(r):
    return r.choice([r.randint(50, 999), r.randint(1000, 99999), r.randint(100000, 9999999)])


def money(r):
    c = amount(r)
    return f"{c // 100}.{c % 100:02d}"


def sig(r):
    return hexs(r, r.choice([16, 32, 64]))


# ---------------------------------------------------------------- shared shapes

def sqlx(msg, detail=None, hint=None):
    s = "error returned from database: " + msg
    if detail:
        s += "\nDETAIL: " + detail
    if hint:
        s += "\nHINT: " + hint
    return s


def rust_panic(r, t, d, file, line_by_deploy, msg, app_frames):
    thread = r.choice(["tokio-runtime-worker"] * 5 + ["backstop-worker-3", "backstop-worker-11", "<unnamed>"])
    line, col = line_by_deploy[d]
    s = f"thread '{thread}' panicked at {file}:{line}:{col}:\n{msg}\n"
    if r.random() < 0.3:
        return s + "note: run with `RUST_BACKTRACE=1` environment variable to display a backtrace"
    rc = RUSTC[d]
    frames = [("rust_begin_unwind", f"/rustc/{rc}/library/std/src/panicking.rs:652:5"),
              ("core::panicking::panic_fmt", f"/rustc/{rc}/library/core/src/panicking.rs:72:14")]
    if "None" in msg:
        frames.append(("core::panicking::panic", f"/rustc/{rc}/library/core/src/panicking.rs:146:5"))
        frames.append(("core::option::unwrap_failed", f"/rustc/{rc}/library/core/src/option.rs:2009:5"))
    elif "Err" in msg:
        frames.append(("core::result::unwrap_failed", f"/rustc/{rc}/library/core/src/result.rs:1679:5"))
    for i, (fn, ln) in enumerate(app_frames):
        frames.append((fn, f"./{file if i == 0 else ln[0]}:{line if i == 0 else ln[1][d]}:{col if i == 0 else 9}"))
    tail = [("backstop::runtime::worker::run_job::{{closure}}", "/usr/local/cargo/git/checkouts/backstop/queue/src/runtime/worker.rs:211:31"),
            ("tokio::runtime::task::core::Core<T,S>::poll", "/usr/local/cargo/registry/src/index.crates.io-6f17d22bba15001f/tokio-1.41.1/src/runtime/task/core.rs:331:17"),
            ("tokio::runtime::task::harness::Harness<T,S>::poll", "/usr/local/cargo/registry/src/index.crates.io-6f17d22bba15001f/tokio-1.41.1/src/runtime/task/harness.rs:154:15"),
            ("tokio::runtime::scheduler::multi_thread::worker::Context::run_task", "/usr/local/cargo/registry/src/index.crates.io-6f17d22bba15001f/tokio-1.41.1/src/runtime/scheduler/multi_thread/worker.rs:596:9"),
            ("std::sys::pal::unix::thread::Thread::new::thread_start", f"/rustc/{rc}/library/std/src/sys/pal/unix/thread.rs:105:17"),
            ("start_thread", None), ("clone", None)]
    frames += tail[: r.randint(3, len(tail))]
    out = ["stack backtrace:"]
    for i, (fn, at) in enumerate(frames):
        out.append(f"{i:4d}: {fn}")
        if at:
            out.append(f"             at {at}")
    out.append("note: Some details are omitted, run with `RUST_BACKTRACE=full` for a verbose backtrace.")
    return s + "\n".join(out)


def node_stack(r, d, head, frames):
    lines = [head]
    for fn, path, lc in frames:
        l, c = lc[d] if isinstance(lc, list) else lc
        lines.append(f"    at {fn} ({path}:{l}:{c})" if fn else f"    at {path}:{l}:{c}")
    gw = r.choice(["0.16.6", "0.16.6", "0.17.0-rc.0"])
    lines.append(f"    at async doNext (/app/node_modules/graphile-worker/dist/worker.js:{r.choice([287, 287, 301])}:{r.choice([25, 29])})")
    if r.random() < 0.5:
        lines.append("    at process.processTicksAndRejections (node:internal/process/task_queues:95:5)")
    return "\n".join(lines)


def py_tb(r, d, frames, exc):
    out = ["Traceback (most recent call last):"]
    if r.random() < 0.4:
        out += ['  File "/usr/local/lib/python3.11/site-packages/rq/worker.py", line 1431, in perform_job',
                "    rv = job.perform()"]
    for path, lines, fn, src in frames:
        out.append(f'  File "{path}", line {lines[d]}, in {fn}')
        out.append(f"    {src}")
    out.append(exc)
    return "\n".join(out)


# ---------------------------------------------------------------- long HTML pages

_CSS_SELECTORS = ["html", "body", "#cf-wrapper", "#cf-error-details", ".cf-section", ".cf-column",
                  ".cf-highlight", ".cf-error-title", ".cf-error-type", ".cf-footer", ".cf-footer-item",
                  ".cf-footer-separator", ".cf-icon-error-container", ".cf-icon", ".cf-icon-browser",
                  ".cf-icon-cloud", ".cf-icon-server", ".cf-status-label", ".cf-status-name",
                  ".cf-status-desc", ".cf-text-error", ".cf-text-success", ".cf-wrapper h1",
                  ".cf-wrapper h2", ".cf-wrapper p", ".cf-wrapper a", ".cf-columns", ".cf-columns.two",
                  ".cf-columns.three", ".cf-table", ".cf-caret", ".cf-row", "@media (max-width: 720px)"]
_CSS_PROPS = ["margin: 0 auto", "padding: 0 15px", "font-family: -apple-system, system-ui, BlinkMacSystemFont, \"Segoe UI\", Roboto, Ubuntu, \"Helvetica Neue\", Arial, sans-serif",
              "color: #404040", "line-height: 1.5", "max-width: 960px", "display: block",
              "background-color: #f2f2f2", "border-bottom: 1px solid #d9d9d9", "font-size: 15px",
              "text-align: center", "position: relative", "width: 100%", "overflow: hidden",
              "-webkit-font-smoothing: antialiased", "box-sizing: border-box", "font-weight: 300"]


def _css():
    r = random.Random(502)  # fixed: the proxy's page template is the same every time
    rules = []
    for sel in _CSS_SELECTORS:
        props = r.sample(_CSS_PROPS, r.randint(3, 7))
        rules.append(sel + " { " + "; ".join(props) + "; }")
    return "\n".join(rules)


CF_CSS = _css()


def cloudflare_502(r, t, host):
    ray = hexs(r, 16)
    when = t.strftime("%Y-%m-%d %H:%M:%S") + " UTC"
    cip = ip(r)
    return f"""<!DOCTYPE html>
<!--[if lt IE 7]> <html class="no-js ie6 oldie" lang="en-US"> <![endif]-->
<!--[if IE 7]>    <html class="no-js ie7 oldie" lang="en-US"> <![endif]-->
<!--[if IE 8]>    <html class="no-js ie8 oldie" lang="en-US"> <![endif]-->
<!--[if gt IE 8]><!--> <html class="no-js" lang="en-US"> <!--<![endif]-->
<head>
<title>{host} | 502: Bad gateway</title>
<meta charset="UTF-8" />
<meta http-equiv="Content-Type" content="text/html; charset=UTF-8" />
<meta http-equiv="X-UA-Compatible" content="IE=Edge" />
<meta name="robots" content="noindex, nofollow" />
<meta name="viewport" content="width=device-width,initial-scale=1" />
<style>
{CF_CSS}
</style>
</head>
<body>
<div id="cf-wrapper">
  <div id="cf-error-details" class="p-0">
    <header class="mx-auto pt-10 lg:pt-6 lg:px-8 w-240 lg:w-full mb-8">
      <h1 class="inline-block sm:block sm:mb-2 font-light text-60 lg:text-4xl text-black-dark leading-tight mr-2">
        <span class="inline-block">Bad gateway</span>
        <span class="code-label">Error code 502</span>
      </h1>
      <div>Visit <a href="https://www.cloudflare.com/5xx-error-landing?utm_source=errorcode_502&utm_campaign={host}" target="_blank" rel="noopener noreferrer">cloudflare.com</a> for more information.</div>
      <div class="mt-3">{when}</div>
    </header>
    <div class="my-8 bg-gradient-gray">
      <div class="w-240 lg:w-full mx-auto">
        <div class="clearfix md:px-8">
          <div id="cf-browser-status" class="relative w-1/3 md:w-full py-15 md:p-0 md:py-8 md:text-left md:border-solid md:border-0 md:border-b md:border-gray-400 overflow-hidden float-left md:float-none text-center">
            <div class="relative mb-10 md:m-0"><span class="cf-icon-browser block md:hidden h-20 bg-center bg-no-repeat"></span><span class="cf-icon-ok w-12 h-12 absolute left-1/2 md:left-auto md:right-0 md:top-0 -ml-6 -bottom-4"></span></div>
            <span class="md:block w-full truncate">You</span>
            <h3 class="md:inline-block mt-3 md:mt-0 text-2xl text-gray-600 font-light leading-1.3">Browser</h3>
            <span class="leading-1.3 text-2xl text-green-success">Working</span>
          </div>
          <div id="cf-cloudflare-status" class="relative w-1/3 md:w-full py-15 md:p-0 md:py-8 md:text-left md:border-solid md:border-0 md:border-b md:border-gray-400 overflow-hidden float-left md:float-none text-center">
            <span class="md:block w-full truncate">Frankfurt</span>
            <h3 class="md:inline-block mt-3 md:mt-0 text-2xl text-gray-600 font-light leading-1.3">Cloudflare</h3>
            <span class="leading-1.3 text-2xl text-green-success">Working</span>
          </div>
          <div id="cf-host-status" class="cf-error-source relative w-1/3 md:w-full py-15 md:p-0 md:py-8 md:text-left md:border-solid md:border-0 md:border-b md:border-gray-400 overflow-hidden float-left md:float-none text-center">
            <span class="md:block w-full truncate">{host}</span>
            <h3 class="md:inline-block mt-3 md:mt-0 text-2xl text-gray-600 font-light leading-1.3">Host</h3>
            <span class="leading-1.3 text-2xl text-red-error">Error</span>
          </div>
        </div>
      </div>
    </div>
    <div class="w-240 lg:w-full mx-auto mb-8 lg:px-8">
      <div class="clearfix">
        <div class="w-1/2 md:w-full float-left pr-6 md:pb-10 md:pr-0 leading-relaxed">
          <h2 class="text-3xl font-normal leading-1.3 mb-4">What happened?</h2>
          <p>The web server reported a bad gateway error.</p>
        </div>
        <div class="w-1/2 md:w-full float-left leading-relaxed">
          <h2 class="text-3xl font-normal leading-1.3 mb-4">What can I do?</h2>
          <p class="mb-6">Please try again in a few minutes.</p>
        </div>
      </div>
    </div>
    <div class="cf-error-footer cf-wrapper w-240 lg:w-full py-10 sm:py-4 sm:px-8 mx-auto text-center sm:text-left border-solid border-0 border-t border-gray-300">
      <p class="text-13">
        <span class="cf-footer-item sm:block sm:mb-1">Cloudflare Ray ID: <strong class="font-semibold">{ray}</strong></span>
        <span class="cf-footer-separator sm:hidden">&bull;</span>
        <span id="cf-footer-item-ip" class="cf-footer-item sm:block sm:mb-1">Your IP: <span class="hidden" id="cf-footer-ip">{cip}</span></span>
        <span class="cf-footer-separator sm:hidden">&bull;</span>
        <span class="cf-footer-item sm:block sm:mb-1"><span>Performance &amp; security by</span> <a rel="noopener noreferrer" href="https://www.cloudflare.com/5xx-error-landing?utm_source=errorcode_502" id="brand_link" target="_blank">Cloudflare</a></span>
      </p>
    </div>
  </div>
</div>
</body>
</html>"""


def maintenance_503(r, t, host):
    incident = f"INC-{num_id(r, 3, 7)}"
    back = (t + timedelta(hours=r.randint(1, 4))).strftime("%H:%M")
    req = uuid4(r)
    paras = "\n".join(
        f"    <p class=\"note\">{p}</p>" for p in [
            "Wir führen gerade geplante Wartungsarbeiten an unserer Plattform durch. Während dieser Zeit sind Schnittstellen, Webhooks und das Kundenportal nicht erreichbar.",
            "We are currently performing scheduled maintenance on our platform. During this window our APIs, webhook receivers and the customer portal are unavailable.",
            "Nous effectuons actuellement une maintenance planifiée. Les API et les webhooks sont temporairement indisponibles.",
            "Bitte versuchen Sie es später erneut. Eingehende Webhooks werden nicht zwischengespeichert – bitte senden Sie sie nach Abschluss der Wartung erneut.",
            "Please retry later. Incoming webhooks are not buffered – please redeliver them once maintenance has finished.",
            "Status updates: https://status.globex.example — Fragen? support@globex.example",
            "Geplantes Wartungsfenster: Sonntag 01:00–05:00 UTC. Scheduled window: Sunday 01:00–05:00 UTC. Fenêtre prévue : dimanche 01h00–05h00 UTC.",
        ])
    return f"""<!doctype html>
<html lang="de">
<head>
  <meta charset="utf-8">
  <title>Globex – Wartungsarbeiten / Scheduled maintenance</title>
  <style>
    body {{ font-family: "Inter", "Helvetica Neue", Arial, sans-serif; background: #0b1f33; color: #e8eef5; margin: 0; }}
    main {{ max-width: 640px; margin: 12vh auto; padding: 32px; background: #12304f; border-radius: 12px; }}
    h1 {{ font-size: 28px; font-weight: 600; margin: 0 0 16px; }}
    .note {{ line-height: 1.6; font-size: 15px; opacity: .9; }}
    footer {{ margin-top: 24px; font-size: 12px; opacity: .6; }}
  </style>
</head>
<body>
  <main>
    <h1>Wir sind gleich zurück · We'll be right back</h1>
{paras}
    <p class="note">Voraussichtlich wieder verfügbar ab {back} UTC · Expected back at {back} UTC</p>
    <footer>Host: {host} · Incident: {incident} · Request: {req}</footer>
  </main>
</body>
</html>"""


# ---------------------------------------------------------------- groups
# Each group: (label, source, count, pattern, make(r, t, d) -> message)
# pattern: "steady" (spread over the week), "burst" (mostly in 1-3 short outages), "rare",
# "incident:<name>" (bursts at the outage times shared by every group of that incident).

G = []


def group(label, source, count, pattern):
    def deco(fn):
        G.append((label, source, count, pattern, fn))
        return fn
    return deco


# ---- postgres (sqlx)

@group("pg-unique-users_email_key", "postgres", 60, "steady")
def _(r, t, d):
    return sqlx('duplicate key value violates unique constraint "users_email_key"',
                f"Key (email)=({email(r)}) already exists.")


@group("pg-unique-users_username_key", "postgres", 14, "steady")
def _(r, t, d):
    return sqlx('duplicate key value violates unique constraint "users_username_key"',
                f"Key (username)=({user_value(r)}) already exists.")


@group("pg-unique-orders_pkey", "postgres", 25, "burst")
def _(r, t, d):
    return sqlx('duplicate key value violates unique constraint "orders_pkey"',
                f"Key (id)=({num_id(r)}) already exists.")


@group("pg-unique-invoices_account_id_number_key", "postgres", 8, "steady")
def _(r, t, d):
    return sqlx('duplicate key value violates unique constraint "invoices_account_id_number_key"',
                f"Key (account_id, number)=({num_id(r)}, INV-{t.year}-{num_id(r, 1, 6).zfill(6)}) already exists.")


@group("pg-serialization-concurrent-update", "postgres", 40, "burst")
def _(r, t, d):
    return sqlx("could not serialize access due to concurrent update")


@group("pg-serialization-rw-dependencies", "postgres", 20, "burst")
def _(r, t, d):
    reason = r.choice(["Canceled on identification as a pivot, during commit attempt.",
                       "Canceled on identification as a pivot, during write.",
                       f"Canceled on conflict out to pivot {num_id(r, 5, 9)}, during read.",
                       "Canceled on identification as a pivot, during conflict out checking."])
    return sqlx("could not serialize access due to read/write dependencies among transactions",
                "Reason code: " + reason, "The transaction might succeed if retried.")


def _deadlock(r, table):
    p1, p2 = r.randint(100, 4194304), r.randint(100, 4194304)
    x1, x2 = num_id(r, 3, 10), num_id(r, 3, 10)
    return sqlx("deadlock detected",
                f"Process {p1} waits for ShareLock on transaction {x1}; blocked by process {p2}.\n"
                f"Process {p2} waits for ShareLock on transaction {x2}; blocked by process {p1}.",
                "See server log for query details.") + \
        f"\nCONTEXT: while updating tuple ({r.randint(0, 99999)},{r.randint(1, 200)}) in relation \"{table}\""


@group("pg-deadlock-accounts", "postgres", 30, "burst")
def _(r, t, d):
    return _deadlock(r, "accounts")


@group("pg-deadlock-inventory", "postgres", 6, "rare")
def _(r, t, d):
    return _deadlock(r, "inventory")


@group("pg-statement-timeout", "postgres", 45, "incident:db")
def _(r, t, d):
    return sqlx("canceling statement due to statement timeout")


@group("pg-lock-timeout", "postgres", 5, "rare")
def _(r, t, d):
    return sqlx("canceling statement due to lock timeout")


@group("pg-pool-timeout", "postgres", 90, "incident:db")
def _(r, t, d):
    return "pool timed out while waiting for an open connection"


@group("pg-connection-refused", "postgres", 15, "incident:db")
def _(r, t, d):
    return "error communicating with database: Connection refused (os error 111)"


@group("pg-fk-orders_customer_id_fkey-insert", "postgres", 20, "steady")
def _(r, t, d):
    return sqlx('insert or update on table "orders" violates foreign key constraint "orders_customer_id_fkey"',
                f'Key (customer_id)=({num_id(r)}) is not present in table "customers".')


@group("pg-fk-orders_customer_id_fkey-delete", "postgres", 4, "rare")
def _(r, t, d):
    return sqlx('update or delete on table "customers" violates foreign key constraint "orders_customer_id_fkey" on table "orders"',
                f'Key (id)=({num_id(r)}) is still referenced from table "orders".')


@group("pg-fk-line_items_order_id_fkey", "postgres", 10, "steady")
def _(r, t, d):
    return sqlx('insert or update on table "line_items" violates foreign key constraint "line_items_order_id_fkey"',
                f'Key (order_id)=({num_id(r)}) is not present in table "orders".')


@group("pg-notnull-orders-shipping_address", "postgres", 18, "steady")
def _(r, t, d):
    row = [num_id(r), num_id(r), r.choice(["pending", "paid", "on hold"]), str(amount(r)),
           r.choice(["EUR", "USD", "JPY"]), "null", r.choice(["null", user_value(r)]), pg_ts(t, r), pg_ts(t, r)]
    return sqlx('null value in column "shipping_address" of relation "orders" violates not-null constraint',
                f"Failing row contains ({', '.join(row)}).")


@group("pg-notnull-users-email", "postgres", 3, "rare")
def _(r, t, d):
    row = [num_id(r), "null", user_value(r), "t", pg_ts(t, r)]
    return sqlx('null value in column "email" of relation "users" violates not-null constraint',
                f"Failing row contains ({', '.join(row)}).")


@group("pg-invalid-input-uuid", "postgres", 14, "steady")
def _(r, t, d):
    v = r.choice([user_value(r), uuid4(r)[:-r.randint(1, 6)], num_id(r), "undefined", ""])
    return sqlx(f'invalid input syntax for type uuid: "{v}"')


@group("pg-invalid-input-integer", "postgres", 9, "steady")
def _(r, t, d):
    v = r.choice([user_value(r), num_id(r, 1, 6) + r.choice(["a", ".5", " ", "kg"]), "", "NaN"])
    return sqlx(f'invalid input syntax for type integer: "{v}"')


@group("pg-check-orders_amount_check", "postgres", 6, "rare")
def _(r, t, d):
    row = [num_id(r), num_id(r), "pending", f"-{amount(r)}", "EUR", user_value(r), pg_ts(t, r)]
    return sqlx('new row for relation "orders" violates check constraint "orders_amount_check"',
                f"Failing row contains ({', '.join(row)}).")


@group("pg-varchar-255", "postgres", 4, "rare")
def _(r, t, d):
    return sqlx("value too long for type character varying(255)")


@group("pg-varchar-64", "postgres", 3, "rare")
def _(r, t, d):
    return sqlx("value too long for type character varying(64)")


@group("pg-too-many-clients", "postgres", 1, "rare")
def _(r, t, d):
    return sqlx("sorry, too many clients already")


@group("pg-relation-missing-daily_rollup", "postgres", 2, "rare")
def _(r, t, d):
    return sqlx('relation "analytics.daily_rollup" does not exist')


# ---- reqwest

def partner_order_url(r, with_sig=True):
    u = f"https://api.partner.com/v2/orders/{num_id(r)}"
    if with_sig and r.random() < 0.7:
        u += f"?sig={sig(r)}&ts={r.randint(1763000000, 1765000000)}"
    return u


@group("http-503-partner-orders", "reqwest", 70, "incident:partner")
def _(r, t, d):
    return f"HTTP status server error (503 Service Unavailable) for url ({partner_order_url(r)})"


@group("http-502-partner-orders", "reqwest", 25, "incident:partner")
def _(r, t, d):
    return f"HTTP status server error (502 Bad Gateway) for url ({partner_order_url(r)})"


@group("http-404-partner-orders", "reqwest", 30, "steady")
def _(r, t, d):
    return f"HTTP status client error (404 Not Found) for url ({partner_order_url(r)})"


@group("http-429-partner-orders", "reqwest", 35, "burst")
def _(r, t, d):
    return f"HTTP status client error (429 Too Many Requests) for url ({partner_order_url(r)})"


@group("http-500-billing-finalize", "reqwest", 12, "steady")
def _(r, t, d):
    return (f"HTTP status server error (500 Internal Server Error) for url "
            f"(https://billing.internal.example.net/api/invoices/{num_id(r)}/finalize)")


@group("http-401-crm-contacts", "reqwest", 8, "burst")
def _(r, t, d):
    return (f"HTTP status client error (401 Unauthorized) for url "
            f"(https://crm.example.com/api/v1/contacts/{uuid4(r)}?include=company)")


@group("http-connect-refused-partner", "reqwest", 15, "incident:partner")
def _(r, t, d):
    return (f"error sending request for url ({partner_order_url(r)}): error trying to connect: "
            f"tcp connect error: Connection refused (os error 111)")


@group("http-connect-timeout-shipfast", "reqwest", 20, "steady")
def _(r, t, d):
    u = (f"https://rates.shipfast.io/v1/quote?from={r.randint(10000, 99999)}&to={r.randint(1000, 99999)}"
         f"&weight_g={r.randint(1, 30000)}&service={r.choice(['ground', 'express', 'next_day'])}")
    return f"error sending request for url ({u}): error trying to connect: operation timed out"


def _dns(r, url):
    return (f"error sending request for url ({url}): error trying to connect: dns error: "
            f"failed to lookup address information: Name or service not known")


@group("http-dns-legacy-partner-old", "reqwest", 10, "steady")
def _(r, t, d):
    return _dns(r, f"https://legacy.partner-old.com/api/stock/{num_id(r)}")


@group("http-dns-geo-lookup", "reqwest", 4, "rare")
def _(r, t, d):
    return _dns(r, f"https://geo.lookup-svc.internal/v1/ip/{ip(r)}")


@group("http-tls-expired-vendor", "reqwest", 6, "burst")
def _(r, t, d):
    return (f"error sending request for url (https://feeds.vendor.example/catalog/{num_id(r)}.xml): "
            f"error trying to connect: invalid peer certificate: Expired")


@group("http-tls-unknownissuer-vendor", "reqwest", 3, "rare")
def _(r, t, d):
    return (f"error sending request for url (https://feeds.vendor.example/catalog/{num_id(r)}.xml): "
            f"error trying to connect: invalid peer certificate: UnknownIssuer")


@group("http-conn-closed-partner", "reqwest", 12, "steady")
def _(r, t, d):
    return f"error sending request for url ({partner_order_url(r)}): connection closed before message completed"


@group("http-decode-body-partner", "reqwest", 5, "rare")
def _(r, t, d):
    return "error decoding response body: expected value at line 1 column 1"


# ---- rust panics

@group("panic-unwrap-none-charge", "rust-panic", 25, "steady")
def _(r, t, d):
    return rust_panic(r, t, d, "src/jobs/charge.rs", [(42, 17), (42, 17), (47, 21)],
                      "called `Option::unwrap()` on a `None` value",
                      [("app::jobs::charge::ChargeJob::run::{{closure}}", None),
                       ("app::jobs::charge::charge_invoice::{{closure}}", ("src/jobs/charge.rs", [88, 88, 93]))])


@group("panic-unwrap-none-refund", "rust-panic", 8, "steady")
def _(r, t, d):
    return rust_panic(r, t, d, "src/jobs/refund.rs", [(42, 17), (42, 17), (42, 17)],
                      "called `Option::unwrap()` on a `None` value",
                      [("app::jobs::refund::RefundJob::run::{{closure}}", None),
                       ("app::jobs::refund::refund_charge::{{closure}}", ("src/jobs/refund.rs", [61, 61, 61]))])


@group("panic-index-oob-batch", "rust-panic", 10, "steady")
def _(r, t, d):
    n = r.randint(0, 40)
    return rust_panic(r, t, d, "src/jobs/batch.rs", [(130, 29), (133, 29), (133, 29)],
                      f"index out of bounds: the len is {n} but the index is {n + r.randint(0, 12)}",
                      [("app::jobs::batch::split_batch", None),
                       ("app::jobs::batch::BatchJob::run::{{closure}}", ("src/jobs/batch.rs", [57, 57, 57]))])


@group("panic-result-unwrap-import-parseint", "rust-panic", 6, "rare")
def _(r, t, d):
    return rust_panic(r, t, d, "src/jobs/import.rs", [(214, 55), (214, 55), (219, 55)],
                      "called `Result::unwrap()` on an `Err` value: ParseIntError { kind: InvalidDigit }",
                      [("app::jobs::import::parse_row", None),
                       ("app::jobs::import::ImportJob::run::{{closure}}", ("src/jobs/import.rs", [97, 97, 99]))])


@group("panic-expect-mailer-key", "rust-panic", 3, "burst")
def _(r, t, d):
    return rust_panic(r, t, d, "src/config.rs", [(31, 10), (31, 10), (31, 10)],
                      "MAILER_API_KEY must be set: NotPresent",
                      [("app::config::Config::from_env", None)])


@group("panic-char-boundary-render", "rust-panic", 4, "rare")
def _(r, t, d):
    name = r.choice(["Zoë Müller-Lüdenscheidt", "José Álvarez Núñez", "北京市朝阳区建国路", "Łukasz Żółć"])
    # byte index inside a multi-byte char
    b = name.encode()
    idx = next(i for i in range(1, len(b)) if (b[i] & 0xC0) == 0x80)
    start = idx - 1
    while (b[start] & 0xC0) == 0x80:
        start -= 1
    ch = b[start:].decode(errors="ignore")[0]
    end = start + len(ch.encode())
    return rust_panic(r, t, d, "src/jobs/render.rs", [(73, 26), (73, 26), (73, 26)],
                      f"byte index {idx} is not a char boundary; it is inside '{ch}' (bytes {start}..{end}) of `{name}`",
                      [("app::jobs::render::truncate_name", None)])


@group("panic-sub-overflow-inventory", "rust-panic", 1, "rare")
def _(r, t, d):
    return rust_panic(r, t, d, "src/jobs/inventory.rs", [(158, 9), (158, 9), (158, 9)],
                      "attempt to subtract with overflow", [("app::jobs::inventory::reserve", None)])


# ---- node (graphile-worker tasks)

@group("node-typeerror-email-send_welcome", "node", 40, "steady")
def _(r, t, d):
    return node_stack(r, d, "TypeError: Cannot read properties of undefined (reading 'email')",
                      [("sendWelcome", "/app/tasks/send_welcome.js", [(14, 22), (14, 22), (16, 22)]),
                       ("Object.task", "/app/tasks/send_welcome.js", [(41, 11), (41, 11), (43, 11)])])


@group("node-typeerror-id-sync_crm", "node", 15, "steady")
def _(r, t, d):
    return node_stack(r, d, "TypeError: Cannot read properties of undefined (reading 'id')",
                      [("syncContact", "/app/tasks/sync_crm.js", [(27, 35), (27, 35), (27, 35)]),
                       ("Object.task", "/app/tasks/sync_crm.js", [(8, 9), (8, 9), (8, 9)])])


@group("node-econnrefused-redis", "node", 30, "burst")
def _(r, t, d):
    return ("Error: connect ECONNREFUSED 10.0.4.12:6379\n"
            "    at TCPConnectWrap.afterConnect [as oncomplete] (node:net:1607:16)")


@group("node-econnrefused-postgres", "node", 8, "incident:db")
def _(r, t, d):
    return ("Error: connect ECONNREFUSED 10.0.4.20:5432\n"
            "    at TCPConnectWrap.afterConnect [as oncomplete] (node:net:1607:16)")


@group("node-fetch-hangup-mailer", "node", 20, "steady")
def _(r, t, d):
    head = f"FetchError: request to https://api.mailer.io/v3/messages/{uuid4(r)}/send failed, reason: socket hang up"
    return node_stack(r, d, head, [(None, "/app/node_modules/node-fetch/lib/index.js", (1501, 11)),
                                   ("sendEmail", "/app/lib/mailer.js", [(58, 17), (58, 17), (60, 17)])])


@group("node-fetch-etimedout-mailer", "node", 6, "burst")
def _(r, t, d):
    head = (f"FetchError: request to https://api.mailer.io/v3/messages/{uuid4(r)}/send failed, "
            f"reason: connect ETIMEDOUT {r.choice(['104.18.22.31', '104.18.23.31', '172.64.145.9'])}:443")
    return node_stack(r, d, head, [(None, "/app/node_modules/node-fetch/lib/index.js", (1501, 11)),
                                   ("sendEmail", "/app/lib/mailer.js", [(58, 17), (58, 17), (60, 17)])])


@group("node-syntaxerror-json-html", "node", 10, "burst")
def _(r, t, d):
    return node_stack(r, d, "SyntaxError: Unexpected token '<', \"<!DOCTYPE \"... is not valid JSON",
                      [(None, "JSON.parse (<anonymous>)", (0, 0)),
                       ("parseJSONFromBytes", "node:internal/deps/undici/undici", (5329, 19)),
                       ("pullInventory", "/app/tasks/pull_inventory.js", [(22, 30), (22, 30), (22, 30)])]
                      ).replace("at JSON.parse (<anonymous>):0:0", "at JSON.parse (<anonymous>)")


@group("node-rangeerror-invalid-time", "node", 2, "rare")
def _(r, t, d):
    return node_stack(r, d, "RangeError: Invalid time value",
                      [("Date.toISOString", "<anonymous>", (0, 0)),
                       ("formatDue", "/app/tasks/remind_due.js", [(19, 40), (19, 40), (19, 40)])]
                      ).replace("(<anonymous>:0:0)", "(<anonymous>)")


# ---- python

EXPORT_FRAMES = [("/srv/app/jobs/export.py", [88, 88, 91], "run", "rows = fetch(batch_id)"),
                 ("/srv/app/jobs/export.py", [142, 142, 147], "fetch", "out.append(row_to_csv(row))"),
                 ("/srv/app/jobs/export.py", [171, 171, 176], "row_to_csv", "return [row[\"customer_id\"], row[\"total\"], row[\"currency\"]]")]


@group("py-keyerror-customer_id", "python", 30, "steady")
def _(r, t, d):
    return py_tb(r, d, EXPORT_FRAMES, "KeyError: 'customer_id'")


@group("py-typeerror-nonetype-subscript", "python", 10, "steady")
def _(r, t, d):
    return py_tb(r, d, EXPORT_FRAMES, "TypeError: 'NoneType' object is not subscriptable")


@group("py-valueerror-date-format", "python", 12, "steady")
def _(r, t, d):
    v = r.choice([t.strftime("%d/%m/%Y"), t.strftime("%d %B %Y"), http_date(t), t.strftime("%Y-%m-%dT%H:%M:%S"),
                  f"{t.year}-{r.randint(13, 19)}-{r.randint(1, 28):02d}", user_value(r), ""])
    return py_tb(r, d, [("/srv/app/jobs/import_csv.py", [54, 54, 54], "run", "due = parse_due(rec['due'])"),
                        ("/srv/app/jobs/import_csv.py", [23, 23, 23], "parse_due", "return datetime.strptime(s, '%Y-%m-%d')"),
                        ("/usr/local/lib/python3.11/_strptime.py", [568, 568, 568], "_strptime_datetime", "tt, fraction, gmtoff_fraction = _strptime(data_string, format)"),
                        ("/usr/local/lib/python3.11/_strptime.py", [349, 349, 349], "_strptime", "raise ValueError(\"time data %r does not match format %r\" %")],
                 f"ValueError: time data {v!r} does not match format '%Y-%m-%d'")


@group("py-requests-connectionerror-partner", "python", 9, "incident:partner")
def _(r, t, d):
    oid = num_id(r)
    return py_tb(r, d, [("/srv/app/jobs/partner_sync.py", [33, 33, 35], "run", "resp = session.get(f\"{BASE}/v2/orders/{order_id}\")"),
                        ("/usr/local/lib/python3.11/site-packages/requests/sessions.py", [602, 602, 602], "get", "return self.request(\"GET\", url, **kwargs)"),
                        ("/usr/local/lib/python3.11/site-packages/requests/adapters.py", [700, 700, 700], "send", "raise ConnectionError(e, request=request)")],
                 f"requests.exceptions.ConnectionError: HTTPSConnectionPool(host='api.partner.com', port=443): "
                 f"Max retries exceeded with url: /v2/orders/{oid} (Caused by NewConnectionError("
                 f"'<urllib3.connection.HTTPSConnection object at 0x7f{hexs(r, 10)}>: Failed to establish a new connection: "
                 f"[Errno 111] Connection refused'))")


@group("py-unicodedecode-import", "python", 5, "rare")
def _(r, t, d):
    return py_tb(r, d, [("/srv/app/jobs/import_csv.py", [41, 41, 41], "run", "for rec in csv.DictReader(f):"),
                        ("/usr/local/lib/python3.11/csv.py", [110, 110, 110], "__next__", "self.fieldnames"),
                        ("<frozen codecs>", [322, 322, 322], "decode", "")],
                 f"UnicodeDecodeError: 'utf-8' codec can't decode byte 0x{r.choice(['e9', 'fc', 'f6', 'e4', 'a0', '96'])} "
                 f"in position {num_id(r, 1, 7)}: invalid {r.choice(['continuation byte', 'start byte'])}").replace("\n    \n", "\n")


@group("py-zerodivision-report", "python", 1, "rare")
def _(r, t, d):
    return py_tb(r, d, [("/srv/app/jobs/report.py", [77, 77, 77], "conversion_rate", "return orders / visits")],
                 "ZeroDivisionError: division by zero")


@group("py-psycopg-server-closed", "python", 4, "incident:db")
def _(r, t, d):
    return py_tb(r, d, [("/srv/app/jobs/export.py", [88, 88, 91], "run", "rows = fetch(batch_id)"),
                        ("/srv/app/jobs/export.py", [139, 139, 144], "fetch", "cur.execute(SQL, (batch_id,))")],
                 "psycopg2.OperationalError: server closed the connection unexpectedly\n"
                 "\tThis probably means the server terminated abnormally\n\tbefore or while processing the request.")


# ---- smtp

@group("smtp-550-user-unknown", "smtp", 45, "steady")
def _(r, t, d):
    return f"550 5.1.1 <{email(r)}>: Recipient address rejected: User unknown in virtual mailbox table"


@group("smtp-550-spam", "smtp", 6, "rare")
def _(r, t, d):
    return "550 5.7.1 Message rejected as spam"


@group("smtp-554-spam", "smtp", 15, "burst")
def _(r, t, d):
    return "554 5.7.1 Message rejected as spam"


@group("smtp-421-try-later", "smtp", 30, "burst")
def _(r, t, d):
    return "421 4.7.0 Try again later, closing connection."


@group("smtp-452-over-quota", "smtp", 8, "steady")
def _(r, t, d):
    return ("452 4.2.2 The email account that you tried to reach is over quota. Please direct the recipient to "
            f"https://support.google.com/mail/?p=OverQuotaTemp {hexs(r, 16)}{b62(r, 4)}.{r.randint(10, 999)} - gsmtp")


@group("smtp-535-auth", "smtp", 3, "burst")
def _(r, t, d):
    return "535 5.7.8 Username and Password not accepted."


@group("smtp-550-gmail-nosuchuser", "smtp", 20, "steady")
def _(r, t, d):
    return ("550 5.1.1 The email account that you tried to reach does not exist. Please try double-checking "
            "the recipient's email address for typos or unnecessary spaces. For more information, go to "
            f"https://support.google.com/mail/?p=NoSuchUser {r.randint(10, 9999)}{b62(r, 10)}.{r.randint(10, 999)} - gsmtp")


# ---- payment provider

def req_id(r):
    return "req_" + b62(r, 14)


@group("pay-decline-insufficient_funds", "payment", 35, "steady")
def _(r, t, d):
    return f"Your card was declined. (decline_code: insufficient_funds; request_id: {req_id(r)})"


@group("pay-decline-generic_decline", "payment", 15, "steady")
def _(r, t, d):
    return f"Your card was declined. (decline_code: generic_decline; request_id: {req_id(r)})"


@group("pay-decline-expired_card", "payment", 12, "steady")
def _(r, t, d):
    return f"Your card has expired. (decline_code: expired_card; request_id: {req_id(r)})"


@group("pay-card_declined-do_not_honor", "payment", 10, "steady")
def _(r, t, d):
    return "card_declined: do_not_honor"


@group("pay-card_declined-lost_card", "payment", 2, "rare")
def _(r, t, d):
    return "card_declined: lost_card"


@group("pay-no-such-customer", "payment", 12, "steady")
def _(r, t, d):
    return f"No such customer: 'cus_{b62(r, 14)}'"


@group("pay-no-such-payment-method", "payment", 5, "rare")
def _(r, t, d):
    return f"No such PaymentMethod: 'pm_{b62(r, 24)}'"


@group("pay-idempotency-key-reuse", "payment", 6, "rare")
def _(r, t, d):
    key = r.choice([uuid4(r), f"charge-{num_id(r)}", f"invoice:{num_id(r)}:attempt:{r.randint(1, 5)}"])
    return ("Keys for idempotent requests can only be used with the same parameters they were first used with. "
            f"Try using a key other than '{key}' if you meant to execute a different request. (request_id: {req_id(r)})")


@group("pay-rate-limited", "payment", 8, "burst")
def _(r, t, d):
    return ("Request rate limit exceeded. Learn more about rate limits here https://stripe.com/docs/rate-limits. "
            f"(request_id: {req_id(r)})")


@group("pay-amount-too-small", "payment", 3, "rare")
def _(r, t, d):
    return f"Amount must be at least $0.50 usd (request_id: {req_id(r)})"


@group("billing-invoice-locked", "payment", 14, "steady")
def _(r, t, d):
    n = r.randint(2, 5)
    return (f"invoice {small_id(r)} is locked for finalization by another worker "
            f"(attempt {r.randint(1, n)} of {n})")


# ---- webhooks

@group("webhook-503-customer-17", "webhook", 40, "burst")
def _(r, t, d):
    return "webhook https://hooks.customer-17.example/in responded 503: upstream unavailable"


@group("webhook-410-gone", "webhook", 15, "steady")
def _(r, t, d):
    host = r.choice([f"hooks.customer-{small_id(r)}.example", f"{b62(r, 6).lower()}.ngrok-free.app",
                     "api.smallshop.example", f"hooks.zapier.com/hooks/catch/{num_id(r, 5, 8)}/{b62(r, 6).lower()}"])
    body = r.choice(["Gone", "", '{"error":"subscription deleted"}', "This endpoint has been removed."])
    return f"webhook https://{host}/{'in' if 'zapier' not in host else ''} responded 410: {body}".rstrip().replace("/ responded", " responded")


@group("webhook-500-acme-json", "webhook", 12, "steady")
def _(r, t, d):
    body = json.dumps({"error": r.choice(["internal", "internal_error"]),
                       "message": r.choice(["Unexpected error", "NullPointerException at OrderHandler.java:212",
                                            "could not persist event", "Ein interner Fehler ist aufgetreten"]),
                       "trace_id": hexs(r, 32), "timestamp": rfc3339(t, r)}, ensure_ascii=False)
    return f"webhook https://hooks.acme-corp.example/backstop responded 500: {body}"


@group("webhook-502-bigco-cloudflare-html", "webhook", 5, "rare")
def _(r, t, d):
    return "webhook https://hooks.bigco.example/ingest responded 502: " + cloudflare_502(r, t, "hooks.bigco.example")


@group("webhook-503-globex-maintenance-html", "webhook", 3, "rare")
def _(r, t, d):
    return "webhook https://in.globex.example/webhooks responded 503: " + maintenance_503(r, t, "in.globex.example")


@group("webhook-timeout-initech", "webhook", 10, "burst")
def _(r, t, d):
    return f"webhook https://initech.example.com/hooks/backstop timed out after {r.choice(['10s', '10.001s', '10.003s'])}"


@group("webhook-404-customer-42", "webhook", 6, "steady")
def _(r, t, d):
    return "webhook https://hooks.customer-42.example/in responded 404: Not Found"


# ---- timeouts

@group("timeout-job-30s", "timeout", 35, "steady")
def _(r, t, d):
    return "job timed out after 30s"


@group("timeout-deadline-elapsed", "timeout", 25, "burst")
def _(r, t, d):
    return "deadline has elapsed"


@group("timeout-curl-operation", "timeout", 10, "steady")
def _(r, t, d):
    return f"operation timed out after {r.randint(10000, 30500)} milliseconds with {r.choice([0, 0, r.randint(1, 999999)])} bytes received"


@group("timeout-advisory-lock", "timeout", 5, "rare")
def _(r, t, d):
    return (f"timed out after {r.randint(5, 6)}.{r.randint(0, 999):03d}s waiting for advisory lock "
            f"'report:daily:{(t - timedelta(days=1)).strftime('%Y-%m-%d')}'")


# ---- s3

def s3_ids(r):
    return f"(request id: {b62(r, 16).upper()}, extended request id: {b62(r, 56)}=)"


@group("s3-nosuchkey-exports", "s3", 15, "steady")
def _(r, t, d):
    key = f"exports/{t.strftime('%Y-%m-%d')}/{num_id(r)}.csv"
    return f"GetObject failed for s3://acme-exports/{key}: NoSuchKey: The specified key does not exist. {s3_ids(r)}"


@group("s3-accessdenied-exports", "s3", 5, "burst")
def _(r, t, d):
    key = f"exports/{t.strftime('%Y-%m-%d')}/{num_id(r)}.csv"
    return f"PutObject failed for s3://acme-exports/{key}: AccessDenied: Access Denied {s3_ids(r)}"


@group("s3-slowdown", "s3", 12, "burst")
def _(r, t, d):
    key = f"thumbnails/{uuid4(r)}/{r.choice(['64', '256', '1024'])}.webp"
    return f"PutObject failed for s3://acme-media/{key}: SlowDown: Please reduce your request rate. {s3_ids(r)}"


@group("s3-expired-token", "s3", 1, "rare")
def _(r, t, d):
    return (f"ListObjectsV2 failed for s3://acme-exports/exports/: ExpiredToken: The provided token has expired. {s3_ids(r)}")


# ---- serde_json

def col(r):
    return r.choice([r.randint(1, 9), r.randint(10, 99), r.randint(100, 999), r.randint(1000, 20000)])


@group("json-missing-user_id", "serde-json", 20, "steady")
def _(r, t, d):
    return f"missing field `user_id` at line {r.choice([1, 1, 1, r.randint(2, 40)])} column {col(r)}"


@group("json-missing-email", "serde-json", 8, "steady")
def _(r, t, d):
    return f"missing field `email` at line {r.choice([1, 1, 1, r.randint(2, 40)])} column {col(r)}"


@group("json-invalid-type-string-i64", "serde-json", 10, "steady")
def _(r, t, d):
    return f'invalid type: string "{user_value(r)}", expected i64 at line 1 column {col(r)}'


@group("json-invalid-type-null-string", "serde-json", 6, "steady")
def _(r, t, d):
    return f"invalid type: null, expected a string at line 1 column {col(r)}"


@group("json-eof-object", "serde-json", 4, "rare")
def _(r, t, d):
    return f"EOF while parsing an object at line 1 column {r.choice([4096, 8192, 65536, col(r)])}"


@group("json-unknown-variant-status", "serde-json", 7, "steady")
def _(r, t, d):
    v = r.choice(["refunded", "partially_refunded", "Refunded", "on hold", "disputed", "précommande"])
    return f"unknown variant `{v}`, expected one of `pending`, `paid`, `failed` at line 1 column {col(r)}"


# ---- os errors

@group("os-enoent-2", "os", 15, "steady")
def _(r, t, d):
    return f"failed to open /var/lib/app/exports/{num_id(r)}.csv: No such file or directory (os error 2)"


@group("os-eacces-13", "os", 6, "burst")
def _(r, t, d):
    return f"failed to open /var/lib/app/exports/{num_id(r)}.csv: Permission denied (os error 13)"


@group("os-enospc-28", "os", 8, "burst")
def _(r, t, d):
    return f"failed to write /tmp/render-{uuid4(r)}.pdf: No space left on device (os error 28)"


@group("os-emfile-24", "os", 1, "rare")
def _(r, t, d):
    return f"failed to open /var/lib/app/exports/{num_id(r)}.csv: Too many open files (os error 24)"


# ---------------------------------------------------------------- arrival order

def arrival_times(r, count, pattern):
    if pattern == "steady" or count <= 2:
        return [r.uniform(0, WEEK) for _ in range(count)]
    if pattern == "rare":
        # a handful of occurrences, sometimes two close together
        out, base = [], r.uniform(0, WEEK)
        for _ in range(count):
            out.append(base if r.random() < 0.3 else r.uniform(0, WEEK))
            base = min(WEEK - 1, out[-1] + r.uniform(5, 600))
        return out
    # burst: 1-3 outages of a few minutes carry ~80%; the rest is background. Groups of one
    # incident (a database failover, a partner outage) share their outage times.
    if pattern.startswith("incident:"):
        centres = INCIDENTS[pattern.split(":", 1)[1]]
    else:
        centres = [r.uniform(3600, WEEK - 3600) for _ in range(r.randint(1, 3))]
    out = []
    for _ in range(count):
        if r.random() < 0.8:
            c = r.choice(centres)
            out.append(min(WEEK - 1, max(0.0, c + r.expovariate(1 / 240.0))))
        else:
            out.append(r.uniform(0, WEEK))
    return out


INCIDENTS = {}


def build():
    r = random.Random(SEED)
    INCIDENTS["db"] = [r.uniform(3600, WEEK - 3600) for _ in range(3)]
    INCIDENTS["partner"] = [r.uniform(3600, WEEK - 3600) for _ in range(2)]
    events = []
    for gi, (label, source, count, pattern, make) in enumerate(G):
        for k, sec in enumerate(arrival_times(r, count, pattern)):
            events.append((sec, gi, k))
    events.sort()
    rows = []
    for sec, gi, _k in events:
        label, source, _c, _p, make = G[gi]
        t = START + timedelta(seconds=sec)
        rows.append({"group": label, "source": source, "message": make(r, t, deploy_of(sec))})
    return rows


def main():
    labels = [g[0] for g in G]
    assert len(labels) == len(set(labels)), "duplicate label"
    out = sys.stdout
    for row in build():
        out.write(json.dumps(row, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
