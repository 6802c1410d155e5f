// "Sign in with GitLab" through a stand-in GitLab (its Authorize page, real id_tokens):
// refused while no user has linked the account, linked from the Account page, then signing in
// lands on the page asked for with no token in any URL; unlinking from the Account page.
// Run by TestBrowserOAuth (e2e/oauth_browser_test.go), which starts fabu with the providers.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { byTestId, fabuEnv, launch, login, newPage, pageErrors, screenshot, accessToken, refreshCookie } from './chromium.js'

const env = fabuEnv('oauth.test.js')
const gitlabLogin = process.env.FABU_OAUTH_GITLAB_LOGIN
const skip = env.skip || (!gitlabLogin && 'needs FABU_OAUTH_GITLAB_LOGIN: fabu with a stand-in GitLab, as TestBrowserOAuth starts it')

// authorizeAtGitLab presses Authorize on the provider's page the SPA sent the browser to.
async function authorizeAtGitLab(page) {
  await page.waitForSelector(byTestId('fake-authorize'))
  assert.equal((await page.textContent(byTestId('fake-user'))).trim(), gitlabLogin)
  await page.click(byTestId('fake-authorize'))
}

test('sign in with GitLab: refused until linked, linked on the Account page, signed in, unlinked', { skip }, async () => {
  const browser = await launch()
  try {
    const { context, page, problems } = await newPage(browser)
    const urls = []
    page.on('request', (r) => urls.push(r.url()))
    page.on('response', (r) => {
      const loc = r.headers().location
      if (loc) urls.push(loc)
    })

    await page.goto(env.at('/login'))
    await page.waitForSelector(byTestId('oauth-gitlab'))
    assert.match(await page.textContent(byTestId('oauth-gitlab')), /Sign in with GitLab/)
    assert.ok(await page.$(byTestId('oauth-github')), 'the GitHub button is missing')

    // No fabu user has linked this GitLab account: refused, with the reason; no session.
    await page.click(byTestId('oauth-gitlab'))
    await authorizeAtGitLab(page)
    await page.waitForSelector(byTestId('login-error'))
    assert.match(await page.textContent(byTestId('login-error')), /no fabu user has linked this account/)
    assert.equal(new URL(page.url()).hash, '', 'the fragment stays in the address bar')
    assert.equal(await accessToken(page), null)
    assert.equal(await refreshCookie(context), undefined)

    // Sign in with the password and link the account on the Account page.
    await login(page, env)
    await page.waitForURL(/\/projects/)
    await page.goto(env.at('/account'))
    await page.click(byTestId('identity-link-gitlab'))
    await page.waitForSelector(byTestId('fake-authorize'))
    // While the browser is at the provider, the flow's cookie holds only a handle, HttpOnly,
    // for the sign-in endpoints only.
    const flow = (await context.cookies()).find((c) => c.name === 'fabu_oauth')
    assert.ok(flow, 'no flow cookie')
    assert.equal(flow.httpOnly, true)
    assert.equal(flow.sameSite, 'Lax')
    assert.equal(flow.path, '/api/v1/auth/oauth')
    await authorizeAtGitLab(page)
    await page.waitForSelector(byTestId('identity-login-gitlab'))
    assert.equal((await page.textContent(byTestId('identity-login-gitlab'))).trim(), gitlabLogin)
    assert.match(page.url(), /\/account$/)
    await screenshot(page, 'oauth-linked')

    // Signed out (which deletes the refresh cookie), sign in with GitLab from a page that
    // asked for /servers.
    await page.click(byTestId('user-menu-button'))
    await page.click(byTestId('logout'))
    await page.waitForURL(/\/login/)
    assert.equal(await refreshCookie(context), undefined, 'signing out kept the refresh cookie')
    await page.goto(env.at('/login?redirect=/servers'))
    await page.click(byTestId('oauth-gitlab'))
    await authorizeAtGitLab(page)
    await page.waitForURL(/\/servers$/)
    const user = JSON.parse(await page.evaluate(() => localStorage.getItem('fabu.user')))
    assert.equal(user.username, env.user)
    const access = await accessToken(page)
    const cookie = await refreshCookie(context)
    const refresh = cookie?.value
    assert.ok(access && refresh, 'no session stored')
    assert.equal(cookie.httpOnly, true)
    assert.equal(cookie.sameSite, 'Strict')
    assert.equal(await page.evaluate(() => localStorage.getItem('fabu.refresh')), null)
    for (const u of urls) {
      assert.ok(!u.includes(access) && !u.includes(refresh), `a URL carries a token: ${u}`)
      assert.ok(!/[?&#](access_token|refresh_token|token)=/.test(u), `a URL names a token: ${u}`)
    }
    assert.ok(!(await context.cookies()).some((c) => c.name === 'fabu_oauth'), 'the flow cookie outlived the sign-in')

    // Unlink it on the Account page.
    await page.goto(env.at('/account'))
    await page.click(byTestId('identity-unlink-gitlab'))
    await page.click('.el-message-box__btns .el-button--primary')
    await page.waitForSelector(byTestId('identity-link-gitlab'))
    assert.equal(await page.$(byTestId('identity-login-gitlab')), null)
    assert.deepEqual(pageErrors(problems), [])
  } finally {
    await browser.close()
  }
})
