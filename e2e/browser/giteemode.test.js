// Checks the Gitee hook mode on the project page in Chromium, through to the webhook
// service: a Gitee project shows the mode choice (other platforms do not); choosing password
// mode with a new secret and saving stores it; then a Gitee test delivery carrying the
// password is answered and one carrying a signature is refused, and after switching back to
// signature mode it is the other way round. Needs FABU_URL, FABU_USER and FABU_PASSWORD; run
// by the Go test TestBrowserDeploy. The test creates its own project and deletes it
// afterwards.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { createHmac, randomBytes } from 'node:crypto'
import { launch, newPage, screenshot, byTestId, fabuEnv, login, apiToken, apiGet, apiSend } from './chromium.js'

const env = fabuEnv('giteemode.test.js')
const { skip } = env
const SECRET = randomBytes(18).toString('base64url')

let browser
let token
let project

const api = (method, path, body) => apiSend(env, token, method, path, body)

// ping sends a Gitee test delivery whose X-Gitee-Token is the password itself or the
// signature of a fresh timestamp, and returns the status and the verdict.
async function ping(how) {
  const ts = String(Date.now())
  const tokenHeader = how === 'password' ? SECRET : createHmac('sha256', SECRET).update(`${ts}\n${SECRET}`).digest('base64')
  const res = await fetch(env.at(`/hooks/gitee/${encodeURIComponent(project.name)}`), {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', 'X-Gitee-Event': 'push_hooks', 'X-Gitee-Ping': 'true', 'X-Gitee-Timestamp': ts, 'X-Gitee-Token': tokenHeader },
    body: JSON.stringify({ hook_name: 'push_hooks', timestamp: ts }),
  })
  const body = await res.json()
  return { status: res.status, verdict: body.verdict }
}

before(async () => {
  if (skip) return
  browser = await launch()
  token = await apiToken(env)
  const created = await api('POST', '/projects', {
    name: `browser-gitee-${Date.now().toString(36)}`, git_url: 'https://gitee.com/team/site.git', type: 'static',
    branch: 'main', deploy_path: '/srv/browser-gitee', server_ids: [],
  })
  assert.equal(created.status, 201, created.text)
  project = created.json
})

after(async () => {
  try {
    if (project) await api('DELETE', `/projects/${encodeURIComponent(project.id)}`)
  } finally {
    if (browser) await browser.close()
  }
})

test('the Gitee hook mode chosen on the project page is the only one the webhook service accepts', { skip }, async () => {
  const { context, page, problems } = await newPage(browser)
  const pid = encodeURIComponent(project.id)
  try {
    await login(page, env)
    await page.waitForURL((u) => u.pathname === '/projects', { timeout: 15_000 })
    await page.goto(env.at(`/projects/${project.id}`))
    await page.waitForSelector(byTestId('triggers-save'))
    assert.equal(await page.isVisible(byTestId('triggers-mode')), false, 'a GitLab project offers a Gitee hook mode')

    await page.click(byTestId('triggers-platform-gitee'))
    await page.waitForSelector(byTestId('triggers-mode'))
    assert.ok(await page.isChecked(`${byTestId('triggers-mode-signature')} input`), 'signature is not the default mode')
    await page.click(byTestId('triggers-mode-password'))
    assert.match(await page.innerText(byTestId('triggers')), /Weaker/)
    await page.fill(byTestId('triggers-secret'), SECRET)
    await screenshot(page, 'triggers-gitee-password')
    await page.click(byTestId('triggers-save'))
    await page.waitForSelector('.el-message--success', { timeout: 15_000 })

    let now = await apiGet(env, token, `/projects/${pid}`)
    assert.equal(now.platform, 'gitee')
    assert.equal(now.webhook_mode, 'password')
    assert.equal(now.has_webhook_secret, true)
    assert.deepEqual(await ping('password'), { status: 200, verdict: 'ignored' })
    assert.equal((await ping('signature')).status, 401, 'a password-mode project accepted a signature')

    // Back to signature mode: now only a signature is accepted.
    await page.click(byTestId('triggers-mode-signature'))
    await page.click(byTestId('triggers-save'))
    await page.waitForFunction(() => document.querySelectorAll('.el-message--success').length >= 1)
    await page.waitForFunction(
      async ([url, tok]) => (await (await fetch(url, { headers: { Authorization: `Bearer ${tok}` } })).json()).webhook_mode === 'signature',
      [env.at(`/api/v1/projects/${pid}`), token],
      { timeout: 15_000 },
    )
    now = await apiGet(env, token, `/projects/${pid}`)
    assert.equal(now.webhook_mode, 'signature')
    assert.deepEqual(await ping('signature'), { status: 200, verdict: 'ignored' })
    assert.equal((await ping('password')).status, 401, 'a signature-mode project accepted the password')

    const logged = await apiGet(env, token, `/deliveries?project_id=${pid}`)
    assert.deepEqual(logged.map((d) => d.verdict), ['rejected', 'ignored', 'rejected', 'ignored'], 'the delivery log does not record the four deliveries, newest first')
    assert.deepEqual(problems, [])
  } finally {
    await context.close()
  }
})
