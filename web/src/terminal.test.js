import { describe, it, expect } from 'vitest'
import { parseControl, preflight, resizeFrame, terminalURL } from './terminal.js'

describe('terminalURL', () => {
  it('opens ws: on http and wss: on https, with the size and the token in the query', () => {
    const http = new URL(terminalURL('srv/1', 30, 100, 'tok&x', { protocol: 'http:', host: 'fabu.example:8080' }))
    expect(http.protocol).toBe('ws:')
    expect(http.host).toBe('fabu.example:8080')
    expect(http.pathname).toBe('/api/v1/servers/srv%2F1/terminal')
    expect(Object.fromEntries(http.searchParams)).toEqual({ rows: '30', cols: '100', access_token: 'tok&x' })
    const https = new URL(terminalURL('s1', 24, 80, 't', { protocol: 'https:', host: 'fabu.example' }))
    expect(https.protocol).toBe('wss:')
  })
})

function answer(status, body) {
  return async (url, init) => ({
    status,
    url,
    init,
    json: async () => {
      if (body === undefined) throw new Error('not JSON')
      return body
    },
  })
}

describe('preflight', () => {
  it('takes 400 (no upgrade, but allowed) as leave to open, sending the bearer token', async () => {
    let seen
    const fetchImpl = async (url, init) => {
      seen = { url, init }
      return answer(400, { message: 'the terminal is a WebSocket' })()
    }
    expect(await preflight('s1', 'tok', fetchImpl)).toEqual({ ok: true })
    expect(seen.url).toBe('/api/v1/servers/s1/terminal')
    expect(seen.init.headers.Authorization).toBe('Bearer tok')
  })
  it('passes on the message of a refusal or a missing key', async () => {
    expect(await preflight('s1', 't', answer(403, { message: 'no server group rule lets you open a terminal' }))).toEqual({
      ok: false,
      status: 403,
      message: 'no server group rule lets you open a terminal',
    })
    expect(await preflight('s1', 't', answer(503, { message: 'no SSH key' }))).toMatchObject({ ok: false, status: 503, message: 'no SSH key' })
  })
  it('falls back to the status when the answer is not JSON', async () => {
    expect(await preflight('s1', 't', answer(502))).toEqual({ ok: false, status: 502, message: 'HTTP 502' })
  })
})

describe('parseControl', () => {
  const cases = [
    ['exit with a status', '{"type":"exit","status":3}', { type: 'exit', status: 3 }],
    ['exit without a status', '{"type":"exit"}', { type: 'exit', status: null }],
    ['exit with a non-integer status', '{"type":"exit","status":"3"}', { type: 'exit', status: null }],
    ['an error', '{"type":"error","message":"host key mismatch"}', { type: 'error', message: 'host key mismatch' }],
    ['an unknown type', '{"type":"bell"}', null],
    ['not JSON', 'exit 3', null],
    ['JSON that is no object', '42', null],
    ['null', 'null', null],
  ]
  for (const [name, text, want] of cases) {
    it(name, () => expect(parseControl(text)).toEqual(want))
  }
})

describe('resizeFrame', () => {
  it('is the JSON the gateway reads', () => {
    expect(JSON.parse(resizeFrame(50, 132))).toEqual({ type: 'resize', rows: 50, cols: 132 })
  })
})
