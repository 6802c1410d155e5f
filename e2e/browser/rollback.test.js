// One-click rollback in Chromium: two deploys of the project leave two releases on the
// target; from the first run's page, "Roll back to this release" (confirmed) starts a run
// that switches current back to the first release without a build, and the page follows it
// to success. Needs what deploy.test.js needs (FABU_URL, FABU_USER, FABU_PASSWORD,
// FABU_PROJECT); run by TestBrowserDeploy.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { launch, newPage, screenshot, byTestId, fabuEnv, login, apiToken, apiGet, pageErrors, apiDo } from './chromium.js'

const env = fabuEnv('rollback.test.js')
const { skip } = env

const RUN_DEADLINE_MS = 90_000
let browser

before(async () => {
  if (!skip) browser = await launch()
})
after(async () => {
  if (browser) await browser.close()
})

const api = (tok, method, path) => apiDo(env, tok, method, path)

async function deployed(token, projectId) {
  const run = await api(token, 'POST', `/projects/${encodeURIComponent(projectId)}/runs`)
  const deadline = Date.now() + RUN_DEADLINE_MS
  for (;;) {
    const r = await apiGet(env, token, `/runs/${encodeURIComponent(run.id)}`)
    if (['succeeded', 'failed', 'cancelled'].includes(r.status)) {
      assert.equal(r.status, 'succeeded', `deploy ${r.id} ended as ${r.status}: ${r.error}`)
      return r
    }
    assert.ok(Date.now() < deadline, `deploy ${run.id} still ${r.status}`)
    await new Promise((ok) => setTimeout(ok, 300))
  }
}

test('roll back to an earlier release from its run page', { skip, timeout: 3 * RUN_DEADLINE_MS }, async () => {
  const token = await apiToken(env)
  const projects = await apiGet(env, token, '/projects')
  const project = (Array.isArray(projects) ? projects : projects.items).find((p) => p.name === env.project)
  assert.ok(project, `project ${env.project} not found`)
  const first = await deployed(token, project.id)
  const second = await deployed(token, project.id)
  assert.equal(second.release_id, second.id)

  const { context, page, problems } = await newPage(browser)
  try {
    await login(page, env)
    await page.waitForURL((u) => u.pathname.startsWith('/projects'), { timeout: 15_000 })
    await page.goto(env.at(`/runs/${first.id}`))
    await page.waitForFunction((sel) => document.querySelector(sel)?.dataset.status === 'succeeded', byTestId('run-status'), { timeout: 15_000 })
    assert.equal((await page.innerText(byTestId('run-release'))).trim(), first.id)
    assert.equal(await page.$(byTestId('run-cancel')), null, 'a finished run offers Cancel')

    // Dismissing the confirmation starts nothing.
    const before = (await apiGet(env, token, `/runs?project_id=${encodeURIComponent(project.id)}`)).length
    await page.click(byTestId('run-rollback'))
    await page.waitForSelector('.el-message-box')
    await page.click('.el-message-box__btns button:not(.el-button--primary)')
    await page.waitForSelector('.el-message-box', { state: 'detached' })
    assert.equal((await apiGet(env, token, `/runs?project_id=${encodeURIComponent(project.id)}`)).length, before, 'a dismissed rollback started a run')
    assert.equal(new URL(page.url()).pathname, `/runs/${first.id}`)

    await page.click(byTestId('run-rollback'))
    await page.waitForSelector('.el-message-box')
    assert.ok((await page.innerText('.el-message-box')).includes(first.id), 'the confirmation does not name the release')
    await page.click('.el-message-box__btns .el-button--primary')
    await page.waitForURL((u) => /^\/runs\/[^/]+$/.test(u.pathname) && !u.pathname.endsWith(first.id), { timeout: 15_000 })
    const rollbackId = new URL(page.url()).pathname.split('/').pop()
    await page.waitForFunction((sel) => ['succeeded', 'failed', 'cancelled'].includes(document.querySelector(sel)?.dataset.status), byTestId('run-status'), { timeout: RUN_DEADLINE_MS })
    await screenshot(page, 'rollback')
    const status = await page.getAttribute(byTestId('run-status'), 'data-status')
    // The run is final; its last lines may still be on their way over the socket.
    await page.waitForFunction(([sel, want]) => document.querySelector(sel)?.innerText.includes(want), [byTestId('run-log'), 'switched current back'], { timeout: 10_000 }).catch(() => {})
    const log = await page.innerText(byTestId('run-log'))
    assert.equal(status, 'succeeded', `rollback ${rollbackId} ended as ${status}; log:\n${log.slice(-3000)}`)
    await page.waitForFunction((sel) => document.querySelector(sel)?.textContent.trim() !== '', byTestId('run-rollback-of'), { timeout: 10_000 })
    assert.equal((await page.innerText(byTestId('run-rollback-of'))).trim(), first.id)
    assert.ok(log.includes('nothing to build'), `rollback log:\n${log}`)
    assert.ok(log.includes(`switched current back to releases/${first.id}`), `rollback log:\n${log}`)

    const rb = await apiGet(env, token, `/runs/${encodeURIComponent(rollbackId)}`)
    assert.equal(rb.trigger, 'rollback')
    assert.equal(rb.rollback_of, first.id)
    assert.equal(rb.release_id, first.id)
    assert.deepEqual(pageErrors(problems), [])
  } finally {
    await context.close()
  }
})
