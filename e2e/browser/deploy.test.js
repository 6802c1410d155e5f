// Drives a running fabu in Chromium: log in, open a project, deploy it and watch the run page
// until the run has succeeded with its log on screen. Needs FABU_URL, FABU_USER,
// FABU_PASSWORD and FABU_PROJECT (a project that is configured and deployable); run by the Go
// end-to-end test TestBrowserDeploy, which starts fabu, an sshd target and the project.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { launch, newPage, screenshot, byTestId, fabuEnv, login, apiGet, shownLog, pageErrors, LOG_LINES, accessToken } from './chromium.js'

const env = fabuEnv('deploy.test.js')
const { skip } = env

const RUN_DEADLINE_MS = 90_000
let browser

before(async () => {
  if (!skip) browser = await launch()
})
after(async () => {
  if (browser) await browser.close()
})

test('log in, deploy the project and watch the run succeed', { skip, timeout: RUN_DEADLINE_MS + 60_000 }, async () => {
  const { context, page, problems } = await newPage(browser)
  try {
    await login(page, env)
    await page.waitForURL((u) => u.pathname.startsWith('/projects'), { timeout: 15_000 })

    await page.click(byTestId(`project-row-${env.project}`), { timeout: 15_000 })
    await page.waitForURL((u) => /^\/projects\/[^/]+$/.test(u.pathname))
    await page.waitForSelector(byTestId('deploy-button'))
    await screenshot(page, 'project')

    await page.click(byTestId('deploy-button'))
    await page.waitForURL((u) => /^\/runs\/[^/]+$/.test(u.pathname), { timeout: 15_000 })
    const runId = new URL(page.url()).pathname.split('/').pop()
    assert.ok(runId, 'no run id in the URL')

    // Poll what the page shows until the run is final or the deadline passes.
    const deadline = Date.now() + RUN_DEADLINE_MS
    let status = ''
    while (Date.now() < deadline) {
      status = await page.getAttribute(byTestId('run-status'), 'data-status')
      if (['succeeded', 'failed', 'cancelled'].includes(status)) break
      await page.waitForTimeout(500)
    }
    // The run is final; give the socket a moment to deliver the last lines before checking.
    await page.waitForFunction((sel) => document.querySelectorAll(sel).length > 0, LOG_LINES, { timeout: 10_000 }).catch(() => {})
    await screenshot(page, 'run')

    const logText = await page.innerText(byTestId('run-log'))
    assert.equal(status, 'succeeded', `run ${runId} ended as "${status}"; log:\n${logText.slice(-4000)}`)
    const ns = (await shownLog(page)).map((l) => l.n)
    assert.ok(ns.length > 0, `run ${runId} succeeded but the page shows no log line`)
    // Line numbers on screen are 1..N with no gap and no duplicate.
    assert.deepEqual(ns, ns.map((_, i) => i + 1), 'log lines are duplicated, missing or out of order')

    const progress = await page.getAttribute(byTestId('run-progress'), 'data-progress')
    assert.equal(progress, '100')

    // Reloading only observes: the page shows the same run, still succeeded.
    await page.reload()
    await page.waitForFunction((sel) => document.querySelector(sel)?.dataset.status === 'succeeded', byTestId('run-status'), { timeout: 15_000 })
    const token = await accessToken(page)
    const run = await apiGet(env, token, `/runs/${encodeURIComponent(runId)}`)
    assert.equal(run.status, 'succeeded')

    assert.deepEqual(pageErrors(problems), [])
  } finally {
    await context.close()
  }
})
