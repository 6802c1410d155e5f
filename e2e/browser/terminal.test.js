// The web terminal in Chromium: from the servers page, open a shell on the test's sshd target
// (server "web-1", which TestBrowserDeploy configures with fabu's key), type a command whose
// output only a real shell on the host produces, exit with a status and see it, then open a
// new session and leave the page, which hangs it up. The audit log tells both sessions.
// Needs FABU_URL, FABU_USER, FABU_PASSWORD (an administrator) and FABU_PROJECT.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { launch, newPage, screenshot, byTestId, fabuEnv, login, apiToken, apiGet, pageErrors } from './chromium.js'

const env = fabuEnv('terminal.test.js')
const { skip } = env
const SERVER = 'web-1'

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

const screenText = (page) => page.innerText(`${byTestId('terminal-screen')} .xterm-rows`)

async function waitScreen(page, want) {
  await page
    .waitForFunction(
      ([sel, text]) => (document.querySelector(sel)?.innerText || '').includes(text),
      [`${byTestId('terminal-screen')} .xterm-rows`, want],
      { timeout: 15_000 },
    )
    .catch(async () => assert.fail(`the terminal never showed ${JSON.stringify(want)}; it shows:\n${await screenText(page)}`))
}

async function waitState(page, want) {
  await page.waitForFunction(
    ([sel, text]) => document.querySelector(sel)?.textContent.trim() === text,
    [byTestId('terminal-state'), want],
    { timeout: 15_000 },
  )
}

// terminalEntries are the audit entries of ended terminal sessions on server id, newest first.
async function terminalEntries(id) {
  const out = await apiGet(env, token, `/audit?${new URLSearchParams({ action: 'server.terminal', limit: '50' })}`)
  return out.entries.filter((e) => e.target_id === id)
}

async function waitEntries(id, n) {
  const deadline = Date.now() + 15_000
  for (;;) {
    const got = await terminalEntries(id)
    if (got.length >= n) return got
    if (Date.now() > deadline) assert.fail(`${got.length} terminal audit entries for ${id}, want ${n}: ${JSON.stringify(got)}`)
    await new Promise((r) => setTimeout(r, 200))
  }
}

test('open a shell on a server, run a command, exit, and hang up a second session', { skip, timeout: 120_000 }, async () => {
  const { context, page, problems } = await newPage(browser)
  try {
    await login(page, env)
    await page.waitForURL((u) => u.pathname.startsWith('/projects'), { timeout: 15_000 })
    await page.goto(env.at('/servers'))
    await page.click(byTestId(`server-terminal-${SERVER}`), { timeout: 15_000 })
    await page.waitForURL((u) => /^\/servers\/[^/]+\/terminal$/.test(u.pathname))
    const id = new URL(page.url()).pathname.split('/')[2]
    const before = (await terminalEntries(id)).length
    await waitState(page, 'connected')

    // The arithmetic is the host shell's: the page cannot show FABU-42 unless it ran there.
    await page.keyboard.type('echo "FABU-$((6*7))"; echo "ROWS-$(tput lines 2>/dev/null || stty size)"\n')
    await waitScreen(page, 'FABU-42')
    await screenshot(page, 'terminal')

    await page.keyboard.type('exit 3\n')
    await waitState(page, 'exited')
    const msg = await page.innerText(byTestId('terminal-message'))
    assert.match(msg, /status 3/, `the page says ${JSON.stringify(msg)} after exit 3`)
    let entries = await waitEntries(id, before + 1)
    assert.equal(entries[0].detail.session.ended, 'exit')
    assert.equal(entries[0].detail.session.exit_status, 3)
    assert.equal(entries[0].actor, env.user)

    // A new session is a new login; leaving the page hangs it up.
    await page.click(byTestId('terminal-reconnect'))
    await waitState(page, 'connected')
    await page.keyboard.type('echo "AGAIN-$((40+2))"\n')
    await waitScreen(page, 'AGAIN-42')
    await page.goto(env.at('/servers'))
    entries = await waitEntries(id, before + 2)
    assert.equal(entries[0].detail.session.ended, 'hangup', `the second session ended as ${JSON.stringify(entries[0].detail.session)}`)

    assert.deepEqual(pageErrors(problems), [])
  } finally {
    await context.close()
  }
})
