// Checks a docker project's container settings on its project page in Chromium: the
// Container card appears only for type docker; ports, variables, health check, user and a
// password saved from the form reach the API, the password is write-only (never in the page
// or the API's answers, the field empty after saving, "set" shown instead); a hostile port is
// refused by the gateway with its message shown and nothing stored. Needs FABU_URL, FABU_USER
// and FABU_PASSWORD; run by the Go test TestBrowserDeploy. The test creates its own docker
// project and deletes it afterwards.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { launch, newPage, screenshot, byTestId, fabuEnv, login, apiToken, apiSend } from './chromium.js'

const env = fabuEnv('docker.test.js')
const { skip } = env
const PASSWORD = `reg-${Math.random().toString(36).slice(2)}-pass`

// field selects a form control whether Element Plus put the test id on it or on its wrapper.
const field = (id, tag) => `${tag}${byTestId(id)}, ${byTestId(id)} ${tag}`

let browser
let token
let project

const api = (method, path, body) => apiSend(env, token, method, path, body)

before(async () => {
  if (skip) return
  browser = await launch()
  token = await apiToken(env)
  const created = await api('POST', '/projects', {
    name: `browser-docker-${Date.now().toString(36)}`, git_url: 'https://gitlab.example.com/web/docker.git', type: 'docker',
    branch: 'main', deploy_path: '/srv/browser-docker', server_ids: [], build_image: 'registry.example.com/web/app',
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

test('container settings are saved from the form, the password stays write-only, a hostile port is refused', { skip }, async () => {
  const { context, page, problems } = await newPage(browser)
  const pid = encodeURIComponent(project.id)
  try {
    await login(page, env)
    await page.waitForURL((u) => u.pathname === '/projects', { timeout: 15_000 })
    await page.goto(env.at(`/projects/${project.id}`))
    await page.waitForSelector(byTestId('docker-save'))

    await page.fill(field('docker-username', 'input'), 'ci-robot')
    await page.fill(field('docker-password', 'input'), PASSWORD)
    await page.fill(field('docker-ports', 'textarea'), '127.0.0.1:8080:80\n9090:90/udp')
    await page.fill(field('docker-env', 'textarea'), 'MODE=production\nGREETING=hello world')
    await page.fill(field('docker-health-path', 'input'), '/healthz')
    await page.fill(field('docker-health-port', 'input'), '8080')
    await page.click(`label:has(${byTestId('docker-insecure')}), label${byTestId('docker-insecure')}`)
    await page.click(byTestId('docker-save'))
    await page.waitForFunction((sel) => document.querySelector(sel)?.value === '', field('docker-password', 'input'))

    const saved = await api('GET', `/projects/${pid}`)
    assert.equal(saved.status, 200)
    const d = saved.json.docker
    assert.deepEqual(d.ports, ['127.0.0.1:8080:80', '9090:90/udp'])
    assert.deepEqual(d.env, { MODE: 'production', GREETING: 'hello world' })
    assert.equal(d.username, 'ci-robot')
    assert.equal(d.health_port, 8080)
    assert.equal(d.health_path, '/healthz')
    assert.equal(d.insecure, true)
    assert.equal(saved.json.has_docker_password, true)
    assert.ok(!saved.text.includes(PASSWORD), 'the API answers the password')
    assert.ok(!(await page.content()).includes(PASSWORD), 'the page holds the password after saving')

    await page.reload()
    await page.waitForSelector(byTestId('docker-save'))
    assert.equal(await page.inputValue(field('docker-password', 'input')), '')
    assert.match(await page.getAttribute(field('docker-password', 'input'), 'placeholder'), /set|已设置/)
    assert.equal(await page.inputValue(field('docker-ports', 'textarea')), '127.0.0.1:8080:80\n9090:90/udp')

    await page.fill(field('docker-ports', 'textarea'), '8080:80; reboot')
    await page.click(byTestId('docker-save'))
    await page.waitForSelector(byTestId('docker-error'))
    assert.match(await page.textContent(byTestId('docker-error')), /docker port/)
    const after = await api('GET', `/projects/${pid}`)
    assert.deepEqual(after.json.docker.ports, ['127.0.0.1:8080:80', '9090:90/udp'], 'a refused form changed the project')
    assert.equal(after.json.has_docker_password, true, 'a refused save dropped the password')
    assert.deepEqual(problems.filter((p) => p.startsWith('page error')), [])
  } catch (err) {
    await screenshot(page, 'docker-failure')
    throw err
  } finally {
    await context.close()
  }
})
