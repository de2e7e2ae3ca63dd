// First-load time of the dashboard's policy page: from navigation start to the violations table
// rendered (the page marks `violations-rendered` once its first page of violations is in the DOM),
// in a fresh browser context each run (nothing cached), against a running server.
//
//   CONGRESS_URL=http://127.0.0.1:1789 DASHBOARD_POLICY=big node benches/dashboard.mjs
//
// Env: CONGRESS_URL (required), DASHBOARD_POLICY (default classification), DASHBOARD_RUNS
// (default 5), CONGRESS_TOKEN (sent as X-Auth-Token when the server needs one), CHROMIUM_PATH
// (default /usr/bin/chromium). Uses the playwright-core of tests/ui (bash scripts/ui-test.sh or
// `npm ci` in tests/ui installs it).
// Prints each run on stderr, then `RESULT dashboard_first_load_ms=<median>` on stdout.
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(path.join(here, '..', 'tests', 'ui', 'package.json'));
const { chromium } = require('playwright-core');

const base = (process.env.CONGRESS_URL ?? '').replace(/\/$/, '');
if (!base) {
  console.error('benches/dashboard.mjs: set CONGRESS_URL to the server, e.g. http://127.0.0.1:1789');
  process.exit(2);
}
const policy = process.env.DASHBOARD_POLICY || 'classification';
const runs = Number.parseInt(process.env.DASHBOARD_RUNS || '5', 10);
const token = process.env.CONGRESS_TOKEN || '';

function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/** One cold load: a new context, the policy page, the time of the violations-rendered mark. */
async function firstLoad(browser) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  if (token) await context.addInitScript((t) => sessionStorage.setItem('congress-token', t), token);
  const page = await context.newPage();
  try {
    await page.goto(`${base}/ui/#/policies/${encodeURIComponent(policy)}`);
    await page.locator('#violations[data-loaded="true"]').waitFor({ timeout: 120_000 });
    const { ms, total } = await page.evaluate(() => ({
      ms: performance.getEntriesByName('violations-rendered')[0]?.startTime,
      total: document.querySelector('#violations [role="status"]')?.textContent,
    }));
    if (typeof ms !== 'number') throw new Error('the page set no violations-rendered mark');
    return { ms, total };
  } finally {
    await context.close();
  }
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM_PATH || '/usr/bin/chromium',
  args: ['--no-sandbox'],
});
try {
  const times = [];
  for (let i = 0; i < runs; i += 1) {
    const { ms, total } = await firstLoad(browser);
    times.push(ms);
    console.error(`run ${i + 1}/${runs}: ${ms.toFixed(1)} ms (${policy}: ${total})`);
  }
  console.log(`RESULT dashboard_first_load_ms=${median(times).toFixed(1)}`);
} finally {
  await browser.close();
}
