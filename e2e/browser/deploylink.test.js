// Checks the bookmarkable deploy link (/deploy/<project>?ref=…) in Chromium against a running
// fabu: the project page shows and copies it; opening it signed out goes through the login
// and back to it; opening and reloading it start nothing; only Confirm starts exactly one run
// and lands on that run's page with its live log. Then an owner switches the project's
// environment rules to "deploy when opened" on the project page: the link starts exactly one
// run once the page is visible (not while it is hidden), replacing itself in the history; and
// when a deploy needs an approved ticket the link starts nothing and says why. Needs FABU_URL, FABU_USER, FABU_PASSWORD
// and FABU_PROJECT (a configured, deployable project); run by the Go test TestBrowserDeploy.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { launch, newPage, screenshot, byTestId, fabuEnv, apiToken, apiGet, login, LOG_LINES, apiDo } from './chromium.js'

const env = fabuEnv('deploylink.test.js')
const { skip } = env

const RUN_DEADLINE_MS = 90_000
// Long enough that a page deploying on load would have asked the API by then.
const SETTLE_MS = 1000

let browser
let token
let project

const api = (method, path, body) => apiDo(env, token, method, path, body)

// runsSince tracks the runs of the project started after it is called.
async function runsSince() {
  const listRuns = async () => (await apiGet(env, token, `/runs?project_id=${encodeURIComponent(project.id)}&limit=200`)).map((r) => r.id)
  const seen = new Set(await listRuns())
  return async () => (await listRuns()).filter((id) => !seen.has(id))
}

// endsSucceeded waits until the run page shows run runId finished and checks it succeeded.
async function endsSucceeded(page, runId) {
  await page.waitForFunction(
    (sel) => ['succeeded', 'failed', 'cancelled'].includes(document.querySelector(sel)?.dataset.status),
    byTestId('run-status'),
    { timeout: RUN_DEADLINE_MS },
  )
  const run = await apiGet(env, token, `/runs/${encodeURIComponent(runId)}`)
  assert.equal(run.status, 'succeeded', `run ${runId} ended as ${run.status}: ${run.error}`)
}

before(async () => {
  if (skip) return
  browser = await launch()
  token = await apiToken(env)
  project = (await apiGet(env, token, '/projects')).find((p) => p.name === env.project)
  assert.ok(project, `fabu has no project named ${env.project}`)
})
after(async () => {
  if (browser) await browser.close()
})

test('a deploy link starts nothing when opened, signed out or in, or reloaded; Confirm starts exactly one run and opens it', { skip, timeout: RUN_DEADLINE_MS + 60_000 }, async () => {
  const { context, page, problems } = await newPage(browser)
  await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: new URL(env.url).origin })
  const newRuns = await runsSince()
  const ref = project.branch || 'main'
  const linkPath = `/deploy/${encodeURIComponent(project.name)}?ref=${encodeURIComponent(ref)}`
  const onLink = (u) => u.pathname === `/deploy/${encodeURIComponent(project.name)}` && u.searchParams.get('ref') === ref
  const shownAndIdle = async (what) => {
    await page.waitForSelector(byTestId('deploy-link-confirm'), { timeout: 15_000 })
    assert.equal((await page.innerText(byTestId('deploy-link-project'))).trim(), project.name)
    assert.equal((await page.innerText(byTestId('deploy-link-ref'))).trim(), ref)
    await page.waitForTimeout(SETTLE_MS)
    assert.deepEqual(await newRuns(), [], `${what} started a run`)
  }
  try {
    // Signed out, the link goes through the login page and back to itself.
    await page.goto(env.at(linkPath))
    await page.waitForURL((u) => u.pathname === '/login', { timeout: 15_000 })
    assert.equal(new URL(page.url()).searchParams.get('redirect'), linkPath)
    await page.fill(byTestId('login-username'), env.user)
    await page.fill(byTestId('login-password'), env.password)
    await page.click(byTestId('login-submit'))
    await page.waitForURL(onLink, { timeout: 15_000 })
    await shownAndIdle('opening the link and signing in')

    // The project page shows the link for the ref typed there, and copies it.
    await page.goto(env.at(`/projects/${encodeURIComponent(project.id)}`))
    await page.waitForSelector(byTestId('project-title'))
    await page.fill(byTestId('deploy-ref'), ref)
    const shown = await page.inputValue(byTestId('deploy-link'))
    assert.equal(shown, env.at(linkPath))
    await page.click(byTestId('copy-deploy-link'))
    await page.waitForFunction(async (want) => (await navigator.clipboard.readText()) === want, shown, { timeout: 5_000 })
    assert.deepEqual(await newRuns(), [], 'the project page started a run')

    // Following the copied link, and reloading it, only show it.
    await page.goto(shown)
    await shownAndIdle('opening the copied link')
    await page.reload()
    await shownAndIdle('reloading the link')
    await screenshot(page, 'deploylink-confirm')

    // Confirm starts exactly one run, at the link's ref, and opens its page with the live log.
    await page.click(byTestId('deploy-link-confirm'))
    await page.waitForURL((u) => /^\/runs\/[^/]+$/.test(u.pathname), { timeout: 15_000 })
    const runId = decodeURIComponent(new URL(page.url()).pathname.split('/').pop())
    assert.deepEqual(await newRuns(), [runId], 'Confirm did not start exactly the run shown')
    const requested = await apiGet(env, token, `/runs/${encodeURIComponent(runId)}`)
    assert.equal(requested.ref, ref)
    assert.equal(requested.trigger, 'manual')
    await endsSucceeded(page, runId)
    assert.ok((await page.$$(LOG_LINES)).length > 0, 'the run page shows no log line')
    await screenshot(page, 'deploylink-run')

    // Watching the run to its end started nothing more.
    assert.deepEqual(await newRuns(), [runId], 'more than one run was started')
    assert.deepEqual(problems, [])
  } finally {
    await context.close()
  }
})

test('with link_confirm off the link deploys once the page is shown, and never when a ticket is needed', { skip, timeout: RUN_DEADLINE_MS + 60_000 }, async () => {
  const { page, problems, context } = await newPage(browser)
  const newRuns = await runsSince()
  const linkPath = `/deploy/${encodeURIComponent(project.name)}`
  try {
    // The owner (admin) switches the link to deploy when opened in the environment rules.
    await login(page, env)
    await page.waitForURL((u) => u.pathname.startsWith('/projects'), { timeout: 15_000 })
    await page.goto(env.at(`/projects/${encodeURIComponent(project.id)}`))
    await page.waitForSelector(byTestId('link-confirm-off'), { timeout: 15_000 })
    await page.click(byTestId('link-confirm-off'))
    await page.click(byTestId('approvals-save'))
    const deadline = Date.now() + 10_000
    while ((await api('GET', `/projects/${encodeURIComponent(project.id)}/approval`)).link_confirm !== false) {
      assert.ok(Date.now() < deadline, 'saving the rules did not switch link_confirm off')
      await page.waitForTimeout(100)
    }
    assert.deepEqual(await newRuns(), [], 'saving the rules started a run')

    // A page that is hidden (a background tab, a prerender) waits; shown, it starts one run.
    await page.goto(env.at('/'))
    // Every document of this tab reports itself hidden until the tab's session says shown.
    await page.addInitScript(() => {
      Object.defineProperty(document, 'visibilityState', { configurable: true, get: () => (sessionStorage.getItem('fabu-test-shown') === '1' ? 'visible' : 'hidden') })
    })
    await page.goto(env.at(linkPath))
    await page.waitForSelector(byTestId('deploy-link-auto'), { timeout: 15_000 })
    await page.waitForTimeout(SETTLE_MS)
    assert.deepEqual(await newRuns(), [], 'a hidden page started a run')
    await page.evaluate(() => {
      sessionStorage.setItem('fabu-test-shown', '1')
      document.dispatchEvent(new Event('visibilitychange'))
    })
    await page.waitForURL((u) => /^\/runs\/[^/]+$/.test(u.pathname), { timeout: 15_000 })
    const runId = decodeURIComponent(new URL(page.url()).pathname.split('/').pop())
    assert.deepEqual(await newRuns(), [runId], 'showing the page did not start exactly the run shown')
    const requested = await apiGet(env, token, `/runs/${encodeURIComponent(runId)}`)
    assert.equal(requested.ref, project.branch || 'main')
    // Reloading the run page starts nothing more, and the run page replaced the link in the
    // history: going back does not open the link again.
    await page.reload()
    await page.waitForSelector(byTestId('run-status'), { timeout: 15_000 })
    await endsSucceeded(page, runId)
    await screenshot(page, 'deploylink-auto-run')
    await page.goBack()
    await page.waitForURL((u) => !u.pathname.startsWith('/runs/'), { timeout: 15_000 })
    assert.notEqual(new URL(page.url()).pathname, linkPath, 'going back opened the deploy link again')
    await page.waitForTimeout(SETTLE_MS)
    assert.deepEqual(await newRuns(), [runId], 'reloading the run page or going back started another run')

    // When every deploy needs an approved ticket the link starts nothing and says why.
    await api('PUT', `/projects/${encodeURIComponent(project.id)}/approval`, { approval: 'required' })
    await page.goto(env.at(linkPath))
    await page.waitForSelector(byTestId('deploy-link-ticket'), { timeout: 15_000 })
    assert.match(await page.innerText(byTestId('deploy-link-ticket')), /release ticket/)
    assert.equal(await page.$(byTestId('deploy-link-confirm')), null, 'a Confirm button is offered although a ticket is needed')
    await page.waitForTimeout(SETTLE_MS)
    assert.deepEqual(await newRuns(), [runId], 'the link started a run that needs a ticket')
    await screenshot(page, 'deploylink-ticket')
    assert.deepEqual(problems, [])
  } finally {
    await api('PUT', `/projects/${encodeURIComponent(project.id)}/approval`, { approval: 'none', link_confirm: true })
    await context.close()
  }
})
