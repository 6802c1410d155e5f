// Checks the bookmarkable deploy link (/deploy/<project>?ref=…) in Chromium against a running
// fabu: the project page shows and copies it; opening it signed out goes through the login
// and back to it; opening and reloading it start nothing; only Confirm starts exactly one run
// and lands on that run's page with its live log. Needs FABU_URL, FABU_USER, FABU_PASSWORD
// and FABU_PROJECT (a configured, deployable project); run by the Go test TestBrowserDeploy.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { launch, newPage, screenshot, byTestId, fabuEnv, apiToken, apiGet, LOG_LINES } from './chromium.js'

const env = fabuEnv('deploylink.test.js')
const { skip } = env

const RUN_DEADLINE_MS = 90_000
// Long enough that a page deploying on load would have asked the API by then.
const SETTLE_MS = 1000

let browser
let token
let project

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
  const listRuns = async () => (await apiGet(env, token, `/runs?project_id=${encodeURIComponent(project.id)}&limit=200`)).map((r) => r.id)
  const before = new Set(await listRuns())
  const newRuns = async () => (await listRuns()).filter((id) => !before.has(id))
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
    await page.waitForFunction(
      (sel) => ['succeeded', 'failed', 'cancelled'].includes(document.querySelector(sel)?.dataset.status),
      byTestId('run-status'),
      { timeout: RUN_DEADLINE_MS },
    )
    const run = await apiGet(env, token, `/runs/${encodeURIComponent(runId)}`)
    assert.equal(run.status, 'succeeded', `run ${runId} ended as ${run.status}: ${run.error}`)
    assert.ok((await page.$$(LOG_LINES)).length > 0, 'the run page shows no log line')
    await screenshot(page, 'deploylink-run')

    // Watching the run to its end started nothing more.
    assert.deepEqual(await newRuns(), [runId], 'more than one run was started')
    assert.deepEqual(problems, [])
  } finally {
    await context.close()
  }
})
