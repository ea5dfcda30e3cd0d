#!/usr/bin/env node
// A Node campaign that reports through campaign-tui's state files, in the shape
// of the original batch script: one item after another, a heartbeat before each,
// a checkpoint and a results.jsonl line after each, a status at the end, crash
// and signal handlers that record how it ended. No npm packages.
//
//   campaign-tui run -- node examples/node/campaign.js
//
// It resumes: items that already have a final outcome in results.jsonl are not
// run again (that also skips poison items the supervisor recorded there).
// Knobs for trying it out: CAMPAIGN_ITEMS (how many, default 24), ITEM_MS (time
// per item, default 200) and CRASH_AT (default: half-way; 0 = never): the first
// attempt dies of an uncaught exception at that item.
'use strict';

const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const stateDir = process.env.CAMPAIGN_STATE_DIR ||
  path.join(os.homedir(), '.local', 'state', 'campaign-tui', 'node-example');
const attempt = Number(process.env.CAMPAIGN_ATTEMPT || '1');
const count = Number(process.env.CAMPAIGN_ITEMS || '24');
const itemMs = Number(process.env.ITEM_MS || '200');
const crashAt = Number(process.env.CRASH_AT || String(Math.ceil(count / 2)));
const items = Array.from({ length: count }, (_, i) => `SD-${String(i + 1).padStart(3, '0')}`);

fs.mkdirSync(stateDir, { recursive: true, mode: 0o700 });
const file = (name) => path.join(stateDir, name);

// Atomic replace: a temp file in the same directory, then rename.
function writeJson(name, doc) {
  try {
    const tmp = file(`.${name}.${process.pid}.tmp`);
    fs.writeFileSync(tmp, JSON.stringify(doc), { mode: 0o600 });
    fs.renameSync(tmp, file(name));
  } catch (err) {
    warnOnce(`cannot write ${name}: ${err.message}`);
  }
}

function append(name, line) {
  try {
    fs.appendFileSync(file(name), line + '\n', { mode: 0o600 });
  } catch (err) {
    warnOnce(`cannot append to ${name}: ${err.message}`);
  }
}

let warned = false;
function warnOnce(text) {
  if (!warned) console.error(`campaign: ${text}; the campaign goes on`);
  warned = true;
}

const now = () => ({ timestamp: Date.now(), iso_time: new Date().toISOString() });
const log = (name, level, message) => append(name, `${new Date().toISOString()} ${level} ${message}`);

// The resume journal: the last line per item wins.
const done = new Map();
try {
  for (const line of fs.readFileSync(file('results.jsonl'), 'utf8').split('\n')) {
    try {
      const doc = JSON.parse(line);
      if (doc && typeof doc.item === 'string' && doc.outcome) done.set(doc.item, doc.outcome);
    } catch { /* a torn or empty line */ }
  }
} catch { /* no journal yet */ }

const counts = { passed: 0, failed: 0, error: 0, skipped: 0 };
for (const outcome of done.values()) counts[outcome] = (counts[outcome] || 0) + 1;
let current = null;

function heartbeat(status = 'RUNNING') {
  const tested = done.size;
  writeJson('heartbeat.json', {
    ...now(),
    current_item: current,
    progress: `${tested}/${items.length}`,
    tested,
    total: items.length,
    percent: (100 * tested / items.length).toFixed(1),
    status,
    pid: process.pid,
    attempt,
  });
}

function checkpoint() {
  writeJson('checkpoint.json', {
    ...now(),
    tested: done.size,
    total: items.length,
    passed: counts.passed,
    failed: counts.failed,
    errors: counts.error,
    skipped: counts.skipped,
    last_item: current,
    can_resume: true,
  });
}

function ending(status, message, traceback) {
  const where = current ? ` during item ${current}` : '';
  writeJson('status.json', { status, message: message + where, ...now(), ...(traceback ? { traceback } : {}) });
  log('errors.log', 'CRITICAL', `campaign ${status}: ${message}${where}${traceback ? '\n' + traceback : ''}`);
  log('alerts.log', 'CRITICAL', `campaign ${status}: ${message}${where}`);
  heartbeat(status);
}

process.on('uncaughtException', (err) => {
  ending('CRASHED', `${err.name}: ${err.message}`, err.stack);
  process.exit(1);
});
process.on('unhandledRejection', (reason) => {
  ending('CRASHED', `unhandled rejection: ${reason}`, reason && reason.stack);
  process.exit(1);
});
for (const [sig, status] of [['SIGTERM', 'TERMINATED'], ['SIGINT', 'INTERRUPTED'], ['SIGHUP', 'TERMINATED']]) {
  process.on(sig, () => {
    ending(status, `${sig} received`);
    process.exit(sig === 'SIGINT' ? 130 : 143);
  });
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function testOne(item, index) {
  await sleep(itemMs);
  if (attempt === 1 && index + 1 === crashAt) {
    throw new Error(`simulated crash in ${item}`); // the first attempt dies half-way
  }
  return index % 7 === 3 ? { outcome: 'failed', message: 'mismatch in register 3' } : { outcome: 'passed', message: '' };
}

async function main() {
  writeJson('status.json', { status: 'RUNNING', message: `attempt ${attempt} started`, ...now() });
  log('progress.log', 'INFO', `campaign started (attempt ${attempt}, ${done.size} items already done)`);
  heartbeat();
  for (const [index, item] of items.entries()) {
    if (done.has(item)) continue;
    current = item;
    heartbeat();
    const started = Date.now();
    const result = await testOne(item, index);
    done.set(item, result.outcome);
    counts[result.outcome] += 1;
    append('results.jsonl', JSON.stringify({
      item, outcome: result.outcome, duration: (Date.now() - started) / 1000, message: result.message, attempt, ...now(),
    }));
    checkpoint();
    log('progress.log', result.outcome === 'passed' ? 'INFO' : 'WARNING', `[${done.size}/${items.length}] ${item} ${result.outcome}`);
    console.log(`${item} ${result.outcome}`);
  }
  current = null;
  const summary = `${done.size} items: ${counts.passed} passed, ${counts.failed} failed, ${counts.error} errors`;
  checkpoint();
  writeJson('status.json', { status: 'COMPLETE', message: `campaign complete: ${summary}`, ...now() });
  heartbeat('COMPLETE');
  log('progress.log', 'INFO', `campaign complete: ${summary}`);
}

main();
