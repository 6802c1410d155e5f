// The account page and the session behind the SPA, in Chromium against a running fabu: an API
// token created in the UI works for the API until it is revoked in the UI; an expired access
// token is refreshed silently (one refresh for the page's parallel calls), while reusing a
// refresh token revokes the login and sends the browser to login; changing the password
// (server-side strength errors shown) and back; a locked-out user name gets the lockout message
// with the minutes to wait. Needs FABU_URL, FABU_USER, FABU_PASSWORD and FABU_PROJECT; run by
// the Go test TestBrowserDeploy. The refresh logic itself is unit-tested in web/src/api.test.js.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { launch, newPage, screenshot, byTestId, fabuEnv, login, pageErrors, accessToken, refreshCookie } from './chromium.js'

const env = fabuEnv('account.test.js')
const { skip } = env

// Refused logins and tokens show up in the console as failed requests; that is expected here.
const unexpected = (problems) => problems.filter((p) => !/status of (401|429|400|422)/.test(p))

let browser
before(async () => {
  if (skip) return
  browser = await launch()
})
after(async () => {
  if (browser) await browser.close()
})

async function apiStatus(path, token, init = {}) {
  const res = await fetch(env.at(`/api/v1${path}`), {
    ...init,
    headers: { ...(token ? { Authorization: `Bearer ${token}` } : {}), ...(init.body ? { 'Content-Type': 'application/json' } : {}) },
  })
  const text = await res.text()
  return { status: res.status, body: text ? JSON.parse(text) : null, headers: res.headers }
}

const apiLogin = (username, password) => apiStatus('/auth/login', '', { method: 'POST', body: JSON.stringify({ username, password }) })

async function signIn(page) {
  await login(page, env)
  await page.waitForURL((u) => u.pathname === '/projects', { timeout: 15_000 })
  await page.waitForSelector(byTestId(`project-row-${env.project}`), { timeout: 15_000 })
}

async function openAccount(page) {
  await page.click(byTestId('user-menu-button'))
  await page.click(byTestId('nav-account'))
  await page.waitForURL((u) => u.pathname === '/account', { timeout: 15_000 })
  await page.waitForSelector(byTestId('api-tokens-table'))
}

// expiredJWT is the access token with its exp moved an hour into the past (its signature no
// longer matches, as for any tampered token).
function expiredJWT(token) {
  const [h, p] = token.split('.')
  const claims = JSON.parse(Buffer.from(p, 'base64url').toString())
  assert.ok(claims.exp, 'the access token is not a JWT with exp')
  claims.exp = Math.floor(Date.now() / 1000) - 3600
  return `${h}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}.${'A'.repeat(86)}`
}

test('an API token created on the account page works for the API until it is revoked there', { skip }, async () => {
  const { context, page, problems } = await newPage(browser)
  await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: new URL(env.url).origin })
  try {
    await signIn(page)
    await openAccount(page)

    const name = `browser-ci-${Date.now()}`
    await page.click(byTestId('new-api-token'))
    await page.waitForSelector(byTestId('api-token-form'))
    await page.fill(byTestId('api-token-name'), name)
    await page.click(`${byTestId('api-token-scope-deploy')}`)
    await page.click(byTestId('api-token-create'))

    await page.waitForSelector(byTestId('api-token-value'), { timeout: 15_000 })
    const secret = await page.inputValue(byTestId('api-token-value'))
    assert.match(secret, /^\S{20,}$/, 'the new token is not shown')
    await page.click(byTestId('api-token-copy'))
    assert.equal(await page.evaluate(() => navigator.clipboard.readText()), secret, 'copy put something else on the clipboard')
    await page.waitForSelector(byTestId(`api-token-row-${name}`))
    const row = page.locator('tr', { has: page.locator(byTestId(`api-token-row-${name}`)) })
    assert.deepEqual(await row.locator('[data-scope]').evaluateAll((els) => els.map((e) => e.dataset.scope)), ['read', 'deploy'])
    assert.equal((await page.innerText(byTestId(`api-token-used-${name}`))).trim(), 'never')
    await screenshot(page, 'account-token-created')

    // The token works for the API, as a script would use it.
    const projects = await apiStatus('/projects', secret)
    assert.equal(projects.status, 200, `GET /projects with the new token = ${projects.status}`)
    assert.ok(projects.body.some((p) => p.name === env.project), 'the token does not see the project')

    // Shown once: after Done and a reload the page no longer holds it, but it lists its use.
    await page.click(byTestId('api-token-done'))
    await page.reload()
    await page.waitForSelector(byTestId(`api-token-row-${name}`))
    assert.equal(await page.locator(byTestId('api-token-value')).count(), 0)
    assert.ok(!(await page.content()).includes(secret), 'the token is shown again after a reload')
    assert.notEqual((await page.innerText(byTestId(`api-token-used-${name}`))).trim(), 'never', 'its use is not listed')

    // Revoking asks first; Cancel keeps the token.
    await page.click(byTestId(`api-token-revoke-${name}`))
    await page.waitForSelector('.el-message-box')
    await page.click('.el-message-box__btns button:not(.el-button--primary)')
    await page.waitForSelector('.el-message-box', { state: 'detached' })
    assert.equal((await apiStatus('/projects', secret)).status, 200, 'cancelling the confirmation revoked the token')

    await page.click(byTestId(`api-token-revoke-${name}`))
    await page.waitForSelector('.el-message-box')
    await page.click('.el-message-box__btns .el-button--primary')
    await page.waitForSelector(byTestId(`api-token-row-${name}`), { state: 'detached', timeout: 15_000 })
    assert.equal((await apiStatus('/projects', secret)).status, 401, 'the revoked token still works')
    assert.deepEqual(unexpected(problems), [])
    assert.deepEqual(pageErrors(problems), [])
  } finally {
    await context.close()
  }
})

test('an expired access token is refreshed silently; reusing an old refresh token ends the login', { skip }, async () => {
  const { context, page, problems } = await newPage(browser)
  try {
    await signIn(page)
    const tokens = async () => ({ access: await accessToken(page), refresh: (await refreshCookie(context))?.value })
    const first = await tokens()
    assert.ok(first.access && first.refresh, 'login did not keep both an access token and a refresh cookie')

    const bad = expiredJWT(first.access)
    await page.evaluate((t) => sessionStorage.setItem('fabu.token', t), bad)
    assert.equal((await apiStatus('/projects', bad)).status, 401, 'fabu accepts the expired token')

    const refreshes = []
    const visited = []
    page.on('request', (r) => r.url().endsWith('/api/v1/auth/refresh') && refreshes.push(r.url()))
    page.on('framenavigated', (f) => f === page.mainFrame() && visited.push(new URL(f.url()).pathname))
    await page.reload()
    await page.waitForSelector(byTestId(`project-row-${env.project}`), { timeout: 15_000 })
    assert.equal(new URL(page.url()).pathname, '/projects')
    assert.ok(!visited.includes('/login'), `the browser went through the login page: ${visited.join(' → ')}`)
    assert.equal(refreshes.length, 1, `the page refreshed ${refreshes.length} times`)

    const second = await tokens()
    assert.notEqual(second.access, bad)
    assert.notEqual(second.refresh, first.refresh, 'the refresh token was not rotated')
    assert.equal((await apiStatus('/projects', second.access)).status, 200, 'the refreshed access token does not work')

    // Other pages keep working with the refreshed session.
    await page.click(byTestId('nav-servers'))
    await page.waitForSelector(byTestId('servers-table'))
    await screenshot(page, 'account-refreshed')

    // The old refresh token (the cookie's old value, sent as an API client would) was used
    // already: presenting it again is taken as theft and revokes the whole login, so the SPA's next refresh fails and it asks to sign in again,
    // remembering where it was.
    const reuse = await apiStatus('/auth/refresh', '', { method: 'POST', body: JSON.stringify({ refresh_token: first.refresh }) })
    assert.equal(reuse.status, 401)
    assert.equal((await apiStatus('/projects', second.access)).status, 401, 'the login survived a reused refresh token')
    await page.reload()
    await page.waitForURL((u) => u.pathname === '/login', { timeout: 15_000 })
    assert.equal(new URL(page.url()).searchParams.get('redirect'), '/servers')
    assert.equal(await refreshCookie(context), undefined, 'the revoked refresh cookie was kept')
    assert.equal(await accessToken(page), null, 'the revoked access token was kept')
    assert.deepEqual(unexpected(problems), [])
    assert.deepEqual(pageErrors(problems), [])
  } finally {
    await context.close()
  }
})

test('changing the password on the account page, with the server refusing a weak one, and back', { skip }, async () => {
  const { context, page, problems } = await newPage(browser)
  const changed = `${env.password}-changed-${Date.now() % 100000}`
  let current = env.password
  try {
    await signIn(page)
    await openAccount(page)
    const change = async (old, next, confirm = next) => {
      await page.fill(byTestId('password-old'), old)
      await page.fill(byTestId('password-new'), next)
      await page.fill(byTestId('password-confirm'), confirm)
      await page.click(byTestId('password-submit'))
    }
    const errorText = async () => (await page.waitForSelector(byTestId('password-error'))).innerText()

    await change(env.password, changed, `${changed}x`)
    assert.match(await errorText(), /differ/)

    await change(env.password, 'short1')
    assert.match(await errorText(), /at least 10 characters/, 'the server\'s strength error is not shown')

    await change(`${env.password}-wrong`, changed)
    await page.waitForFunction((sel) => /old password is wrong/.test(document.querySelector(sel)?.innerText || ''), byTestId('password-error'))

    await change(env.password, changed)
    await page.waitForSelector(byTestId('password-error'), { state: 'detached', timeout: 15_000 })
    await page.waitForSelector('.el-message--success')
    current = changed
    assert.equal(await page.inputValue(byTestId('password-old')), '', 'the form kept the passwords')
    assert.equal((await apiLogin(env.user, env.password)).status, 401, 'the old password still signs in')
    assert.equal((await apiLogin(env.user, changed)).status, 200, 'the new password does not sign in')
    await screenshot(page, 'account-password-changed')

    // This session was kept; change it back through the page.
    await change(changed, env.password)
    await page.waitForFunction((sel) => document.querySelector(sel)?.value === '', byTestId('password-old'))
    assert.equal((await apiLogin(env.user, env.password)).status, 200, 'the password was not restored')
    current = env.password
    assert.deepEqual(unexpected(problems), [])
    assert.deepEqual(pageErrors(problems), [])
  } finally {
    if (current !== env.password) {
      // Restore the password for the tests that follow, whatever failed above.
      const s = await apiLogin(env.user, current)
      if (s.status === 200) {
        await apiStatus('/auth/password', s.body.access_token, { method: 'POST', body: JSON.stringify({ old: current, new: env.password }) })
      }
    }
    await context.close()
  }
})

test('a locked-out user name gets the lockout message with the minutes to wait', { skip }, async () => {
  const { context, page, problems } = await newPage(browser)
  try {
    // Failures count per user name typed, existing or not: lock a name nobody uses.
    const user = `locked-${Date.now()}`
    let locked = null
    for (let i = 0; i < 10 && !locked; i++) {
      const r = await apiLogin(user, 'not-the-password')
      if (r.status === 429) locked = r
      else assert.equal(r.status, 401)
    }
    assert.ok(locked, 'ten wrong passwords did not lock the user name')
    const minutes = Math.ceil(Number(locked.headers.get('retry-after')) / 60)
    assert.ok(minutes >= 1, `Retry-After = ${locked.headers.get('retry-after')}`)

    await page.goto(env.at('/login'))
    await page.fill(byTestId('login-username'), user)
    await page.fill(byTestId('login-password'), 'not-the-password')
    await page.click(byTestId('login-submit'))
    const msg = await (await page.waitForSelector(byTestId('login-error'))).innerText()
    assert.match(msg, new RegExp(`Try again in (${minutes}|${minutes - 1}) minute`), msg)
    assert.equal(new URL(page.url()).pathname, '/login')
    await screenshot(page, 'account-login-locked')
    assert.deepEqual(unexpected(problems), [])
    assert.deepEqual(pageErrors(problems), [])
  } finally {
    await context.close()
  }
})
