// Checks platform connections end to end in Chromium, against a running fabu and a fake GitLab
// (FABU_FAKE_GITLAB, a test double of GitLab's API v4 answering from the shared fixtures, which
// the Go test TestBrowserDeploy starts): a connection is added in the UI with its token shown only
// as "set"; "Sync now" lists the fake's repositories with the counts of what changed; the
// repository browser searches them, marks one the platform dropped as gone, removes and restores
// one; "Create project" opens the new-project dialog prefilled from a repository and links the
// project to it; on the project page the deploy picker lists the repository's live branches,
// tags and commits and still takes free text; installing the hook posts it to the platform
// (checked on the fake) and shows it installed (checked through the API too).
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { launch, newPage, screenshot, byTestId, fabuEnv, login, apiToken, apiGet } from './chromium.js'

const env = fabuEnv('connections.test.js')
const gitlab = process.env.FABU_FAKE_GITLAB
const gitlabToken = process.env.FABU_FAKE_GITLAB_TOKEN
if (!env.skip && (!gitlab || !gitlabToken)) {
  throw new Error('connections.test.js needs FABU_FAKE_GITLAB and FABU_FAKE_GITLAB_TOKEN (a fake GitLab); the Go test TestBrowserDeploy sets them')
}
const { skip } = env

const CONN = 'fake-gitlab'
// From the shared fixtures (gitlab-api/*.json) the fake answers with.
const FIXTURE = {
  repo: 'diaspora/diaspora',
  name: 'Diaspora',
  httpURL: 'https://gitlab.com/diaspora/diaspora.git',
  branch: 'master',
  branchSha: '7b5c3cc8be40ee161ae89a06bba6229da1032a0c',
  tag: 'v1.0.0',
  commit: '6104942438c14ec7bd21c6cd5bd995272b3faff6',
  commitMessage: 'Sanitize for network graph',
}

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

// confirm presses OK in Element Plus's confirmation box.
async function confirm(page) {
  const ok = page.locator('.el-message-box__btns .el-button--primary')
  await ok.waitFor()
  await ok.click()
  await page.locator('.el-message-box').waitFor({ state: 'hidden' })
}

const shownRepos = (page) =>
  page.$$eval(byTestId('repo-row'), (els) => els.map((e) => ({ path: e.dataset.path, gone: e.dataset.gone === 'true', removed: e.dataset.removed === 'true' })))

async function waitRepos(page, paths) {
  await page.waitForFunction(
    ([sel, want]) => [...document.querySelectorAll(sel)].map((e) => e.dataset.path).join(',') === want,
    [byTestId('repo-row'), paths.join(',')],
    { timeout: 10_000 },
  )
}

const repoRow = (page, path) => page.locator('.el-table__row', { has: page.locator(`${byTestId('repo-row')}[data-path="${path}"]`) })

test('a connection synced from the platform, its repositories, a project made from one with live refs and an installed hook', { skip }, async () => {
  const { context, page, problems } = await newPage(browser)
  try {
    await login(page, env)
    await page.waitForURL((u) => u.pathname === '/projects', { timeout: 15_000 })

    // Add the connection.
    await page.click(byTestId('nav-connections'))
    await page.waitForURL((u) => u.pathname === '/connections')
    await page.click(byTestId('connection-new'))
    await page.fill(byTestId('connection-name'), CONN)
    await page.fill(byTestId('connection-base-url'), gitlab)
    await page.fill(byTestId('connection-token'), gitlabToken)
    await page.click(byTestId('connection-save'))
    await page.waitForSelector(byTestId(`connection-row-${CONN}`))
    assert.equal((await page.innerText(byTestId(`connection-token-${CONN}`))).trim(), 'set')
    assert.equal(await page.getAttribute(byTestId(`connection-sync-${CONN}`), 'data-state'), 'never')
    const conn = (await apiGet(env, token, '/connections')).find((c) => c.name === CONN)
    assert.ok(conn, 'the connection was not created')
    assert.equal(conn.has_token, true)
    assert.equal(conn.token, undefined, 'the API showed the token')
    assert.equal(conn.base_url, gitlab)

    // Editing shows the token only as set; saving with the field empty keeps it.
    await page.click(byTestId(`connection-edit-${CONN}`))
    assert.equal(await page.inputValue(byTestId('connection-token')), '', 'the token field is not empty: a token is never shown')
    assert.match(await page.innerText(byTestId('connection-token-state')), /token is set/)
    await page.click(byTestId('connection-save'))
    await page.waitForSelector(`${byTestId('connection-form')}`, { state: 'detached' })
    assert.equal((await apiGet(env, token, `/connections/${conn.id}`)).has_token, true, 'saving the edit dropped the token')

    // Sync now: the fake lists three repositories, all new.
    await page.click(byTestId(`connection-syncnow-${CONN}`))
    await page.waitForSelector(byTestId(`connection-result-${CONN}`), { timeout: 15_000 })
    assert.equal(await page.innerText(byTestId(`connection-result-${CONN}`)), 'Listed 3: 3 new, 0 changed, 0 gone')
    await page.waitForSelector(`${byTestId(`connection-sync-${CONN}`)}[data-state="ok"]`)
    await screenshot(page, 'connections')

    // The repository browser: all three, then a search.
    await page.click(`${byTestId(`connection-repos-${CONN}`)} button`)
    await page.waitForURL((u) => u.pathname === `/connections/${conn.id}/repos`)
    await waitRepos(page, ['diaspora/diaspora', 'team/old-api', 'team/site'])
    assert.match(await page.innerText(byTestId('repos-total')), /^3 /)
    await page.fill(byTestId('repos-search'), 'team/')
    await waitRepos(page, ['team/old-api', 'team/site'])
    await page.fill(byTestId('repos-search'), '')
    await waitRepos(page, ['diaspora/diaspora', 'team/old-api', 'team/site'])

    // The platform drops a repository: the next sync marks it gone, and no project can be made from it.
    const drop = await fetch(`${gitlab}/fake/drop?path=team/old-api`, { method: 'POST' })
    assert.equal(drop.status, 204)
    await page.click(byTestId('repos-sync'))
    await page.waitForSelector(byTestId('repos-sync-result'), { timeout: 15_000 })
    assert.equal(await page.innerText(byTestId('repos-sync-result')), 'Listed 2: 0 new, 0 changed, 1 gone')
    await repoRow(page, 'team/old-api').locator(byTestId('repo-gone')).waitFor()
    assert.ok(await repoRow(page, 'team/old-api').locator(byTestId('repo-create-project')).isDisabled(), 'a project can be made from a gone repository')

    // Remove one from fabu: it leaves the list, shows as removed with "Show removed", and comes back on restore.
    await repoRow(page, 'team/site').locator(byTestId('repo-remove')).click()
    await confirm(page)
    await waitRepos(page, ['diaspora/diaspora', 'team/old-api'])
    await page.click(byTestId('repos-include-removed'))
    await waitRepos(page, ['diaspora/diaspora', 'team/old-api', 'team/site'])
    assert.deepEqual((await shownRepos(page)).find((r) => r.path === 'team/site'), { path: 'team/site', gone: false, removed: true })
    await repoRow(page, 'team/site').locator(byTestId('repo-removed')).waitFor()
    await screenshot(page, 'connection-repos')
    await repoRow(page, 'team/site').locator(byTestId('repo-restore')).click()
    await page.waitForFunction((sel) => document.querySelector(sel)?.dataset.removed === 'false', `${byTestId('repo-row')}[data-path="team/site"]`)
    const apiRepos = await apiGet(env, token, `/connections/${conn.id}/repos`)
    assert.deepEqual(apiRepos.repos.map((r) => [r.path, r.gone, r.removed]), [
      ['diaspora/diaspora', false, false],
      ['team/old-api', true, false],
      ['team/site', false, false],
    ])

    // Create a project from the fixture's repository: the dialog comes prefilled.
    await repoRow(page, FIXTURE.repo).locator(byTestId('repo-create-project')).click()
    await page.waitForURL((u) => u.pathname === '/projects')
    await page.waitForSelector(byTestId('project-from-repo'))
    assert.match(await page.innerText(byTestId('project-from-repo')), new RegExp(FIXTURE.repo))
    assert.equal(await page.inputValue(byTestId('project-name')), FIXTURE.name)
    assert.equal(await page.inputValue(byTestId('project-git-url')), FIXTURE.httpURL)
    assert.equal(await page.inputValue(byTestId('project-branch')), FIXTURE.branch)
    await page.fill(byTestId('project-deploy-path'), '/srv/diaspora')
    await page.click(byTestId('project-servers'))
    await page.locator('.el-select-dropdown__item', { hasText: 'web-1' }).click()
    await page.keyboard.press('Escape')
    await page.click(byTestId('project-create'))
    await page.waitForURL((u) => /^\/projects\/[^/]+$/.test(u.pathname), { timeout: 15_000 })
    const projectId = decodeURIComponent(new URL(page.url()).pathname.split('/').pop())
    const project = await apiGet(env, token, `/projects/${encodeURIComponent(projectId)}`)
    assert.equal(project.name, FIXTURE.name)
    assert.equal(project.branch, FIXTURE.branch)
    assert.deepEqual(await apiGet(env, token, `/projects/${encodeURIComponent(projectId)}/source`), {
      connection_id: conn.id,
      repo_path: FIXTURE.repo,
      platform: 'gitlab',
    })

    // The project page: the linked repository, and the deploy picker with the live refs.
    await page.waitForSelector(byTestId('source-repo'))
    assert.equal(await page.innerText(byTestId('source-repo')), FIXTURE.repo)
    await page.click(byTestId('ref-picker'))
    const opt = (kind, name) => page.locator(`.ref-picker-popper ${byTestId(`ref-option-${kind}`)}[data-ref="${name}"]`)
    await opt('branch', FIXTURE.branch).waitFor({ timeout: 10_000 })
    assert.match(await opt('branch', FIXTURE.branch).innerText(), new RegExp(`^${FIXTURE.branch}\\s+protected\\s+${FIXTURE.branchSha.slice(0, 10)}$`))
    await opt('tag', FIXTURE.tag).waitFor()
    assert.match(await opt('commit', FIXTURE.commit).innerText(), new RegExp(`${FIXTURE.commit.slice(0, 10)}\\s+${FIXTURE.commitMessage}`))
    const branches = await page.$$eval(`.ref-picker-popper ${byTestId('ref-option-branch')}`, (els) => els.map((e) => e.dataset.ref))
    assert.deepEqual(branches, [FIXTURE.branch], 'the picker does not list exactly the fixture branches')
    await screenshot(page, 'project-refpicker')
    await opt('tag', FIXTURE.tag).click()
    await page.waitForFunction((sel) => document.querySelector(sel)?.value.endsWith('?ref=v1.0.0'), byTestId('deploy-link'))

    // Free text still works: a ref that is not listed, typed and taken with Enter.
    await page.click(byTestId('ref-picker'))
    await page.locator(`${byTestId('ref-picker')} input`).fill('release/2024-05')
    await page.waitForTimeout(400) // the select's search debounce
    await page.keyboard.press('Enter')
    await page.waitForFunction((sel) => document.querySelector(sel)?.value.endsWith('?ref=release%2F2024-05'), byTestId('deploy-link'))
    await page.keyboard.press('Escape')

    // Install the hook, confirmed: the platform gets it, and the card shows it installed.
    assert.equal(await page.getAttribute(byTestId('hook-installed'), 'data-installed'), 'false')
    await page.click(byTestId('hook-install'))
    await confirm(page)
    await page.waitForSelector(`${byTestId('hook-installed')}[data-installed="true"]`, { timeout: 15_000 })
    const created = await (await fetch(`${gitlab}/fake/hooks`)).json()
    assert.equal(created.length, 1, `the platform got ${created.length} hook creations`)
    assert.equal(created[0].repo, FIXTURE.repo)
    assert.equal(created[0].url, env.at(`/hooks/gitlab/${encodeURIComponent(FIXTURE.name)}`))
    assert.equal(created[0].has_token, true, 'the hook was created without a secret token')
    const hook = await apiGet(env, token, `/projects/${encodeURIComponent(projectId)}/hook`)
    assert.equal(hook.installed, true)
    assert.equal(hook.hook_id, String(created[0].id))
    assert.equal(hook.has_secret, true)
    assert.equal(await page.innerText(byTestId('hook-url')), hook.url)
    assert.equal(await page.innerText(byTestId('hook-rejected')), '0')
    // The hook's fresh secret is the project's webhook secret now; the trigger editor shows it set.
    await page.waitForFunction((sel) => document.querySelector(sel)?.textContent.trim() === 'set', byTestId('triggers-secret-state'))
    assert.equal((await apiGet(env, token, `/projects/${encodeURIComponent(projectId)}`)).has_webhook_secret, true)
    await screenshot(page, 'project-source')
    // Opened again, the card also shows the platform's own view of the hook: GitLab lists it active.
    await page.reload()
    await page.waitForSelector(byTestId('hook-platform'), { timeout: 15_000 })
    assert.match(await page.innerText(byTestId('hook-platform')), /^active/)
    assert.deepEqual(problems, [])
  } finally {
    await context.close()
  }
})

test('the connections page in Chinese', { skip }, async () => {
  const { context, page, problems } = await newPage(browser)
  try {
    await login(page, env)
    await page.waitForURL((u) => u.pathname === '/projects', { timeout: 15_000 })
    await page.goto(env.at('/connections'))
    await page.waitForSelector(byTestId(`connection-row-${CONN}`))
    await page.locator(`${byTestId('lang-switch')} label`, { hasText: '中文' }).click()
    await page.waitForFunction(() => document.querySelector('h1')?.textContent.includes('代码平台连接'))
    assert.match(await page.innerText(byTestId(`connection-syncnow-${CONN}`)), /立即同步/)
    assert.match(await page.innerText(byTestId('nav-connections')), /平台连接/)
    await screenshot(page, 'connections-zh')
    // Back to English for whatever runs next in this browser profile.
    await page.locator(`${byTestId('lang-switch')} label`, { hasText: 'English' }).click()
    assert.deepEqual(problems, [])
  } finally {
    await context.close()
  }
})
