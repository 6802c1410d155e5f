// Checks the project page's git settings against a running fabu, in Chromium: merge refs and
// the post-success tag and branch merge are saved into the project exactly (read back through
// the API; PUT replaces the whole project, so nothing else may change); the tag preview fills
// the template; a hostile ref or an unknown placeholder is marked at its field and nothing is
// saved. Then a deploy with a merge ref and a tag action: the run page shows the merge and
// the pushed tag, and the tag is in the project's repository at the run's commit. Needs FABU_URL, FABU_USER, FABU_PASSWORD and FABU_PROJECT; run by the Go test
// TestBrowserDeploy. The project is restored afterwards.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { launch, newPage, screenshot, byTestId, fabuEnv, login, apiToken, apiGet } from './chromium.js'

const env = fabuEnv('gitactions.test.js')
const { skip } = env

let browser
let token
let original

async function apiPut(path, body) {
  const res = await fetch(env.at(`/api/v1${path}`), {
    method: 'PUT',
    headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' },
    body: JSON.stringify(body),
  })
  const text = await res.text()
  if (res.status !== 200) throw new Error(`PUT /api/v1${path} = ${res.status} ${text}`)
  return JSON.parse(text)
}

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
      const body = { ...original }
      delete body.webhook_secret
      await apiPut(`/projects/${encodeURIComponent(original.id)}`, body)
    }
  } finally {
    if (browser) await browser.close()
  }
})

async function addTag(page, testId, value) {
  // Element Plus puts the data-testid of an input-tag on its input or on its wrapper.
  const input = page.locator(`input${byTestId(testId)}, ${byTestId(testId)} input`).first()
  await input.fill(value)
  await input.press('Enter')
}

test('git settings are saved into the project exactly, and bad ones are refused at their field', { skip }, async () => {
  const { context, page, problems } = await newPage(browser)
  try {
    assert.deepEqual(original.merge_refs, [], 'the project has merge refs already; the test would prove less')
    await login(page, env)
    await page.waitForURL((u) => u.pathname === '/projects', { timeout: 15_000 })
    await page.goto(env.at(`/projects/${original.id}`))
    await page.waitForSelector(byTestId('git-actions-save'))

    // A hostile merge ref is marked and not saved.
    await addTag(page, 'git-merge-refs', 'main;id')
    await page.waitForSelector(`${byTestId('git-actions')} .el-form-item__error`)
    assert.match(await page.innerText(`${byTestId('git-actions')} .el-form-item__error`), /main;id/)
    await page.click(byTestId('git-actions-save'))
    await page.waitForSelector('.el-message--error', { timeout: 5_000 })
    let now = await apiGet(env, token, `/projects/${encodeURIComponent(original.id)}`)
    assert.deepEqual(now.merge_refs, [], 'a hostile merge ref reached the project')
    await page.click(byTestId('git-actions-reset'))
    await page.waitForSelector(`${byTestId('git-actions')} .el-form-item__error`, { state: 'detached' })

    await addTag(page, 'git-merge-refs', 'feature/login')
    await addTag(page, 'git-merge-refs', 'hotfix-1')

    // The tag template: an unknown placeholder is marked; a good one is previewed.
    await page.click(byTestId('git-tag-switch'))
    await page.fill(byTestId('git-tag-template'), 'release-{{user}}')
    await page.waitForSelector(`${byTestId('git-actions')} .el-form-item__error`)
    assert.match(await page.innerText(`${byTestId('git-actions')} .el-form-item__error`), /\{\{user\}\}/)
    await page.fill(byTestId('git-tag-template'), 'release-{{date}}-{{run}}')
    await page.waitForSelector(byTestId('git-tag-preview'))
    assert.match(await page.innerText(byTestId('git-tag-preview')), /release-\d{8}-01JRUN/)

    await page.click(byTestId('git-merge-switch'))
    await page.fill(byTestId('git-merge-branch'), 'master')
    await page.click(byTestId('git-merge-mode-merge'))
    await screenshot(page, 'git-actions')
    await page.click(byTestId('git-actions-save'))
    await page.waitForSelector('.el-message--success', { timeout: 15_000 })

    now = await apiGet(env, token, `/projects/${encodeURIComponent(original.id)}`)
    assert.deepEqual(now.merge_refs, ['feature/login', 'hotfix-1'])
    assert.deepEqual(now.git_actions, { tag: 'release-{{date}}-{{run}}', merge_into: 'master', merge_mode: 'merge' })
    const rest = (p) => {
      const { merge_refs: _m, git_actions: _g, ...others } = p
      return others
    }
    assert.deepEqual(rest(now), rest(original), 'saving the git settings changed other fields of the project')

    // Reloaded, the page shows what was saved.
    await page.reload()
    await page.waitForSelector(byTestId('git-tag-preview'))
    assert.equal(await page.inputValue(byTestId('git-merge-branch')), 'master')
    assert.deepEqual(problems, [])
  } finally {
    await context.close()
  }
})

const git = (cwd, ...args) =>
  execFileSync('git', ['-c', 'user.name=browser test', '-c', 'user.email=test@fabu.dev', '-c', 'protocol.file.allow=always', ...args],
    { cwd, encoding: 'utf8', env: { PATH: process.env.PATH, HOME: cwd, GIT_CONFIG_NOSYSTEM: '1', LC_ALL: 'C' } }).trim()

async function apiPost(path, body) {
  const res = await fetch(env.at(`/api/v1${path}`), {
    method: 'POST',
    headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' },
    body: JSON.stringify(body),
  })
  const text = await res.text()
  if (res.status !== 201) throw new Error(`POST /api/v1${path} = ${res.status} ${text}`)
  return JSON.parse(text)
}

async function until(what, fn, ms = 90_000) {
  const end = Date.now() + ms
  for (;;) {
    const v = await fn()
    if (v) return v
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 300))
  }
}

test('a deploy merges the listed branch, pushes the tag, and the run page shows both', { skip }, async () => {
  const bare = original.git_url
  assert.ok(bare.startsWith('/'), `the project's repository ${bare} is not a local path this test can write`)
  const work = mkdtempSync(join(tmpdir(), 'fabu-gitactions-'))
  const { context, page, problems } = await newPage(browser)
  try {
    git(work, 'clone', '-q', bare, 'w')
    const w = join(work, 'w')
    git(w, 'checkout', '-q', '-b', 'browser-feature')
    writeFileSync(join(w, original.source_dir || '.', 'merged.txt'), 'from browser-feature\n')
    git(w, 'add', '-A')
    git(w, 'commit', '-q', '-m', 'browser-feature')
    git(w, 'push', '-q', 'origin', 'browser-feature')

    const body = { ...original, merge_refs: ['browser-feature'], git_actions: { tag: 'browser-{{run}}' } }
    delete body.webhook_secret
    await apiPut(`/projects/${encodeURIComponent(original.id)}`, body)
    const run = await apiPost(`/projects/${encodeURIComponent(original.id)}/runs`, { ref: original.branch })
    const done = await until('the run to end', async () => {
      const r = await apiGet(env, token, `/runs/${encodeURIComponent(run.id)}`)
      return ['succeeded', 'failed', 'cancelled'].includes(r.status) && r
    })
    assert.equal(done.status, 'succeeded', `the merged run ended ${done.status}: ${done.error}`)
    const info = await until('the git actions', async () => {
      const g = await apiGet(env, token, `/runs/${encodeURIComponent(run.id)}/git`)
      return ['done', 'warning'].includes(g.actions_state) && g
    })
    assert.equal(info.merged_commit, done.commit, 'the run did not build the merged commit')
    assert.equal(info.merged_refs[0].ref, 'browser-feature')
    assert.deepEqual(info.actions.map((a) => [a.action, a.target, a.outcome]), [['tag', `browser-${run.id}`, 'pushed']])
    assert.equal(git(work, '--git-dir=' + bare, 'rev-parse', `refs/tags/browser-${run.id}`), done.commit)

    await login(page, env)
    await page.waitForURL((u) => u.pathname === '/projects', { timeout: 15_000 })
    await page.goto(env.at(`/runs/${run.id}`))
    await page.waitForSelector(byTestId('run-git-action'))
    assert.match(await page.innerText(byTestId('run-git-merge')), /browser-feature[\s\S]*(merged|fast-forward)/)
    assert.match(await page.innerText(byTestId('run-git-action')), new RegExp(`tag browser-${run.id}: pushed`))
    await screenshot(page, 'run-git')
    assert.deepEqual(problems, [])
  } finally {
    await context.close()
    try {
      git(work, '--git-dir=' + bare, 'branch', '-D', 'browser-feature')
    } catch {
      // the branch was not made
    }
    rmSync(work, { recursive: true, force: true })
  }
})
