// Checks release tickets in Chromium against a running fabu: the project is made to need an
// approved ticket for every deploy; a developer (created for the test) sees that on the
// project page and requests a release there; a maintainer finds it under "waiting for me",
// approves it, and the ticket starts exactly one run of the pinned commit, which succeeds.
// The project's rules are put back afterwards. Needs FABU_URL, FABU_USER, FABU_PASSWORD
// (an administrator) and FABU_PROJECT; run by the Go test TestBrowserDeploy.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { launch, newPage, screenshot, byTestId, fabuEnv, apiToken, apiGet, apiDo } from './chromium.js'

const env = fabuEnv('tickets.test.js')
const { skip } = env
const RUN_DEADLINE_MS = 90_000
const suffix = Date.now().toString(36)
const developer = { username: `dev-${suffix}`, password: 'correct horse battery staple 1' }
const maintainer = { username: `maint-${suffix}`, password: 'correct horse battery staple 2' }

let browser
let token
let project

const api = (method, path, body) => apiDo(env, token, method, path, body)

async function signIn(page, who) {
  await page.goto(env.at('/login'))
  await page.waitForSelector(byTestId('login-username'))
  await page.fill(byTestId('login-username'), who.username)
  await page.fill(byTestId('login-password'), who.password)
  await page.click(byTestId('login-submit'))
  await page.waitForURL((u) => u.pathname === '/projects', { timeout: 15_000 })
}

before(async () => {
  if (skip) return
  browser = await launch()
  token = await apiToken(env)
  project = (await apiGet(env, token, '/projects')).find((p) => p.name === env.project)
  assert.ok(project, `fabu has no project named ${env.project}`)
  const access = await api('GET', `/projects/${project.id}/access`)
  for (const [who, role] of [[developer, 'developer'], [maintainer, 'maintainer']]) {
    await api('POST', '/users', { username: who.username, password: who.password })
    await api('POST', `/project-groups/${encodeURIComponent(access.project_group_id)}/members`, { username: who.username, role })
  }
  await api('PUT', `/projects/${project.id}/approval`, { approval: 'required', approvals_needed: 1, approver_role: 'maintainer' })
})
after(async () => {
  if (token && project) await api('PUT', `/projects/${project.id}/approval`, { approval: 'none' })
  if (browser) await browser.close()
})

test('a developer requests a release, a maintainer approves it, and its run deploys the pinned commit', { skip, timeout: RUN_DEADLINE_MS + 90_000 }, async () => {
  const runsBefore = new Set((await apiGet(env, token, `/runs?project_id=${project.id}&limit=200`)).map((r) => r.id))
  const dev = await newPage(browser)
  const maint = await newPage(browser)
  try {
    // The developer sees that a ticket is needed and requests one from the project page.
    await signIn(dev.page, developer)
    await dev.page.goto(env.at(`/projects/${project.id}`))
    await dev.page.waitForSelector(byTestId('ticket-needed'), { timeout: 15_000 })
    await dev.page.click(byTestId('request-release'))
    await dev.page.fill(byTestId('release-title'), 'Release from the browser test')
    await dev.page.fill(byTestId('release-description'), 'checks tickets end to end')
    await dev.page.click(byTestId('release-submit'))
    await dev.page.waitForURL((u) => u.pathname.startsWith('/tickets/'), { timeout: 15_000 })
    const ticketId = new URL(dev.page.url()).pathname.split('/').pop()
    await dev.page.waitForSelector(`${byTestId('ticket-status')}[data-ticket-status="pending"]`, { timeout: 15_000 })
    assert.equal(await dev.page.$(byTestId('ticket-approve')), null, 'the requester is offered Approve on their own ticket')
    assert.ok(await dev.page.$(byTestId('ticket-cancel')), 'the requester is not offered Cancel')
    const pinnedCommit = (await dev.page.innerText(byTestId('ticket-commit'))).trim()
    assert.match(pinnedCommit, /^[0-9a-f]{40}$/)
    await screenshot(dev.page, 'ticket-requested')

    // The maintainer finds it waiting for them and approves it.
    await signIn(maint.page, maintainer)
    await maint.page.goto(env.at('/tickets?mine=approve'))
    await maint.page.waitForSelector(byTestId(`ticket-link-${ticketId}`), { timeout: 15_000 })
    await maint.page.click(byTestId(`ticket-link-${ticketId}`))
    await maint.page.waitForSelector(byTestId('ticket-approve'), { timeout: 15_000 })
    await maint.page.fill(byTestId('ticket-comment'), 'go ahead')
    await maint.page.click(byTestId('ticket-approve'))
    await maint.page.waitForSelector(`${byTestId('ticket-status')}[data-ticket-status="started"]`, { timeout: 15_000 })
    await maint.page.waitForSelector(byTestId('ticket-run'), { timeout: 15_000 })
    const runId = (await maint.page.innerText(byTestId('ticket-run'))).trim()
    await screenshot(maint.page, 'ticket-approved')

    // Exactly one new run: the ticket's, of the pinned commit, on behalf of the developer.
    const newRuns = (await apiGet(env, token, `/runs?project_id=${project.id}&limit=200`)).filter((r) => !runsBefore.has(r.id))
    assert.deepEqual(newRuns.map((r) => r.id), [runId])
    assert.equal(newRuns[0].trigger, 'ticket')
    assert.equal(newRuns[0].triggered_by, developer.username)

    // The run page shows it succeed; it deployed the pinned commit.
    await maint.page.click(byTestId('ticket-run'))
    await maint.page.waitForSelector(`${byTestId('run-status')}[data-status="succeeded"]`, { timeout: RUN_DEADLINE_MS })
    const run = await apiGet(env, token, `/runs/${runId}`)
    assert.equal(run.commit, pinnedCommit)
    const ticket = await apiGet(env, token, `/tickets/${ticketId}`)
    assert.equal(ticket.reviews.length, 1)
    assert.equal(ticket.reviews[0].reviewer, maintainer.username)
    assert.equal(ticket.reviews[0].comment, 'go ahead')
    assert.deepEqual([...dev.problems, ...maint.problems].filter((p) => p.startsWith('page error')), [])
  } catch (err) {
    await screenshot(dev.page, 'tickets-failure-developer')
    await screenshot(maint.page, 'tickets-failure-maintainer')
    throw err
  } finally {
    await dev.context.close()
    await maint.context.close()
  }
})
