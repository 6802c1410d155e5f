// Checks the SPA as served by a running fabu, in Chromium: the language switch and its memory,
// login errors, the servers page and deploy key, the project page, deploying from the UI, the
// run page's live log against the stored one, reloading a run page starting nothing, and a
// bad token sending the browser back to login. Needs FABU_URL, FABU_USER, FABU_PASSWORD and
// FABU_PROJECT (a configured, deployable project); run by the Go test TestBrowserDeploy.
// The live log's drop-and-resume logic is unit-tested in web/src/logstream.test.js.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { launch, newPage, screenshot, byTestId, fabuEnv, login, apiToken, apiGet, shownLog, pageErrors, LOG_LINES, accessToken, REFRESH_COOKIE } from './chromium.js'

const env = fabuEnv('spa.test.js')
const { skip } = env

const RUN_DEADLINE_MS = 90_000
// A refused login or a rejected token shows up in the console as a failed request; that is expected.
const unexpected = (problems) => problems.filter((p) => !/status of 401/.test(p))

let browser
let token // an API token of our own, to read what the server holds
let project // the project FABU_PROJECT names, as the API returns it

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

const text = async (page, id) => (await page.innerText(byTestId(id))).trim()

test('the language switch changes the UI between English and Chinese and is remembered across a reload', { skip }, async () => {
  const { context, page, problems } = await newPage(browser)
  try {
    await page.goto(env.at('/projects'))
    await page.waitForURL((u) => u.pathname === '/login')
    assert.equal(await text(page, 'login-submit'), 'Sign in', 'an en-US browser does not start in English')

    await page.click(`${byTestId('lang-switch')} >> text=中文`)
    assert.equal(await text(page, 'login-submit'), '登录')
    assert.equal(await page.evaluate(() => localStorage.getItem('fabu.lang')), 'zh')
    await page.reload()
    await page.waitForSelector(byTestId('login-submit'))
    assert.equal(await text(page, 'login-submit'), '登录', 'Chinese was not remembered across a reload')
    await screenshot(page, 'spa-login-zh')

    // The choice carries into the app after signing in, and back to English from its header.
    await page.fill(byTestId('login-username'), env.user)
    await page.fill(byTestId('login-password'), env.password)
    await page.click(byTestId('login-submit'))
    await page.waitForURL((u) => u.pathname === '/projects', { timeout: 15_000 })
    await page.waitForSelector(byTestId(`project-row-${env.project}`))
    assert.equal(await text(page, 'nav-projects'), '项目')
    await screenshot(page, 'spa-projects-zh')

    await page.click(`${byTestId('lang-switch')} >> text=English`)
    assert.equal(await text(page, 'nav-projects'), 'Projects')
    assert.equal(await page.evaluate(() => localStorage.getItem('fabu.lang')), 'en')
    await page.reload()
    await page.waitForSelector(byTestId('nav-projects'))
    assert.equal(await text(page, 'nav-projects'), 'Projects', 'English was not remembered across a reload')
    assert.deepEqual(unexpected(problems), [])
  } finally {
    await context.close()
  }
})

test('a wrong password shows an error and stays on the login page', { skip }, async () => {
  const { context, page, problems } = await newPage(browser)
  try {
    await login(page, env, `${env.password}-wrong`)
    const err = await page.waitForSelector(byTestId('login-error'), { timeout: 15_000 })
    assert.match((await err.innerText()).trim(), /^Sign-in failed: \S/)
    assert.equal(new URL(page.url()).pathname, '/login')
    assert.equal(await accessToken(page), null, 'a token was stored')
    assert.equal(await page.evaluate(() => localStorage.getItem('fabu.user')), null, 'a user was stored')
    await screenshot(page, 'spa-login-error')
    assert.deepEqual(unexpected(problems), [])
  } finally {
    await context.close()
  }
})

test("the servers page lists the project's servers and fabu's deploy public key", { skip }, async () => {
  const { context, page, problems } = await newPage(browser)
  try {
    const servers = (await apiGet(env, token, '/servers')).filter((s) => project.server_ids.includes(s.id))
    assert.ok(servers.length > 0, `project ${env.project} has no server`)
    const { public_key: publicKey } = await apiGet(env, token, '/ssh/public-key')
    assert.match(publicKey, /^ssh-\S+ \S+/)

    await login(page, env)
    await page.waitForURL((u) => u.pathname === '/projects', { timeout: 15_000 })
    await page.click(byTestId('nav-servers'))
    await page.waitForURL((u) => u.pathname === '/servers')
    for (const s of servers) {
      const row = page.locator('tr', { has: page.locator(byTestId(`server-row-${s.name}`)) })
      await row.waitFor()
      assert.match(await row.innerText(), new RegExp(s.host.replace(/\./g, '\\.')), `the row of ${s.name} does not show its host`)
    }
    await page.waitForFunction((sel) => document.querySelector(sel)?.value, byTestId('public-key'))
    assert.equal((await page.inputValue(byTestId('public-key'))).trim(), publicKey.trim())
    await screenshot(page, 'spa-servers')
    assert.deepEqual(problems, [])
  } finally {
    await context.close()
  }
})

test('deploying from the project page opens its run, whose live log is the stored one; reloading starts no second run', { skip, timeout: RUN_DEADLINE_MS + 60_000 }, async () => {
  const { context, page, problems } = await newPage(browser)
  // The project's runs are counted relative to this moment, so other runs (deploy.test.js's)
  // do not matter; the page must add exactly one.
  const listRuns = async () => (await apiGet(env, token, `/runs?project_id=${encodeURIComponent(project.id)}&limit=200`)).map((r) => r.id)
  const before = new Set(await listRuns())
  const newRuns = async () => (await listRuns()).filter((id) => !before.has(id))
  try {
    await login(page, env)
    await page.waitForURL((u) => u.pathname === '/projects', { timeout: 15_000 })
    await page.click(byTestId(`project-row-${env.project}`))
    await page.waitForURL((u) => u.pathname === `/projects/${project.id}`)
    await page.waitForSelector(byTestId('project-title'))
    assert.equal(await text(page, 'project-title'), env.project)
    await screenshot(page, 'spa-project')
    assert.deepEqual(await newRuns(), [], 'opening the project page started a run')

    const ref = project.branch || 'main'
    await page.fill(byTestId('deploy-ref'), ref)
    await page.click(byTestId('deploy-button'))
    await page.waitForURL((u) => /^\/runs\/[^/]+$/.test(u.pathname), { timeout: 15_000 })
    const runId = decodeURIComponent(new URL(page.url()).pathname.split('/').pop())
    assert.deepEqual(await newRuns(), [runId], 'pressing Deploy once did not start exactly the run shown')
    assert.equal((await apiGet(env, token, `/runs/${encodeURIComponent(runId)}`)).ref, ref)

    await page.waitForFunction(
      (sel) => ['succeeded', 'failed', 'cancelled'].includes(document.querySelector(sel)?.dataset.status),
      byTestId('run-status'),
      { timeout: RUN_DEADLINE_MS },
    )
    await page.waitForFunction((sel) => document.querySelector(sel)?.dataset.state === 'ended', byTestId('log-conn'), { timeout: 10_000 })
    const run = await apiGet(env, token, `/runs/${encodeURIComponent(runId)}`)
    const stored = await apiGet(env, token, `/runs/${encodeURIComponent(runId)}/logs?limit=5000`)
    assert.ok(stored.done, 'the stored log of the finished run is not done')
    const want = stored.lines.map((l) => ({ n: l.n, text: l.text, err: l.stream === 'stderr' }))

    // What the live log showed: every stored line once, numbered 1..N, stderr tinted.
    const shown = await shownLog(page)
    assert.equal(run.status, 'succeeded', `run ${runId} ended as ${run.status}: ${run.error}\n${shown.map((l) => l.text).join('\n')}`)
    assert.equal(await page.getAttribute(byTestId('run-status'), 'data-status'), 'succeeded')
    assert.ok(shown.length > 0, 'the run page shows no log line')
    assert.deepEqual(shown.map((l) => l.n), shown.map((_, i) => i + 1), 'log lines are duplicated, missing or out of order')
    assert.deepEqual(shown, want, 'the live log differs from the stored one')
    assert.equal(await page.getAttribute(byTestId('run-progress'), 'data-progress'), '100')
    await page.waitForTimeout(500) // let the progress bar's transition finish for the screenshot
    await screenshot(page, 'spa-run')

    // Reloading the run page only observes: same run, the same log, and no second run.
    await page.reload()
    await page.waitForFunction((sel) => document.querySelector(sel)?.dataset.status === 'succeeded', byTestId('run-status'), { timeout: 15_000 })
    await page.waitForFunction(([sel, n]) => document.querySelectorAll(sel).length >= n, [LOG_LINES, want.length], { timeout: 10_000 })
    await page.waitForTimeout(1000) // a page that deploys on load would have done it by now
    assert.deepEqual(await shownLog(page), want, 'after a reload the log differs from the stored one')
    assert.deepEqual(await newRuns(), [runId], 'reloading the run page started another run')
    assert.deepEqual(problems, [])
  } finally {
    await context.close()
  }
})

test('an invalid token sends the browser back to the login page, and signing in returns to where it was', { skip }, async () => {
  const { context, page, problems } = await newPage(browser)
  try {
    await login(page, env)
    await page.waitForURL((u) => u.pathname === '/projects', { timeout: 15_000 })
    await page.click(byTestId('nav-servers'))
    await page.waitForSelector(byTestId('servers-table'))

    // Both tokens of the login are bad: an access token alone would be refreshed silently.
    await page.evaluate(() => sessionStorage.setItem('fabu.token', 'garbage-not-a-fabu-token'))
    await context.addCookies([{ name: REFRESH_COOKIE, value: 'garbage-not-a-refresh-token', domain: new URL(env.url).hostname,
      path: '/api/v1/auth/refresh', httpOnly: true, sameSite: 'Strict' }])
    await page.reload()
    await page.waitForURL((u) => u.pathname === '/login', { timeout: 15_000 })
    assert.equal(new URL(page.url()).searchParams.get('redirect'), '/servers')
    assert.equal(await accessToken(page), null, 'the rejected token was kept')
    await screenshot(page, 'spa-bad-token')

    await page.fill(byTestId('login-username'), env.user)
    await page.fill(byTestId('login-password'), env.password)
    await page.click(byTestId('login-submit'))
    await page.waitForURL((u) => u.pathname === '/servers', { timeout: 15_000 })
    assert.deepEqual(unexpected(problems), [])
    assert.deepEqual(pageErrors(problems), [])
  } finally {
    await context.close()
  }
})
