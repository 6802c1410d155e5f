// Sessions and the Content-Security-Policy in Chromium. A login keeps its refresh token only
// in an HttpOnly, SameSite=Strict cookie for the refresh route: no storage the page can read
// holds it, a reload stays signed in, a new tab signs in from the cookie, and signing out
// deletes the cookie and ends the session. Every page — the live log's and the terminal's
// WebSockets included — runs under the gateway's policy without one violation, while an inline
// script is refused.
// Needs FABU_URL, FABU_USER, FABU_PASSWORD (an administrator) and FABU_PROJECT; the terminal
// opens a shell on server "web-1", which TestBrowserDeploy configures.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import {
  launch,
  newPage,
  screenshot,
  byTestId,
  fabuEnv,
  login,
  apiToken,
  apiGet,
  apiDo,
  pageErrors,
  accessToken,
  refreshCookie,
  LOG_LINES,
} from './chromium.js'

const env = fabuEnv('session.test.js')
const { skip } = env
const SERVER = 'web-1'

let browser
let token

before(async () => {
  if (skip) return
  browser = await launch()
  token = await apiToken(env)
})
after(async () => {
  if (browser) await browser.close()
})

// watchCSP records in every page of context the violations of the Content-Security-Policy
// that the browser reports (window.__csp); Chromium also logs each as a console error.
async function watchCSP(context) {
  await context.addInitScript(() => {
    window.__csp = []
    document.addEventListener('securitypolicyviolation', (e) =>
      window.__csp.push(`${e.effectiveDirective} blocked ${e.blockedURI || 'inline'} at ${e.sourceFile}:${e.lineNumber} ${e.sample}`),
    )
  })
}

const violations = (page) => page.evaluate(() => window.__csp || [])
const cspErrors = (problems) => problems.filter((p) => /Content Security Policy/i.test(p))

test('the refresh token stays in an HttpOnly cookie; a reload and a new tab stay signed in; signing out ends it', { skip }, async () => {
  const { context, page, problems } = await newPage(browser)
  try {
    const answers = []
    context.on('response', async (r) => {
      if (/\/api\/v1\/auth\/(login|refresh)$/.test(new URL(r.url()).pathname)) answers.push(await r.text().catch(() => ''))
    })
    await login(page, env)
    await page.waitForURL((u) => u.pathname === '/projects', { timeout: 15_000 })

    const cookie = await refreshCookie(context)
    assert.ok(cookie, 'login set no refresh cookie')
    assert.equal(cookie.httpOnly, true, 'the refresh cookie is readable by scripts')
    assert.equal(cookie.sameSite, 'Strict')
    assert.equal(cookie.path, '/api/v1/auth/refresh')
    const stored = await page.evaluate(() => ({ local: { ...localStorage }, session: { ...sessionStorage }, cookies: document.cookie }))
    assert.equal(stored.local['fabu.refresh'], undefined, 'localStorage holds a refresh token')
    assert.equal(stored.local['fabu.token'], undefined, 'localStorage holds the access token')
    assert.ok(stored.session['fabu.token'], 'no access token in sessionStorage')
    assert.ok(!JSON.stringify(stored).includes(cookie.value), `the page can read the refresh token: ${JSON.stringify(stored)}`)
    assert.ok(!answers.some((a) => a.includes(cookie.value) || a.includes('refresh_token')), 'an answer to the page carries the refresh token')

    // A reload keeps the session; the access token of the tab is still good, so no refresh.
    await page.goto(env.at('/servers'))
    await page.waitForSelector(byTestId('servers-table'), { timeout: 15_000 })
    const refreshes = []
    context.on('request', (r) => r.url().endsWith('/api/v1/auth/refresh') && refreshes.push(r.url()))
    await page.reload()
    await page.waitForSelector(byTestId('servers-table'), { timeout: 15_000 })
    assert.equal(new URL(page.url()).pathname, '/servers')
    assert.equal(refreshes.length, 0, 'a reload refreshed the session')

    // A new tab has no access token: it gets one from the cookie, which rotates.
    const tab = await context.newPage()
    await tab.goto(env.at('/servers'))
    await tab.waitForSelector(byTestId('servers-table'), { timeout: 15_000 })
    assert.equal(new URL(tab.url()).pathname, '/servers', 'a new tab was sent to sign in')
    assert.equal(refreshes.length, 1, 'the new tab did not refresh from the cookie exactly once')
    assert.ok(await accessToken(tab))
    const rotated = await refreshCookie(context)
    assert.ok(rotated && rotated.value !== cookie.value, 'the refresh cookie was not rotated')
    assert.ok(!answers.some((a) => a.includes(rotated.value) || a.includes('refresh_token')), 'the refresh answer carries the refresh token')
    await screenshot(tab, 'session-new-tab')

    // Signing out deletes the cookie and ends the session on the server: the rotated refresh
    // token is refused, and so is the first tab's access token.
    await tab.click(byTestId('user-menu-button'))
    await tab.click(byTestId('logout'))
    await tab.waitForURL((u) => u.pathname === '/login', { timeout: 15_000 })
    assert.equal(await refreshCookie(context), undefined, 'signing out kept the refresh cookie')
    const res = await fetch(env.at('/api/v1/auth/refresh'), {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ refresh_token: rotated.value }),
    })
    assert.equal(res.status, 401, 'the session outlived signing out')
    await page.reload()
    await page.waitForURL((u) => u.pathname === '/login', { timeout: 15_000 })
    assert.deepEqual(pageErrors(problems), [])
  } finally {
    await context.close()
  }
})

test('every page runs under the Content-Security-Policy without a violation, live log and terminal included', { skip, timeout: 180_000 }, async () => {
  const { context, page, problems } = await newPage(browser)
  await watchCSP(context)
  const sockets = []
  page.on('websocket', (ws) => {
    const s = { path: new URL(ws.url()).pathname, frames: 0 }
    sockets.push(s)
    ws.on('framereceived', () => s.frames++)
  })
  const seen = []
  const check = async (what) => {
    await page.waitForLoadState('networkidle').catch(() => {})
    for (const v of await violations(page)) seen.push(`${what}: ${v}`)
  }
  try {
    const res = await page.goto(env.at('/login'))
    const h = res.headers()
    assert.match(h['content-security-policy'] || '', /(^|;\s*)script-src 'self'(;|$)/, `CSP: ${h['content-security-policy']}`)
    assert.match(h['content-security-policy'], /frame-ancestors 'none'/)
    assert.equal(h['x-content-type-options'], 'nosniff')
    assert.equal(h['x-frame-options'], 'DENY')
    assert.equal(h['referrer-policy'], 'same-origin')

    // The policy is enforced, and its violations are seen: an inline script does not run.
    const ran = await page.evaluate(async () => {
      const s = document.createElement('script')
      s.textContent = 'window.__inline = 1'
      document.head.append(s)
      await new Promise((r) => setTimeout(r, 100))
      return window.__inline === 1
    })
    assert.equal(ran, false, 'an inline script ran')
    assert.ok((await violations(page)).some((v) => v.startsWith('script-src')), 'the inline script was refused without a report')
    problems.length = 0

    await login(page, env)
    await page.waitForURL((u) => u.pathname === '/projects', { timeout: 15_000 })
    await check('/login')
    const project = (await apiGet(env, token, '/projects')).find((p) => p.name === env.project)
    assert.ok(project, `no project ${env.project}`)
    const pages = ['/projects', `/projects/${project.id}`, '/servers', '/tickets', '/deliveries', '/connections', '/audit', '/users', '/account']
    for (const p of pages) {
      await page.goto(env.at(p))
      await check(p)
      assert.equal(new URL(page.url()).pathname, p, `${p} sent the browser elsewhere`)
    }

    // The live log: a run's page follows it over the WebSocket.
    const run = await apiDo(env, token, 'POST', `/projects/${encodeURIComponent(project.id)}/runs`, {})
    await page.goto(env.at(`/runs/${run.id}`))
    await page.waitForFunction((sel) => document.querySelectorAll(sel).length > 0, LOG_LINES, { timeout: 60_000 })
    await page.waitForFunction(
      (sel) => ['succeeded', 'failed', 'cancelled'].includes(document.querySelector(sel)?.dataset.status),
      byTestId('run-status'),
      { timeout: 90_000 },
    )
    await check(`/runs/${run.id}`)
    const logSocket = sockets.find((s) => s.path.endsWith('/logs/ws'))
    assert.ok(logSocket && logSocket.frames > 0, `the live log's WebSocket got nothing: ${JSON.stringify(sockets)}`)

    // The terminal: xterm.js draws a shell on the server over its WebSocket.
    await page.goto(env.at('/servers'))
    await page.click(byTestId(`server-terminal-${SERVER}`), { timeout: 15_000 })
    await page.waitForFunction((sel) => document.querySelector(sel)?.textContent.trim() === 'connected', byTestId('terminal-state'), {
      timeout: 15_000,
    })
    await page.keyboard.type('echo "CSP-$((6*7))"\n')
    await page.waitForFunction(
      (sel) => (document.querySelector(sel)?.innerText || '').includes('CSP-42'),
      `${byTestId('terminal-screen')} .xterm-rows`,
      { timeout: 15_000 },
    )
    await check('terminal')
    await screenshot(page, 'session-csp-terminal')
    const termSocket = sockets.find((s) => s.path.endsWith('/terminal'))
    assert.ok(termSocket && termSocket.frames > 0, `the terminal's WebSocket got nothing: ${JSON.stringify(sockets)}`)
    await page.keyboard.type('exit\n')

    assert.deepEqual(seen, [], 'Content-Security-Policy violations')
    assert.deepEqual(cspErrors(problems), [])
    assert.deepEqual(pageErrors(problems), [])
  } finally {
    await context.close()
  }
})
