// Checks the project page's trigger-rule editor and the webhook delivery log against a running
// fabu, in Chromium: switching the commit keyword off and saving changes exactly that in the
// project (read back through the API; PUT replaces the whole project, so nothing else may
// change); a generated secret is 32 characters and shown once; the delivery log, opened from
// the project page, lists that project's deliveries as the API does, newest first, with
// "load more" continuing without gaps or repeats, and a verdict filter. The deliveries are
// made first: GitLab pushes with the right token to a branch that does not deploy, which
// fabu records as ignored, then a few with a wrong token, recorded as rejected (fabu keeps
// only a sample of the rows of unverified deliveries, and counts the rest). Needs FABU_URL,
// FABU_USER, FABU_PASSWORD, FABU_PROJECT (a GitLab project) and FABU_WEBHOOK_SECRET (its
// webhook secret); run by the Go test TestBrowserDeploy. The project is restored afterwards.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { launch, newPage, screenshot, byTestId, fabuEnv, login, apiToken, apiGet } from './chromium.js'

const env = fabuEnv('triggers.test.js')
const { skip } = env

// More than one page of the log (50 rows), so "load more" has something to load.
const IGNORED = 53
const REJECTED = 3

let browser
let token
let original // the project as it was before this file, restored at the end

async function apiPut(path, body) {
  const res = await fetch(env.at(`/api/v1${path}`), {
    method: 'PUT',
    headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' },
    body: JSON.stringify(body),
  })
  const text = await res.text()
  if (res.status !== 200) throw new Error(`PUT /api/v1${path} = ${res.status} ${text}`)
  return JSON.parse(text)
}

// allDeliveries follows the API's own paging to the end.
async function allDeliveries(query) {
  const out = []
  let before = ''
  for (;;) {
    const page = await apiGet(env, token, `/deliveries?${new URLSearchParams({ ...query, limit: '200', ...(before ? { before } : {}) })}`)
    out.push(...page)
    if (page.length < 200) return out
    before = page[page.length - 1].id
  }
}

const shownRows = (page) =>
  page.$$eval(byTestId('delivery-row'), (els) => els.map((e) => ({ id: e.dataset.id, verdict: e.dataset.verdict, projectId: e.dataset.projectId })))

before(async () => {
  if (skip) return
  browser = await launch()
  token = await apiToken(env)
  const listed = (await apiGet(env, token, '/projects')).find((p) => p.name === env.project)
  assert.ok(listed, `fabu has no project named ${env.project}`)
  original = await apiGet(env, token, `/projects/${encodeURIComponent(listed.id)}`)
  assert.equal(original.platform, 'gitlab', 'this file posts GitLab deliveries')
  assert.ok(original.has_webhook_secret, `project ${env.project} has no webhook secret, so a wrong token would not be what rejects`)

  assert.ok(process.env.FABU_WEBHOOK_SECRET, 'FABU_WEBHOOK_SECRET is not set')
  // Verified pushes to a branch that does not deploy: each is answered 202 and recorded as ignored.
  for (let i = 0; i < IGNORED; i++) {
    const res = await fetch(env.at(`/hooks/gitlab/${encodeURIComponent(env.project)}`), {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', 'X-Gitlab-Event': 'Push Hook', 'X-Gitlab-Token': process.env.FABU_WEBHOOK_SECRET },
      body: JSON.stringify({
        object_kind: 'push', ref: `refs/heads/browser-ignored-${i}`, before: 'd'.repeat(40), after: 'e'.repeat(40),
        user_username: 'browser', project: { path_with_namespace: 'team/browser-site' }, commits: [],
      }),
    })
    const text = await res.text()
    assert.equal(res.status, 202, `a verified push to another branch was answered ${res.status} ${text}`)
    assert.equal(JSON.parse(text).verdict, 'ignored')
  }
  // GitLab-style pushes with a wrong token: each is refused with 401 and recorded as rejected.
  for (let i = 0; i < REJECTED; i++) {
    const res = await fetch(env.at(`/hooks/gitlab/${encodeURIComponent(env.project)}`), {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', 'X-Gitlab-Event': 'Push Hook', 'X-Gitlab-Token': `wrong-token-${i}-0123456789` },
      body: JSON.stringify({ object_kind: 'push', ref: 'refs/heads/main', after: 'f'.repeat(40), commits: [] }),
    })
    await res.text()
    assert.equal(res.status, 401, `a push with a wrong token was answered ${res.status}`)
  }
})

after(async () => {
  try {
    if (original) {
      const body = { ...original }
      delete body.webhook_secret
      await apiPut(`/projects/${encodeURIComponent(original.id)}`, body)
    }
  } finally {
    if (browser) await browser.close()
  }
})

test('switching the commit keyword off on the project page and saving changes only that in the project', { skip }, async () => {
  const { context, page, problems } = await newPage(browser)
  try {
    assert.notEqual(original.trigger_keyword, '', 'the keyword is off already; the test would prove nothing')
    await login(page, env)
    await page.waitForURL((u) => u.pathname === '/projects', { timeout: 15_000 })
    await page.goto(env.at(`/projects/${original.id}`))
    await page.waitForSelector(byTestId('triggers-save'))
    assert.equal(await page.inputValue(byTestId('triggers-keyword')), original.trigger_keyword)
    assert.equal(await page.inputValue(byTestId('triggers-hook-url')), env.at(`/hooks/gitlab/${encodeURIComponent(env.project)}`))
    assert.match(await page.innerText(byTestId('triggers-help')), /Secret token/)
    assert.match(await page.innerText(byTestId('triggers-secret-state')), /^set$/)
    assert.equal(await page.inputValue(byTestId('triggers-secret')), '', 'the secret field is not empty: a secret is never shown')

    // Generate shows a fresh 32-character secret once; Reset discards it unsaved.
    await page.click(byTestId('triggers-generate'))
    const secret = await page.inputValue(byTestId('triggers-generated'))
    assert.match(secret, /^[A-Za-z0-9]{32}$/)
    await page.click(byTestId('triggers-reset'))
    await page.waitForSelector(byTestId('triggers-generated'), { state: 'detached' })
    await page.waitForFunction((sel) => document.querySelector(sel)?.value === '', byTestId('triggers-secret'))

    await page.click(byTestId('triggers-keyword-switch'))
    assert.ok(await page.isDisabled(byTestId('triggers-keyword')), 'the keyword input stays editable after switching it off')
    await screenshot(page, 'triggers-project')
    await page.click(byTestId('triggers-save'))
    await page.waitForSelector('.el-message--success', { timeout: 15_000 })

    const now = await apiGet(env, token, `/projects/${encodeURIComponent(original.id)}`)
    assert.equal(now.trigger_keyword, '', 'the keyword is still on in the project')
    // Everything else is as it was: PUT replaced the project with the full body.
    const rest = (p) => {
      const { trigger_keyword: _k, ...others } = p
      return others
    }
    assert.deepEqual(rest(now), rest(original))
    assert.deepEqual(problems, [])
  } finally {
    await context.close()
  }
})

test("the delivery log, opened from the project page, shows the project's deliveries and pages on without gaps or repeats", { skip }, async () => {
  const { context, page, problems } = await newPage(browser)
  try {
    const want = await allDeliveries({ project_id: original.id })
    assert.ok(want.filter((d) => d.verdict === 'rejected').length >= REJECTED, 'the rejected pushes were not recorded')
    assert.ok(want.length > 50, 'fewer deliveries than one page')

    await login(page, env)
    await page.waitForURL((u) => u.pathname === '/projects', { timeout: 15_000 })
    await page.goto(env.at(`/projects/${original.id}`))
    await page.click(byTestId('triggers-deliveries-link'))
    await page.waitForURL((u) => u.pathname === '/deliveries' && u.searchParams.get('project_id') === original.id)
    await page.waitForSelector(`${byTestId('deliveries-table')} ${byTestId('delivery-row')}`)
    let shown = await shownRows(page)
    assert.deepEqual(shown.map((r) => r.id), want.slice(0, 50).map((d) => d.id), 'the first page is not the newest 50 deliveries')
    assert.ok(shown.every((r) => r.projectId === original.id))
    const first = page.locator('tr', { has: page.locator(byTestId('delivery-row')) }).first()
    assert.match(await first.innerText(), /rejected/)
    assert.match(await first.innerText(), /signature or token does not match/)
    await screenshot(page, 'deliveries')

    // Load more until the end: every delivery once, in the API's order.
    while (await page.isVisible(byTestId('deliveries-more'))) {
      const n = shown.length
      await page.click(byTestId('deliveries-more'))
      await page.waitForFunction(([sel, n]) => document.querySelectorAll(sel).length > n, [byTestId('delivery-row'), n])
      await page.waitForSelector(`${byTestId('deliveries-more')}:not(.is-loading)`, { timeout: 5_000 }).catch(() => {})
      shown = await shownRows(page)
    }
    await page.waitForSelector(byTestId('deliveries-end'))
    assert.deepEqual(shown.map((r) => r.id), want.map((d) => d.id), 'paging in the UI lost or repeated deliveries')

    // The filters come from the URL: this project's ignored deliveries (possibly none).
    await page.goto(env.at(`/deliveries?project_id=${encodeURIComponent(original.id)}&verdict=ignored`))
    await page.waitForSelector(byTestId('deliveries-table'))
    await page.waitForLoadState('networkidle')
    const ignored = await apiGet(env, token, `/deliveries?project_id=${encodeURIComponent(original.id)}&verdict=ignored`)
    assert.deepEqual((await shownRows(page)).map((r) => r.id), ignored.map((d) => d.id))
    await page.goto(env.at(`/deliveries?verdict=rejected`))
    await page.waitForSelector(byTestId('delivery-row'))
    shown = await shownRows(page)
    assert.ok(shown.length > 0 && shown.every((r) => r.verdict === 'rejected'), 'the verdict filter shows other verdicts')
    await screenshot(page, 'deliveries-rejected')
    assert.deepEqual(problems, [])
  } finally {
    await context.close()
  }
})
