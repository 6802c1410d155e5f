// Launches Debian's Chromium through playwright-core; no browser is ever downloaded.
import { chromium } from 'playwright-core'
import { mkdirSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

export const OUT_DIR = join(dirname(fileURLToPath(import.meta.url)), 'out')

export async function launch() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  })
}

export async function newPage(browser) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, locale: 'en-US' })
  const page = await context.newPage()
  const problems = []
  page.on('pageerror', (err) => problems.push(`page error: ${err.message}`))
  page.on('console', (msg) => {
    if (msg.type() === 'error') problems.push(`console error: ${msg.text()}`)
  })
  return { context, page, problems }
}

export async function screenshot(page, name) {
  mkdirSync(OUT_DIR, { recursive: true })
  const path = join(OUT_DIR, `${name}.png`)
  await page.screenshot({ path, fullPage: true })
  return path
}

export const byTestId = (id) => `[data-testid="${id}"]`

export const LOG_LINES = `${byTestId('run-log')} ${byTestId('log-line')}`

// fabuEnv reads the running fabu to test against from FABU_URL, FABU_USER, FABU_PASSWORD and
// FABU_PROJECT. A missing one fails the file unless FABU_SKIP_MISSING=1, when its tests are
// skipped instead; `skip` is what to hand node:test.
export function fabuEnv(file) {
  const env = {
    url: process.env.FABU_URL,
    user: process.env.FABU_USER,
    password: process.env.FABU_PASSWORD,
    project: process.env.FABU_PROJECT,
  }
  const missing = Object.entries({ FABU_URL: env.url, FABU_USER: env.user, FABU_PASSWORD: env.password, FABU_PROJECT: env.project })
    .filter(([, v]) => !v)
    .map(([k]) => k)
  if (missing.length && process.env.FABU_SKIP_MISSING !== '1') {
    throw new Error(`${file} needs ${missing.join(', ')} (a running fabu); the Go test TestBrowserDeploy sets them`)
  }
  env.skip = missing.length ? `needs ${missing.join(', ')} (a running fabu)` : false
  env.at = (path) => new URL(path, env.url).href
  return env
}

// login fills in and submits the SPA's login form.
export async function login(page, env, password = env.password) {
  await page.goto(env.at('/login'))
  await page.waitForSelector(byTestId('login-username'))
  await page.fill(byTestId('login-username'), env.user)
  await page.fill(byTestId('login-password'), password)
  await page.click(byTestId('login-submit'))
}

// apiToken signs in through the API itself (POST /api/v1/auth/login), outside the browser.
export async function apiToken(env) {
  const res = await fetch(env.at('/api/v1/auth/login'), {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ username: env.user, password: env.password }),
  })
  if (res.status !== 200) throw new Error(`POST /api/v1/auth/login = ${res.status} ${await res.text()}`)
  return (await res.json()).token
}

// apiGet reads path from fabu's API with token and returns the decoded answer.
export async function apiGet(env, token, path) {
  const res = await fetch(env.at(`/api/v1${path}`), { headers: { Authorization: `Bearer ${token}` } })
  const text = await res.text()
  if (res.status !== 200) throw new Error(`GET /api/v1${path} = ${res.status} ${text}`)
  return JSON.parse(text)
}

// apiSend sends method path (with an optional JSON body) to fabu's API with token and returns
// the status, the text and, for a JSON answer, its decoded value.
export async function apiSend(env, token, method, path, body) {
  const res = await fetch(env.at(`/api/v1${path}`), {
    method,
    headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  })
  const text = await res.text()
  return { status: res.status, text, json: text && res.headers.get('content-type')?.includes('json') ? JSON.parse(text) : null }
}

// apiDo is apiSend for calls that must succeed: it throws on any status from 300 up and
// returns the decoded answer (null for an empty one).
export async function apiDo(env, token, method, path, body) {
  const r = await apiSend(env, token, method, path, body)
  if (r.status >= 300) throw new Error(`${method} /api/v1${path} = ${r.status} ${r.text}`)
  return r.text ? JSON.parse(r.text) : null
}

// shownLog is the run log on screen: each line's number, text and whether it is tinted as stderr.
export async function shownLog(page) {
  return page.$$eval(LOG_LINES, (els) =>
    els.map((e) => ({ n: Number(e.dataset.n), text: e.querySelector('.tx')?.textContent ?? '', err: e.classList.contains('err') })),
  )
}

// pageErrors keeps the uncaught exceptions among what newPage collected.
export const pageErrors = (problems) => problems.filter((p) => p.startsWith('page error'))

// REFRESH_COOKIE is the HttpOnly cookie in which the browser keeps a login's refresh token
// (services/auth/cookie.go); the page's scripts never see it.
export const REFRESH_COOKIE = 'fabu_refresh'

// refreshCookie is the refresh cookie the browser context holds, or undefined.
export async function refreshCookie(context) {
  return (await context.cookies()).find((c) => c.name === REFRESH_COOKIE)
}

// accessToken is the access token the page keeps (sessionStorage `fabu.token`), or null.
export const accessToken = (page) => page.evaluate(() => sessionStorage.getItem('fabu.token'))
