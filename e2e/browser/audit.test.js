// Checks the audit log page against a running fabu, in Chromium: it lists the newest entries as
// GET /api/v1/audit does (with a change made through the API and a refused sign-in among them),
// the action filter narrows the list to that action (also in the URL), and Export downloads a
// CSV of exactly the filtered entries, header first. Needs FABU_URL, FABU_USER, FABU_PASSWORD
// (an administrator) and FABU_PROJECT; run by the Go test TestBrowserDeploy. The project is
// written back unchanged, which is itself an audited change.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { readFile } from 'node:fs/promises'
import { launch, newPage, screenshot, byTestId, fabuEnv, login, apiToken, apiGet } from './chromium.js'

const env = fabuEnv('audit.test.js')
const { skip } = env

let browser
let token
let project

// A user name that does not exist: its failed sign-in is audited without locking anyone real.
const NOBODY = `audit-nobody-${Date.now()}`

// parseCSV reads RFC 4180 CSV: quoted fields may hold commas, doubled quotes and line breaks.
function parseCSV(text) {
  const rows = []
  let row = []
  let field = ''
  let quoted = false
  for (let i = 0; i < text.length; i++) {
    const c = text[i]
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') {
        field += '"'
        i++
      } else if (c === '"') quoted = false
      else field += c
    } else if (c === '"') quoted = true
    else if (c === ',') {
      row.push(field)
      field = ''
    } else if (c === '\n' || c === '\r') {
      if (c === '\r' && text[i + 1] === '\n') i++
      row.push(field)
      rows.push(row)
      row = []
      field = ''
    } else field += c
  }
  if (field !== '' || row.length) {
    row.push(field)
    rows.push(row)
  }
  return rows
}

async function allEntries(query) {
  const out = []
  let before = ''
  for (;;) {
    const page = await apiGet(env, token, `/audit?${new URLSearchParams({ ...query, limit: '500', ...(before ? { before } : {}) })}`)
    out.push(...page.entries)
    if (!page.next) return out
    before = String(page.next)
  }
}

before(async () => {
  if (skip) return
  browser = await launch()
  token = await apiToken(env)
  const listed = (await apiGet(env, token, '/projects')).find((p) => p.name === env.project)
  assert.ok(listed, `fabu has no project named ${env.project}`)
  project = await apiGet(env, token, `/projects/${encodeURIComponent(listed.id)}`)

  // A refused sign-in and a change: both must show up in the log.
  const res = await fetch(env.at('/api/v1/auth/login'), {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ username: NOBODY, password: 'not-a-password-at-all' }),
  })
  await res.text()
  assert.equal(res.status, 401, `a sign-in of an unknown user was answered ${res.status}`)
  const body = { ...project }
  delete body.webhook_secret
  const put = await fetch(env.at(`/api/v1/projects/${encodeURIComponent(project.id)}`), {
    method: 'PUT',
    headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' },
    body: JSON.stringify(body),
  })
  const text = await put.text()
  assert.equal(put.status, 200, `PUT project = ${put.status} ${text}`)
})

after(async () => {
  if (browser) await browser.close()
})

const shownRows = (page) =>
  page.$$eval(byTestId('audit-row'), (els) => els.map((e) => ({ id: Number(e.dataset.id), action: e.dataset.action, outcome: e.dataset.outcome })))

test('the audit page lists the newest entries as the API does', { skip }, async () => {
  const { context, page, problems } = await newPage(browser)
  try {
    await login(page, env)
    await page.waitForURL((u) => u.pathname === '/projects', { timeout: 15_000 })
    await page.click(byTestId('nav-audit'))
    await page.waitForURL((u) => u.pathname === '/audit')
    await page.waitForSelector(`${byTestId('audit-table')} ${byTestId('audit-row')}`)
    const shown = await shownRows(page)
    const want = (await apiGet(env, token, '/audit?limit=50')).entries
    assert.deepEqual(shown.map((r) => r.id), want.map((e) => e.id), 'the page does not show the newest entries of the API')
    const update = want.find((e) => e.action === 'project.update' && e.target_id === project.id)
    assert.ok(update, 'the project update made by this file is not among the newest entries')
    assert.equal(update.actor, env.user)
    assert.equal(update.outcome, 'ok')
    assert.ok(update.ip, 'the project update has no client address')
    assert.ok(shown.some((r) => r.id === update.id), 'the project update is not on the page')
    await screenshot(page, 'audit-list')
    assert.deepEqual(problems, [])
  } finally {
    await context.close()
  }
})

test('filtering by action shows only that action, and Export downloads exactly those entries as CSV', { skip }, async () => {
  const { context, page, problems } = await newPage(browser)
  try {
    await login(page, env)
    await page.waitForURL((u) => u.pathname === '/projects', { timeout: 15_000 })
    await page.goto(env.at('/audit'))
    await page.waitForSelector(`${byTestId('audit-table')} ${byTestId('audit-row')}`)
    await page.click(byTestId('audit-filter-action'))
    await page.click('.el-select-dropdown__item >> text="auth.login"')
    await page.waitForURL((u) => u.searchParams.get('action') === 'auth.login')
    await page.waitForFunction(
      (sel) => {
        const rows = [...document.querySelectorAll(sel)]
        return rows.length > 0 && rows.every((r) => r.dataset.action === 'auth.login')
      },
      byTestId('audit-row'),
      { timeout: 15_000 },
    )
    const shown = await shownRows(page)
    const want = await allEntries({ action: 'auth.login' })
    assert.deepEqual(shown.map((r) => r.id), want.slice(0, 50).map((e) => e.id))
    const refused = want.find((e) => e.target_id === NOBODY)
    assert.ok(refused, 'the refused sign-in is not in the log')
    assert.equal(refused.outcome, 'refused')
    assert.ok(shown.some((r) => r.id === refused.id && r.outcome === 'refused'), 'the refused sign-in is not shown as refused')
    await screenshot(page, 'audit-filtered')

    const [download] = await Promise.all([page.waitForEvent('download', { timeout: 15_000 }), page.click(byTestId('audit-export'))])
    assert.match(download.suggestedFilename(), /^fabu-audit-.*\.csv$/)
    const csv = parseCSV(await readFile(await download.path(), 'utf8'))
    assert.deepEqual(csv[0], ['id', 'at', 'actor', 'actor_id', 'action', 'target', 'target_id', 'outcome', 'ip', 'user_agent', 'detail'])
    const rows = csv.slice(1)
    const now = await allEntries({ action: 'auth.login' })
    assert.deepEqual(rows.map((r) => Number(r[0])), now.map((e) => e.id), 'the CSV does not hold exactly the filtered entries')
    assert.ok(rows.every((r) => r[4] === 'auth.login'))
    const nobody = rows.find((r) => r[6] === NOBODY)
    assert.ok(nobody, 'the refused sign-in is not in the CSV')
    assert.equal(nobody[7], 'refused')
    assert.doesNotThrow(() => JSON.parse(nobody[10]), 'the detail cell is not JSON')
    assert.ok(!rows.some((r) => r.join(',').includes('not-a-password-at-all')), 'a password reached the export')

    const exports = await allEntries({ action: 'audit.export' })
    assert.ok(exports.length >= 1 && exports[0].actor === env.user, 'the export itself was not audited')
    assert.deepEqual(problems, [])
  } finally {
    await context.close()
  }
})
