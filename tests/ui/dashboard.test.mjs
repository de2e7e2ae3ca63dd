// Browser tests of the congress dashboard: they start `congress serve` on the cloud walk-through
// (examples/cloud) and drive the system Chromium with playwright-core, page by page.
//
// Env: CONGRESS_BIN (default target/release/congress, else target/debug/congress),
//      CONGRESS_UI_DIR (passed as --ui-dir: serve the assets from disk), CHROMIUM_PATH (default
//      /usr/bin/chromium), UPDATE_SCREENSHOTS=1 (copy the overview to docs/images/dashboard.png).
// Screenshots of every page land in target/ui-screenshots/.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const SHOTS = path.join(ROOT, 'target', 'ui-screenshots');
const TIMEOUT = 10_000;

// The walk-through's facts (examples/cloud): four unconnected ACTIVE servers, one orphaned port.
const CLASSIFICATION_ERRORS = ['error("vm-12")', 'error("vm-3")', 'error("vm-4")', 'error("vm-8")'];
// nova:servers columns: id, name, host_id, status, tenant_id, user_id, image_id, flavor_id, zone, host_name, created_at.
// (Not vm-99: the walk-through has an orphaned port of a vm-99, which would connect it.)
const NEW_SERVER = 'nova:servers+("vm-42", "web-42", "host-1", "ACTIVE", "tenant-a", "u-1", "img-1", "m1.small", "nova", "hv-1", "2019-01-10T00:00:00Z")';
// A port on an ACTIVE network for vm-3 (neutronv2:ports columns: id, tenant_id, name, network_id, mac_address, admin_state_up, status, device_id, device_owner).
const PORT_FOR_VM3 = 'neutronv2:ports+("port-3", "tenant-a", "", "net-1", "fa:16:3e:00:00:0c", "True", "ACTIVE", "vm-3", "compute:nova")';

let server;
let browser;

// ---------------------------------------------------------------------------------------------
// The server

function congressBin() {
  if (process.env.CONGRESS_BIN) return path.resolve(ROOT, process.env.CONGRESS_BIN);
  const found = ['target/release/congress', 'target/debug/congress']
    .map((p) => path.join(ROOT, p))
    .find((p) => fs.existsSync(p));
  if (!found) throw new Error('no congress binary: build it (cargo build --release) or set CONGRESS_BIN');
  return found;
}

/** Starts `congress serve` on a free port; resolves once it prints the address it listens on. */
function startServer() {
  // --manual-approval: the reactive policy's pause requests wait as Pending (else they run at once).
  const args = ['serve', '--no-auth', '--manual-approval', '--listen', '127.0.0.1:0', '-f', 'examples/cloud', '--data', 'examples/cloud'];
  if (process.env.CONGRESS_UI_DIR) args.push('--ui-dir', path.resolve(ROOT, process.env.CONGRESS_UI_DIR));
  const child = spawn(congressBin(), args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  child.stdout.on('data', (chunk) => { log += chunk; });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => fail(new Error('congress serve did not start within 60 s')), 60_000);
    function fail(error) {
      clearTimeout(timer);
      child.kill();
      reject(new Error(`${error.message}\n--- congress serve output:\n${log}`));
    }
    child.stderr.on('data', (chunk) => {
      log += chunk;
      // The whole line: a chunk may end in the middle of the address.
      const match = /congress serve: listening on (http:\/\/\S+)\r?\n/.exec(log);
      if (match) {
        clearTimeout(timer);
        resolve({ child, url: match[1].replace(/\/$/, ''), log: () => log });
      }
    });
    child.on('error', fail);
    child.on('exit', (code) => fail(new Error(`congress serve exited (${code}) before listening`)));
  });
}

/** Calls the API from the test (not the browser). */
async function api(pathname, { method = 'GET', body } = {}) {
  const response = await fetch(`${server.url}${pathname}`, {
    method,
    headers: body === undefined ? {} : { 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  const isJson = /application\/json/.test(response.headers.get('content-type') ?? '');
  return { status: response.status, headers: response.headers, text, json: isJson && text ? JSON.parse(text) : null };
}

/** Retries fn until it stops throwing (assertions on a page or the API that settle). */
async function eventually(fn, timeout = TIMEOUT) {
  const deadline = Date.now() + timeout;
  for (;;) {
    try {
      return await fn();
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

before(async () => {
  server = await startServer();
  // Ready when the walk-through's policies have been evaluated.
  await eventually(async () => {
    const { status, text, json } = await api('/v1/policies/classification');
    assert.equal(json?.violations, 4, `GET /v1/policies/classification: ${status} ${text}`);
  }, 30_000);
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM_PATH || '/usr/bin/chromium',
    args: ['--no-sandbox'],
  });
  fs.mkdirSync(SHOTS, { recursive: true });
});

after(async () => {
  await browser?.close();
  server?.child.kill();
});

// ---------------------------------------------------------------------------------------------
// Pages

/**
 * Runs body with a fresh 1280x800 page, then asserts the page logged no console error or warning
 * and threw nothing. allowStatus: HTTP statuses the test provokes on purpose (Chromium logs every
 * 4xx answer to fetch as "Failed to load resource").
 */
async function withPage(body, { allowStatus = [] } = {}) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const page = await context.newPage();
  page.setDefaultTimeout(TIMEOUT);
  const problems = [];
  const allowed = (text) => allowStatus.some((s) => text.includes(`the server responded with a status of ${s}`));
  page.on('console', (message) => {
    if ((message.type() === 'error' || message.type() === 'warning') && !allowed(message.text())) {
      problems.push(`console ${message.type()}: ${message.text()}`);
    }
  });
  page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
  try {
    await body(page);
    assert.deepEqual(problems, [], 'the page logged errors');
  } finally {
    await context.close();
  }
}

/** Waits for the page whose <h1> is exactly text. */
async function waitHeading(page, text) {
  const exact = new RegExp(`^${text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`);
  await page.locator('main h1').filter({ hasText: exact }).waitFor();
}

async function open(page, hash, heading) {
  await page.goto(`${server.url}/ui/${hash}`);
  await waitHeading(page, heading);
}

async function screenshot(page, name) {
  const file = path.join(SHOTS, `${name}.png`);
  await page.evaluate(() => document.activeElement?.blur());
  await page.screenshot({ path: file, fullPage: true });
  return file;
}

/** A table's rows as objects keyed by its column headers (the sort arrows left out). */
function tableObjects(table) {
  return table.evaluate((node) => {
    const headers = [...node.querySelectorAll('thead th')].map((th) => th.textContent.replace(/[▲▼↕]/g, '').trim());
    return [...node.querySelectorAll('tbody tr')]
      .filter((tr) => !tr.querySelector('td.empty') && !tr.classList.contains('explain-row'))
      .map((tr) => Object.fromEntries([...tr.cells].map((td, i) => [headers[i], td.textContent.trim()])));
  });
}

function cardTable(page, cardId) {
  return page.locator(`#${cardId} table`);
}

/** The violations shown on a policy page, in order. */
async function violationRows(page) {
  return (await tableObjects(cardTable(page, 'violations'))).map((r) => r.Row);
}

async function violationsStatus(page) {
  return (await page.locator('#violations [role="status"]').textContent()).trim();
}

/** Waits for the browser's request for violations matching every query parameter in want. */
function violationsRequest(page, want) {
  return page.waitForRequest((request) => {
    const url = new URL(request.url());
    if (!url.pathname.endsWith('/violations')) return false;
    return Object.entries(want).every(([k, v]) => url.searchParams.get(k) === v);
  });
}

// ---------------------------------------------------------------------------------------------
// Tests

test('overview: the walk-through policies, datasources and recent action requests; tables sort and filter', async () => {
  await withPage(async (page) => {
    await open(page, '#/', 'Overview');
    const policies = cardTable(page, 'policies');
    await eventually(async () => {
      const rows = await tableObjects(policies);
      const byName = Object.fromEntries(rows.map((r) => [r.Name, r]));
      assert.equal(byName.classification?.Violations, '4');
      assert.equal(byName.orphans?.Violations, '1');
      assert.equal(byName.classification.State, 'ok');
      assert.equal(byName.reactive?.Enforcement, 'reactive');
    });
    assert.equal(await policies.getByRole('link', { name: 'classification' }).getAttribute('href'), '#/policies/classification');

    const datasources = await tableObjects(cardTable(page, 'datasources'));
    assert.deepEqual(datasources.map((d) => d.Name).sort(), ['neutronv2', 'nova']);
    for (const d of datasources) assert.ok(Number(d.Rows) > 0, `${d.Name} has rows`);
    assert.equal(datasources.find((d) => d.Name === 'nova').Driver, 'nova');
    await page.locator('#recent-actions table').waitFor();

    await screenshot(page, 'overview');
    if (process.env.UPDATE_SCREENSHOTS === '1') {
      fs.mkdirSync(path.join(ROOT, 'docs', 'images'), { recursive: true });
      fs.copyFileSync(path.join(SHOTS, 'overview.png'), path.join(ROOT, 'docs', 'images', 'dashboard.png'));
    }

    // Sort by violations: the header is a button, aria-sort follows.
    const violationsHeader = policies.locator('th', { hasText: 'Violations' });
    await violationsHeader.getByRole('button').click();
    assert.equal(await violationsHeader.getAttribute('aria-sort'), 'ascending');
    let counts = (await tableObjects(policies)).map((r) => Number(r.Violations));
    assert.deepEqual(counts, [...counts].sort((a, b) => a - b));
    await violationsHeader.getByRole('button').click();
    assert.equal(await violationsHeader.getAttribute('aria-sort'), 'descending');
    counts = (await tableObjects(policies)).map((r) => Number(r.Violations));
    assert.deepEqual(counts, [...counts].sort((a, b) => b - a));

    // Filter.
    await page.getByLabel('Filter policies').fill('orph');
    await eventually(async () => assert.deepEqual((await tableObjects(policies)).map((r) => r.Name), ['orphans']));
    await page.getByLabel('Filter policies').fill('');
    await eventually(async () => assert.ok((await tableObjects(policies)).length >= 3));


    // A policy's link opens its page.
    await policies.getByRole('link', { name: 'classification' }).click();
    await waitHeading(page, 'classification');
  });
});

test('policy: rules, violations paged, sorted and filtered by the server, "Why?" shows a proof', async () => {
  await withPage(async (page) => {
    await open(page, '#/policies/classification', 'classification');
    await eventually(async () => assert.deepEqual([...await violationRows(page)].sort(), CLASSIFICATION_ERRORS));
    assert.equal(await violationsStatus(page), '1–4 of 4');
    const firstSeen = await tableObjects(cardTable(page, 'violations'));
    for (const row of firstSeen) assert.match(row['First seen'], /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$/, `first seen of ${row.Row}`);

    // Rules, with their names and comments.
    const rules = page.locator('section', { has: page.locator('h2', { hasText: 'Rules' }) });
    await rules.locator('.rule-name', { hasText: 'connected' }).waitFor();
    assert.match(await rules.textContent(), /A server is connected when one of its ports is on an ACTIVE network\./);
    assert.match(await rules.textContent(), /error\(vm\) :- nova:servers/);

    // Sort by row, descending: the server sorts.
    const ascending = await violationRows(page);
    const rowHeader = cardTable(page, 'violations').locator('th', { hasText: 'Row' });
    let request = violationsRequest(page, { sort: 'row', order: 'desc' });
    await rowHeader.getByRole('button').click();
    await request;
    await eventually(async () => assert.deepEqual(await violationRows(page), [...ascending].reverse()));
    assert.equal(await rowHeader.getAttribute('aria-sort'), 'descending');

    // Sort by first seen.
    const seenHeader = cardTable(page, 'violations').locator('th', { hasText: 'First seen' });
    request = violationsRequest(page, { sort: 'first_seen', order: 'asc' });
    await seenHeader.getByRole('button').click();
    await request;
    await eventually(async () => assert.equal(await seenHeader.getAttribute('aria-sort'), 'ascending'));
    await eventually(async () => assert.deepEqual([...await violationRows(page)].sort(), CLASSIFICATION_ERRORS));

    // Filter: sent to the server, which keeps the rows containing the text.
    request = violationsRequest(page, { filter: 'vm-1' });
    await page.getByLabel('Filter violations').fill('vm-1');
    await request;
    await eventually(async () => assert.deepEqual(await violationRows(page), ['error("vm-12")']));
    assert.equal(await violationsStatus(page), '1–1 of 1');
    assert.match(page.url(), /filter=vm-1/);

    // Pages of two rows.
    await open(page, '#/policies/classification?limit=2', 'classification');
    await eventually(async () => assert.equal(await violationsStatus(page), '1–2 of 4'));
    const first = await violationRows(page);
    assert.equal(first.length, 2);
    const previous = page.getByRole('button', { name: '← Previous' });
    const next = page.getByRole('button', { name: 'Next →' });
    assert.equal(await previous.isDisabled(), true);
    request = violationsRequest(page, { offset: '2', limit: '2' });
    await next.click();
    await request;
    await eventually(async () => assert.equal(await violationsStatus(page), '3–4 of 4'));
    const second = await violationRows(page);
    assert.deepEqual([...first, ...second].sort(), CLASSIFICATION_ERRORS);
    assert.equal(await next.isDisabled(), true);
    request = violationsRequest(page, { offset: '0', limit: '2' });
    await previous.click();
    await request;
    await eventually(async () => assert.deepEqual(await violationRows(page), first));
    request = violationsRequest(page, { offset: '2', limit: '2' });
    await page.getByRole('button', { name: 'Last »' }).click();
    await request;
    await eventually(async () => assert.deepEqual(await violationRows(page), second));
    assert.equal((await page.locator('#violations .page-number').textContent()).trim(), 'Page 2 of 2');

    // "Why?": the proof of vm-3 as a nested list under its row.
    await open(page, '#/policies/classification', 'classification');
    await eventually(async () => assert.equal((await violationRows(page)).length, 4));
    const why = page.getByRole('button', { name: 'Why error("vm-3")?' });
    await why.click();
    const proof = page.locator('#violations .explain .proof');
    await proof.waitFor();
    assert.equal(await why.getAttribute('aria-expanded'), 'true');
    // The contract's literal is error("vm-3"); congress serve qualifies it (classification:error("vm-3")).
    assert.match((await proof.locator('> li > .proof-literal').textContent()).trim(), /^(classification:)?error\("vm-3"\)$/);
    assert.ok(await proof.locator('li li').count() >= 1, 'the proof has sub-goals');
    assert.match(await proof.textContent(), /nova:servers\("vm-3"/);
    await screenshot(page, 'policy');
    await why.click();
    assert.equal(await proof.count(), 0);
  });
});

test('policy: simulate shows the delta (+ green, - red) and the API error of a bad sequence; history and its download', async () => {
  await withPage(async (page) => {
    await open(page, '#/policies/classification', 'classification');
    const simulate = page.locator('#simulate');
    assert.equal(await simulate.getByLabel('Query').inputValue(), 'error(x)');
    assert.equal(await simulate.getByLabel('Action policy').inputValue(), 'action');

    // A new ACTIVE server without a port: a new violation.
    await simulate.getByLabel('Sequence').fill(NEW_SERVER);
    await simulate.getByRole('button', { name: 'Simulate' }).click();
    const plus = simulate.locator('.delta-line--plus', { hasText: 'error+("vm-42")' });
    await plus.waitFor();
    assert.equal(await simulate.locator('.delta-line').count(), 1);
    assert.equal(await plus.evaluate((li) => getComputedStyle(li).color), 'rgb(27, 110, 58)');

    // A port for vm-3 on an ACTIVE network: one violation goes.
    await simulate.getByLabel('Sequence').fill(PORT_FOR_VM3);
    await simulate.getByRole('button', { name: 'Simulate' }).click();
    const minus = simulate.locator('.delta-line--minus', { hasText: 'error-("vm-3")' });
    await minus.waitFor();
    assert.equal(await simulate.locator('.delta-line').count(), 1);
    assert.equal(await minus.evaluate((li) => getComputedStyle(li).color), 'rgb(180, 35, 24)');

    // Both, one change a line.
    await simulate.getByLabel('Sequence').fill(`${NEW_SERVER}\n${PORT_FOR_VM3}`);
    await simulate.getByRole('button', { name: 'Simulate' }).click();
    await eventually(async () => assert.deepEqual(
      (await simulate.locator('.delta-line code').allTextContents()).sort(), ['error+("vm-42")', 'error-("vm-3")']));
    await screenshot(page, 'policy-simulate');

    // A bad sequence: the message of the API's error body.
    const bad = 'nova:servers+("vm-99"';
    const expected = await api('/v1/policies/classification?action=simulate&delta=true', {
      method: 'POST', body: { query: 'error(x)', sequence: bad, action_policy: 'action' },
    });
    assert.ok(expected.status >= 400 && expected.status < 500, `a bad sequence is a 4xx (${expected.status})`);
    await simulate.getByLabel('Sequence').fill(bad);
    await simulate.getByRole('button', { name: 'Simulate' }).click();
    const alert = simulate.getByRole('alert');
    await alert.waitFor();
    assert.equal((await alert.textContent()).trim(), expected.json.error.message);
    assert.equal(await simulate.locator('.delta-line').count(), 0);

    // History: the four violations appeared; the link downloads JSON lines.
    const history = page.locator('#history');
    await eventually(async () => {
      const rows = await tableObjects(history.locator('table'));
      const appeared = rows.filter((r) => r.Change === 'appeared').map((r) => r.Row).sort();
      assert.deepEqual(appeared, CLASSIFICATION_ERRORS);
      for (const r of rows) {
        assert.match(r.Time, /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$/);
        assert.notEqual(r.Cause, '');
      }
    });
    const link = history.getByRole('link', { name: 'Download as JSON lines' });
    const href = await link.getAttribute('href');
    assert.equal(href, '/v1/policies/classification/history?format=jsonl');
    const download = await api(href);
    assert.equal(download.status, 200);
    assert.match(download.headers.get('content-type'), /application\/x-ndjson/);
    const lines = download.text.trim().split('\n').map((line) => JSON.parse(line));
    assert.ok(lines.length >= 4);
    assert.ok(lines.every((l) => l.change === 'appeared' || l.change === 'cleared'));
  }, { allowStatus: [400, 422] });
});

test('text from the API is shown as text, never as HTML', async () => {
  const hostile = '<img src=x onerror="window.__owned=1"><b>bold</b>';
  const created = await api('/v1/policies', {
    method: 'POST',
    body: { name: 'escaping', description: hostile, rules: [{ rule: 'error(x) :- nova:servers(id=x, status="BUILD")', name: 'n', comment: hostile }] },
  });
  assert.equal(created.status, 201, created.text);
  await withPage(async (page) => {
    await open(page, '#/policies/escaping', 'escaping');
    assert.equal((await page.locator('main .description').first().textContent()).trim(), hostile);
    assert.equal((await page.locator('.rule-comment').textContent()).trim(), hostile);
    assert.equal(await page.locator('main img, main b').count(), 0);
    assert.equal(await page.evaluate(() => window.__owned), undefined);
  });
  await api('/v1/policies/escaping', { method: 'DELETE' });
});

test('library: browse by category, inspect, customise a parameter, activate; the new policy is on the overview', async () => {
  // A library policy with a parameter: servers must use a permitted flavor (all of the walk-through's
  // use m1.small, the default, so activating it unchanged finds nothing).
  const library = {
    name: 'permitted-flavors',
    description: 'Every nova server must use a permitted flavor (parameter permitted_flavor).',
    kind: 'nonrecursive',
    version: '1.2.0',
    category: 'OpenStack Compute',
    severity: 'high',
    enforcement: 'monitor',
    example: 'vm-1 uses m1.xlarge, which is not permitted: error("vm-1").',
    rules: [{ name: 'error', comment: 'A server whose flavor is not permitted.', rule: 'error(id) :- nova:servers(id=id, flavor_id=f), not permitted_flavor(f)' }],
    parameters: [{ table: 'permitted_flavor', columns: [{ name: 'flavor', type: 'string' }], default: [['m1.small']] }],
  };
  const created = await api('/v1/librarypolicies', { method: 'POST', body: library });
  assert.equal(created.status, 201, created.text);

  await withPage(async (page) => {
    // Browse: grouped by category.
    await open(page, '#/library', 'Library');
    const compute = page.locator('section.card', { has: page.locator('h2', { hasText: /^OpenStack Compute$/ }) });
    const row = (await tableObjects(compute.locator('table'))).find((r) => r.Name === 'permitted-flavors');
    assert.deepEqual({ severity: row.Severity, version: row.Version, description: row.Description },
      { severity: 'high', version: '1.2.0', description: library.description });
    const orphaned = page.getByRole('link', { name: 'orphaned-ports', exact: true });
    await orphaned.waitFor();
    await page.getByLabel('Filter the library').fill('flavor');
    await eventually(async () => assert.equal(await orphaned.count(), 0));
    await page.getByLabel('Filter the library').fill('');
    await orphaned.waitFor();
    await page.getByLabel('Category').selectOption('OpenStack Compute');
    await eventually(async () => assert.deepEqual(await page.locator('main h2').allTextContents(), ['OpenStack Compute']));
    await page.getByLabel('Category').selectOption('');
    await orphaned.waitFor();
    await screenshot(page, 'library');

    // Inspect.
    await page.getByRole('link', { name: 'permitted-flavors', exact: true }).click();
    await waitHeading(page, 'permitted-flavors');
    const main = page.locator('main');
    assert.match(await main.textContent(), /Every nova server must use a permitted flavor/);
    assert.match(await main.textContent(), /vm-1 uses m1\.xlarge/);
    assert.match(await main.locator('.rules').textContent(), /not permitted_flavor\(f\)/);
    assert.match(await main.locator('section', { has: page.locator('h2', { hasText: 'Parameters' }) }).textContent(), /permitted_flavor.*flavor \(string\)/);

    // Customise: permit m1.large and m1.tiny instead of m1.small (a row added, one removed).
    const activate = page.locator('#activate');
    const cell = (n) => activate.getByLabel(`permitted_flavor row ${n}, flavor`);
    assert.equal(await cell(1).inputValue(), 'm1.small');
    await cell(1).fill('m1.large');
    const addRow = activate.getByRole('button', { name: 'Add a row to permitted_flavor' });
    await addRow.click();
    await cell(2).fill('m1.medium');
    await addRow.click();
    await cell(3).fill('m1.tiny');
    await activate.getByRole('button', { name: 'Remove row 2 of permitted_flavor' }).click();
    assert.equal(await cell(2).inputValue(), 'm1.tiny');
    await activate.getByLabel('Policy name').fill('flavors');
    await screenshot(page, 'library-policy');
    const post = page.waitForRequest((r) => r.method() === 'POST' && r.url().includes('library_policy=permitted-flavors'));
    await activate.getByRole('button', { name: 'Activate' }).click();
    assert.deepEqual((await post).postDataJSON(), { name: 'flavors', parameters: { permitted_flavor: [['m1.large'], ['m1.tiny']] } });

    // The new policy's page: every server uses m1.small, now not permitted.
    await waitHeading(page, 'flavors');
    assert.equal(new URL(page.url()).hash, '#/policies/flavors');
    await eventually(async () => assert.equal(await violationsStatus(page), '1–12 of 12'));

    // On the overview.
    await open(page, '#/', 'Overview');
    await eventually(async () => {
      const rows = await tableObjects(cardTable(page, 'policies'));
      assert.equal(rows.find((r) => r.Name === 'flavors')?.Violations, '12');
    });

    // Activating again under the same name: the API's error is shown.
    await open(page, '#/library/permitted-flavors', 'permitted-flavors');
    await activate.getByLabel('Policy name').fill('flavors');
    await activate.getByRole('button', { name: 'Activate' }).click();
    await activate.getByRole('alert').waitFor();
    assert.ok((await activate.getByRole('alert').textContent()).trim().length > 0);
    assert.equal(new URL(page.url()).hash, '#/library/permitted-flavors');
  }, { allowStatus: [400, 409, 422] });
});

test('actions: approve and deny pending requests of the reactive policy', async () => {
  const pending = await eventually(async () => {
    const { json } = await api('/v1/action-requests');
    const list = json.results.filter((a) => a.phase === 'Pending' && a.name === 'nova:servers.pause');
    assert.ok(list.length >= 2, `pending pause requests: ${JSON.stringify(json.results)}`);
    return list;
  });
  const [approveMe, denyMe] = pending;
  const target = (a) => `${a.name}(${a.args.positional.map((v) => JSON.stringify(v)).join(', ')})`;

  await withPage(async (page) => {
    await open(page, '#/actions', 'Actions');
    const table = cardTable(page, 'action-requests');
    const rowOf = (a) => table.locator(`tr[data-key="${a.id}"]`);
    assert.equal((await rowOf(approveMe).locator('.badge').textContent()).trim(), 'Pending');

    await page.getByRole('button', { name: `Approve ${target(approveMe)}` }).click();
    await eventually(async () => assert.notEqual((await rowOf(approveMe).locator('.badge').textContent()).trim(), 'Pending'));
    assert.equal(await rowOf(approveMe).getByRole('button').count(), 0);
    const approved = (await api('/v1/action-requests')).json.results.find((a) => a.id === approveMe.id);
    assert.equal(approved.approved, true);
    assert.notEqual(approved.phase, 'Pending');

    await page.getByRole('button', { name: `Deny ${target(denyMe)}` }).click();
    await eventually(async () => assert.equal((await rowOf(denyMe).locator('.badge').textContent()).trim(), 'Denied'));
    assert.equal(await rowOf(denyMe).getByRole('button').count(), 0);
    assert.equal((await api('/v1/action-requests')).json.results.find((a) => a.id === denyMe.id).phase, 'Denied');
    await screenshot(page, 'actions');
  });
});

test('keyboard: Tab reaches the navigation and the sort buttons; Enter and Space activate them; focus is visible', async () => {
  await withPage(async (page) => {
    await open(page, '#/', 'Overview');
    await page.locator('#policies tbody tr').first().waitFor();
    const focused = () => page.evaluate(() => {
      const node = document.activeElement;
      return { tag: node.tagName, text: node.textContent.trim(), outline: getComputedStyle(node).outlineStyle };
    });
    const tabTo = async (tag, text) => {
      for (let i = 0; i < 40; i += 1) {
        await page.keyboard.press('Tab');
        const now = await focused();
        if (now.tag === tag && now.text.startsWith(text)) return now;
      }
      throw new Error(`Tab never reached ${tag} "${text}"`);
    };

    // The skip link comes first, then the navigation.
    await page.keyboard.press('Tab');
    assert.equal((await focused()).text, 'Skip to content');
    const library = await tabTo('A', 'Library');
    assert.notEqual(library.outline, 'none');
    await page.keyboard.press('Enter');
    await waitHeading(page, 'Library');
    assert.equal(new URL(page.url()).hash, '#/library');
    assert.equal((await focused()).tag, 'H1');

    // A sort button of the overview's policies table: Enter, then Space.
    await open(page, '#/', 'Overview');
    await page.locator('#policies tbody tr').first().waitFor();
    const header = page.locator('#policies th', { hasText: 'Severity' });
    const button = await tabTo('BUTTON', 'Severity');
    assert.notEqual(button.outline, 'none');
    await page.keyboard.press('Enter');
    assert.equal(await header.getAttribute('aria-sort'), 'ascending');
    await page.keyboard.press('Space');
    assert.equal(await header.getAttribute('aria-sort'), 'descending');
  });
});

test('sign-in: a 401 shows the token form; the token is then sent as X-Auth-Token', async () => {
  await withPage(async (page) => {
    let refused = 0;
    await page.route('**/v1/overview', (route) => {
      if (route.request().headers()['x-auth-token'] === 's3cret') return route.continue();
      refused += 1;
      return route.fulfill({
        status: 401, contentType: 'application/json',
        body: JSON.stringify({ error: { message: 'authentication required', error_code: 401, error_data: null } }),
      });
    });
    await open(page, '#/', 'Sign in');
    assert.equal(refused, 1);
    await page.getByLabel('Token', { exact: true }).fill('s3cret');
    const sent = page.waitForRequest((r) => r.url().endsWith('/v1/overview'));
    await page.getByRole('button', { name: 'Sign in' }).click();
    assert.equal((await sent).headers()['x-auth-token'], 's3cret');
    await waitHeading(page, 'Overview');
    assert.equal(await page.evaluate(() => sessionStorage.getItem('congress-token')), 's3cret');
    await page.getByRole('button', { name: 'Forget token' }).click();
    await waitHeading(page, 'Sign in');
  }, { allowStatus: [401] });
});
