// Checks the project page's build settings and stage editor, and the run page's stages,
// against a running fabu in Chromium: adding three stages, moving them with the buttons and
// by dragging, removing one, then saving, stores exactly that pipeline (read back through the API) and a
// reload shows it again; a bad timeout is marked next to its field and nothing is saved.
// Two deploys then run those stages: the run page of the finished first one lists them as
// succeeded with their durations; while the second runs, the page shows a percentage and
// the time left learnt from the first, and each stage's expected duration; the build
// settings name the stages the latest build ran and warn when they differ from the saved
// ones (as a .fabu.yml in the commit would make them). Needs FABU_URL,
// FABU_USER, FABU_PASSWORD and FABU_PROJECT (a deployable project); run by the Go test
// TestBrowserDeploy. The project's build settings are restored afterwards.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { launch, newPage, screenshot, byTestId, fabuEnv, login, apiToken, apiGet, apiDo } from './chromium.js'

const env = fabuEnv('build.test.js')
const { skip } = env

let browser
let token
let original // the project as it was before this file, restored at the end

const api = (method, path, body) => apiDo(env, token, method, path, body)

// waitRun polls the run until it has ended.
async function waitRun(id) {
  const deadline = Date.now() + 120_000
  for (;;) {
    const r = await apiGet(env, token, `/runs/${id}`)
    if (['succeeded', 'failed', 'cancelled'].includes(r.status)) return r
    if (Date.now() > deadline) throw new Error(`run ${id} still ${r.status} after 120 s`)
    await new Promise((res) => setTimeout(res, 300))
  }
}

const shownStages = (page) => page.$$eval(byTestId('stage-row'), (els) => els.map((e) => e.dataset.name))

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
    if (original) await api('PUT', `/projects/${encodeURIComponent(original.id)}`, { ...original, pipeline: original.pipeline ?? null })
  } finally {
    if (browser) await browser.close()
  }
})

test('the stage editor adds, reorders and removes stages, saves them, and a reload shows them', { skip }, async () => {
  const { context, page, problems } = await newPage(browser)
  try {
    await login(page, env)
    await page.waitForURL((u) => u.pathname === '/projects', { timeout: 15_000 })
    await page.goto(env.at(`/projects/${original.id}`))
    await page.waitForSelector(byTestId('build-save'))
    assert.match(await page.innerText(byTestId('build-override')), /\.fabu\.yml/)
    if (!(await page.isChecked(`${byTestId('build-custom-stages')} input`))) await page.click(byTestId('build-custom-stages'))
    // Start from no stages, whatever the recipe offered.
    while ((await shownStages(page)).length) await page.click(byTestId('stage-remove-0'))

    const stages = [
      ['first', 'echo first stage'],
      ['second', 'sleep 2'],
      ['third', "echo 'third stage'"],
    ]
    for (const [i, [name, command]] of stages.entries()) {
      await page.click(byTestId('build-add-stage'))
      await page.fill(byTestId(`stage-name-${i}`), name)
      await page.fill(byTestId(`stage-command-${i}`), command)
    }
    assert.deepEqual(await shownStages(page), ['first', 'second', 'third'])
    await page.click(byTestId('stage-up-2'))
    await page.click(byTestId('stage-up-1'))
    assert.deepEqual(await shownStages(page), ['third', 'first', 'second'])
    // Dragging a row by its handle onto another moves it there.
    await page.dragAndDrop(byTestId('stage-handle-2'), `${byTestId('stage-row')}[data-name="third"]`)
    assert.deepEqual(await shownStages(page), ['second', 'third', 'first'])
    await page.click(byTestId('stage-down-0'))
    assert.deepEqual(await shownStages(page), ['third', 'second', 'first'])
    await page.click(byTestId('stage-remove-2'))
    assert.deepEqual(await shownStages(page), ['third', 'second'])

    // A timeout that is no duration and a shell handed a string are marked at their fields,
    // and nothing is saved.
    await page.fill(byTestId('stage-timeout-1'), 'soon')
    await page.fill(byTestId('stage-command-0'), "sh -c 'echo third'")
    await page.click(byTestId('build-save'))
    // The message under the field: the form item holding it is marked as in error.
    const marked = async (id) => {
      const msg = page.locator('.el-form-item.is-error', { has: page.locator(byTestId(id)) }).locator('.el-form-item__error')
      await msg.waitFor({ timeout: 5_000 })
      return msg.textContent()
    }
    assert.match(await marked('stage-timeout-1'), /90s, 10m or 1h30m/)
    assert.match(await marked('stage-command-0'), /sh -c/)
    assert.deepEqual((await apiGet(env, token, `/projects/${original.id}`)).pipeline?.stages, original.pipeline?.stages)
    await page.fill(byTestId('stage-timeout-1'), '5m')
    await page.fill(byTestId('stage-command-0'), "echo 'third stage'")
    await screenshot(page, 'build-stages')
    await page.click(byTestId('build-save'))
    await page.waitForSelector('.el-message--success', { timeout: 15_000 })

    const saved = await apiGet(env, token, `/projects/${original.id}`)
    assert.deepEqual(saved.pipeline.stages, [
      { name: 'third', run: "echo 'third stage'" },
      { name: 'second', run: 'sleep 2', timeout: '5m' },
    ])
    // Only the pipeline changed: PUT replaced the project with the full body.
    const rest = ({ pipeline: _p, ...others }) => others
    assert.deepEqual(rest(saved), rest(original))

    await page.reload()
    await page.waitForSelector(byTestId('stage-row'))
    assert.deepEqual(await shownStages(page), ['third', 'second'])
    assert.equal(await page.inputValue(byTestId('stage-timeout-1')), '5m')
    assert.equal(await page.inputValue(byTestId('stage-command-0')), "echo 'third stage'")
    assert.deepEqual(problems, [])
  } finally {
    await context.close()
  }
})

test("a finished run's page lists its stages with durations; a later run shows progress, time left and expected durations", { skip }, async () => {
  const { context, page, problems } = await newPage(browser)
  try {
    const first = await api('POST', `/projects/${original.id}/runs`)
    const done = await waitRun(first.id)
    assert.equal(done.status, 'succeeded', `the first run ${done.status}: ${done.error}`)
    assert.deepEqual(done.stages.map((s) => [s.name, s.status]), [['third', 'succeeded'], ['second', 'succeeded']])
    assert.ok(done.stages[1].duration_ms >= 2000, `second took ${done.stages[1].duration_ms} ms, it sleeps 2 s`)

    await login(page, env)
    await page.waitForURL((u) => u.pathname === '/projects', { timeout: 15_000 })
    await page.goto(env.at(`/runs/${first.id}`))
    await page.waitForSelector(`${byTestId('run-stages')} ${byTestId('stage-name')}`)
    const rows = await page.$$eval(`${byTestId('run-stages')} tbody tr`, (trs) =>
      trs.map((tr) => ({
        name: tr.querySelector('[data-testid="stage-name"]')?.textContent.trim(),
        status: tr.querySelector('[data-testid="stage-status"]')?.dataset.status,
        ms: Number(tr.querySelector('[data-testid="stage-duration"]')?.dataset.ms),
        text: tr.querySelector('[data-testid="stage-duration"]')?.textContent.trim(),
      })),
    )
    assert.deepEqual(rows.map((r) => [r.name, r.status]), [['third', 'succeeded'], ['second', 'succeeded']])
    assert.deepEqual(rows.map((r) => r.ms), done.stages.map((s) => s.duration_ms))
    assert.match(rows[1].text, /^\d+(\.\d)?s$/, 'the duration of a 2 s stage reads like "2.0s"')
    assert.equal(await page.getAttribute(byTestId('run-progress'), 'data-progress'), '100')
    await screenshot(page, 'run-stages-finished')

    // A second run learns from the first: while it runs the bar shows a percentage and the
    // time left, and each stage what it is expected to take. A changed command makes it
    // build again rather than reuse the first run's artifact.
    const project = await apiGet(env, token, `/projects/${original.id}`)
    project.pipeline.stages[0].run = "echo 'third stage, again'"
    await api('PUT', `/projects/${original.id}`, project)
    const second = await api('POST', `/projects/${original.id}/runs`)
    await page.goto(env.at(`/runs/${second.id}`))
    await page.waitForSelector(byTestId('run-eta'), { timeout: 30_000 })
    assert.match(await page.innerText(byTestId('run-eta')), /left|moment/)
    const pct = Number(await page.getAttribute(byTestId('run-progress'), 'data-progress'))
    assert.ok(pct >= 0 && pct < 100, `progress ${pct} while running`)
    await page.waitForSelector(byTestId('stage-expected'), { timeout: 30_000 })
    await screenshot(page, 'run-stages-running')
    const ended = await waitRun(second.id)
    assert.equal(ended.status, 'succeeded', `the second run ${ended.status}: ${ended.error}`)
    assert.deepEqual(ended.stages.map((s) => [s.name, s.expected_ms]), done.stages.map((s) => [s.name, s.duration_ms]),
      'the second run expected each stage to take what it took in the first')
    await page.waitForFunction((sel) => document.querySelector(sel)?.dataset.progress === '100', byTestId('run-progress'), { timeout: 15_000 })
    await page.waitForSelector(byTestId('run-eta'), { state: 'detached' })
    const expected = await page.$$eval(byTestId('stage-expected'), (els) => els.map((e) => e.textContent.trim()))
    assert.equal(expected.length, 2, 'each stage shows what it was expected to take')

    // The build settings say what the latest build ran, and warn once it is not what they say.
    await page.goto(env.at(`/projects/${original.id}`))
    await page.waitForSelector(byTestId('build-last'))
    assert.equal(await page.getAttribute(byTestId('build-last'), 'data-stages'), 'third,second')
    assert.equal(await page.isVisible(byTestId('build-last-differs')), false)
    const reordered = await apiGet(env, token, `/projects/${original.id}`)
    reordered.pipeline.stages.reverse()
    await api('PUT', `/projects/${original.id}`, reordered)
    await page.reload()
    await page.waitForSelector(byTestId('build-last-differs'))
    assert.deepEqual(problems, [])
  } finally {
    await context.close()
  }
})
