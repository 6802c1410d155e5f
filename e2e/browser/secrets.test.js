// Checks build secrets and the artifact manifest against a running fabu in Chromium: a
// secret set on the project page is listed by name and never shown again (the value field
// is empty after saving and after a reload, and the value is nowhere in the page or the
// API's answers); a deploy whose stage declares it and prints it shows **** in the run log,
// never the value, and the run page shows the artifact's manifest with its files; deleting
// the secret from the page removes it. Needs FABU_URL, FABU_USER, FABU_PASSWORD and
// FABU_PROJECT (a deployable project); run by the Go test TestBrowserDeploy. The project's
// pipeline is restored and the secret deleted afterwards.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { launch, newPage, screenshot, byTestId, fabuEnv, login, apiToken, apiGet, apiSend } from './chromium.js'

const env = fabuEnv('secrets.test.js')
const { skip } = env

const NAME = 'E2E_BROWSER_TOKEN'
const VALUE = `e2e-secret-${Math.random().toString(36).slice(2)}-value`

let browser
let token
let original

const api = (method, path, body) => apiSend(env, token, method, path, body)

before(async () => {
  if (skip) return
  browser = await launch()
  token = await apiToken(env)
  const listed = (await apiGet(env, token, '/projects')).find((p) => p.name === env.project)
  assert.ok(listed, `fabu has no project named ${env.project}`)
  original = await apiGet(env, token, `/projects/${encodeURIComponent(listed.id)}`)
})

after(async () => {
  try {
    if (original) {
      await api('PUT', `/projects/${encodeURIComponent(original.id)}`, { ...original, pipeline: original.pipeline ?? null })
      await api('DELETE', `/projects/${encodeURIComponent(original.id)}/secrets/${NAME}`)
    }
  } finally {
    if (browser) await browser.close()
  }
})

test('a secret is set write-only, masked in the run log, and the run page shows the manifest', { skip }, async () => {
  const { context, page, problems } = await newPage(browser)
  const pid = encodeURIComponent(original.id)
  try {
    await login(page, env)
    await page.waitForURL((u) => u.pathname === '/projects', { timeout: 15_000 })
    await page.goto(env.at(`/projects/${original.id}`))
    await page.waitForSelector(byTestId('secret-save'))

    await page.fill(byTestId('secret-name-input'), NAME)
    await page.fill(byTestId('secret-value-input'), VALUE)
    await page.click(byTestId('secret-save'))
    await page.waitForSelector(`${byTestId('secret-name')}:text("${NAME}")`)
    assert.equal(await page.inputValue(byTestId('secret-value-input')), '', 'the value field is emptied after saving')
    assert.ok(!(await page.content()).includes(VALUE), 'the page holds the value after saving')

    await page.reload()
    await page.waitForSelector(`${byTestId('secret-name')}:text("${NAME}")`)
    // Replace puts only the name in the form; the value is never filled in.
    await page.click(byTestId(`secret-replace-${NAME}`))
    assert.equal(await page.inputValue(byTestId('secret-name-input')), NAME)
    assert.equal(await page.inputValue(byTestId('secret-value-input')), '')
    assert.ok(!(await page.content()).includes(VALUE), 'the page holds the value after a reload')

    const list = await api('GET', `/projects/${pid}/secrets`)
    assert.equal(list.status, 200)
    assert.ok(list.json.secrets.some((s) => s.name === NAME && s.updated_by === env.user), list.text)
    assert.ok(!list.text.includes(VALUE), 'the list answers the value')

    // A stage that declares the secret and prints it.
    const pipeline = { stages: [{ name: 'show-secret', run: ['printenv', NAME], secrets: [NAME] }] }
    const put = await api('PUT', `/projects/${pid}`, { ...original, pipeline })
    assert.equal(put.status, 200, put.text)
    const started = await api('POST', `/projects/${pid}/runs`, { ref: original.branch })
    assert.equal(started.status, 201, started.text)
    const id = started.json.id
    await page.goto(env.at(`/runs/${id}`))
    await page.waitForSelector(`${byTestId('run-status')}:has-text("succeeded")`, { timeout: 120_000 })
    await page.waitForSelector(`${byTestId('log-line')}:has-text("****")`, { timeout: 15_000 })
    const logText = await page.innerText(byTestId('run-log'))
    assert.ok(!logText.includes(VALUE), 'the run log shows the value')
    const logs = await api('GET', `/runs/${id}/logs?limit=5000`)
    assert.ok(logs.text.includes('****') && !logs.text.includes(VALUE), 'the stored log is not masked')
    const run = await api('GET', `/runs/${id}`)
    assert.ok(!run.text.includes(VALUE), 'the run answers the value')

    // The manifest of the artifact, on the page and in the API.
    await page.waitForSelector(byTestId('artifact-manifest'))
    assert.equal(await page.innerText(byTestId('manifest-name')), `${id}.tar.gz`)
    const manifest = await api('GET', `/runs/${id}/artifact`)
    assert.equal(manifest.status, 200, manifest.text)
    assert.equal(manifest.json.run_id, id)
    assert.match(manifest.json.artifact.sha256, /^[0-9a-f]{64}$/)
    assert.ok(manifest.json.artifact.sha256.startsWith(await page.innerText(byTestId('manifest-sha256'))), 'the page shows another sha256')
    await page.click(byTestId('manifest-toggle'))
    const shown = await page.$$eval(byTestId('manifest-file'), (els) => els.map((e) => e.textContent))
    assert.deepEqual(shown, manifest.json.files.map((f) => f.path))
    assert.ok(shown.length > 0, 'the manifest lists no files')
    await screenshot(page, 'secrets-run')

    // Deleting from the page.
    await page.goto(env.at(`/projects/${original.id}`))
    await page.click(byTestId(`secret-delete-${NAME}`))
    await page.click('.el-message-box .el-button--primary')
    await page.waitForFunction((n) => ![...document.querySelectorAll('[data-testid="secret-name"]')].some((e) => e.textContent === n), NAME)
    const after = await api('GET', `/projects/${pid}/secrets`)
    assert.ok(!after.json.secrets.some((s) => s.name === NAME), after.text)
    assert.deepEqual(problems, [])
  } catch (err) {
    await screenshot(page, 'secrets-failure').catch(() => {})
    throw err
  } finally {
    await context.close()
  }
})
