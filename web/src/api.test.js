import { describe, it, expect, beforeEach, afterEach, vi } from 'vitest'
import {
  api,
  request,
  setSession,
  getToken,
  getUser,
  isSignedIn,
  onUnauthorized,
  logSocketURL,
  retryMinutes,
  ApiError,
  REFRESH_MARGIN_MS,
  updateProject,
} from './api.js'
import { LogStream } from './logstream.js'

// memoryStorage stands in for the browser's localStorage and sessionStorage.
function memoryStorage() {
  const m = new Map()
  return {
    getItem: (k) => (m.has(k) ? m.get(k) : null),
    setItem: (k, v) => m.set(k, String(v)),
    removeItem: (k) => m.delete(k),
    keys: () => [...m.keys()],
  }
}

// scriptedFetch answers each call with handler(call) and records the calls: method, path,
// bearer token and decoded body. Answers can be delayed through `gate` to make calls overlap.
function scriptedFetch(handler) {
  const calls = []
  const fn = async (url, init = {}) => {
    const auth = init.headers?.Authorization || ''
    const call = {
      method: init.method,
      path: url.replace('/api/v1', ''),
      token: auth.startsWith('Bearer ') ? auth.slice(7) : '',
      body: init.body ? JSON.parse(init.body) : undefined,
    }
    if (init.credentials !== 'same-origin') throw new Error(`fetch without the refresh cookie: credentials ${init.credentials}`)
    calls.push(call)
    const out = await handler(call, calls)
    if (out instanceof Error) throw out
    const { status = 200, body, headers = {} } = out
    return {
      ok: status >= 200 && status < 300,
      status,
      statusText: String(status),
      headers: { get: (h) => headers[h] ?? null },
      text: async () => (body === undefined ? '' : JSON.stringify(body)),
    }
  }
  fn.calls = calls
  return fn
}

const unauthorized = { status: 401, body: { code: 'unauthorized', message: 'token expired' } }

// pair is what login and refresh return to a browser for generation n: the refresh token is
// in the cookie, not here.
const pair = (n, expiresIn = 900) => ({
  token: `access-${n}`,
  access_token: `access-${n}`,
  token_type: 'Bearer',
  expires_in: expiresIn,
  refresh_expires_in: 604800,
  user: { id: 'u1', username: 'admin', role: 'admin' },
})

let loggedOut
beforeEach(() => {
  vi.stubGlobal('localStorage', memoryStorage())
  vi.stubGlobal('sessionStorage', memoryStorage())
  loggedOut = 0
  onUnauthorized(() => loggedOut++)
})
afterEach(() => {
  vi.unstubAllGlobals()
})

// A server that accepts only access-<current> and rotates refresh tokens like services/auth:
// each refresh token works once; reusing one revokes the session. The refresh token travels
// in the browser's cookie (state.cookie), never in a body the page sees.
function fakeAuthServer({ current = 1 } = {}) {
  const state = { current, used: new Set(), revoked: false, cookie: `refresh-${current}` }
  const fetch = scriptedFetch(async (call) => {
    if (call.path === '/auth/refresh') {
      if (call.body !== undefined) return { status: 400, body: { message: 'the page sent a body' } }
      const rt = state.cookie
      if (state.used.has(rt)) {
        state.revoked = true
        return { status: 401, body: { code: 'unauthorized', message: 'refresh token reused' } }
      }
      if (state.revoked || rt !== `refresh-${state.current}`) return unauthorized
      state.used.add(rt)
      state.current++
      state.cookie = `refresh-${state.current}`
      return { body: pair(state.current) }
    }
    if (state.revoked || call.token !== `access-${state.current}`) return unauthorized
    return { body: { path: call.path, token: call.token } }
  })
  return { state, fetch }
}

describe('request refreshes the access token', () => {
  it('on a 401: refreshes once and repeats the call with the new token', async () => {
    setSession(pair(1))
    // access-1 expired on the server although the browser thinks it is still valid
    const fetch = scriptedFetch(async (call) => {
      if (call.path === '/auth/refresh') return { body: pair(2) }
      return call.token === 'access-2' ? { body: [{ id: 'p1' }] } : unauthorized
    })
    vi.stubGlobal('fetch', fetch)

    const out = await request('GET', '/projects')

    expect(out).toEqual([{ id: 'p1' }])
    expect(fetch.calls.map((c) => `${c.method} ${c.path} ${c.token}`)).toEqual([
      'GET /projects access-1',
      'POST /auth/refresh ',
      'GET /projects access-2',
    ])
    expect(fetch.calls[1].body).toBe(undefined) // the cookie carries the refresh token
    expect(getToken()).toBe('access-2')
    expect(loggedOut).toBe(0)
  })

  it('single-flight: parallel calls that all get 401 share one refresh', async () => {
    setSession(pair(1))
    // The server refuses access-1 (expired by its clock) and, like services/auth, takes each
    // refresh token once: a second refresh with refresh-1 would revoke the login.
    const used = new Set()
    const fetch = scriptedFetch(async (call) => {
      if (call.path === '/auth/refresh') {
        await new Promise((r) => setTimeout(r, 20))
        const rt = 'refresh-1' // the cookie, until an answer replaces it
        if (used.has(rt)) return { status: 401, body: { message: 'refresh token reused' } }
        used.add(rt)
        return { body: pair(2) }
      }
      return call.token === 'access-2' ? { body: { path: call.path } } : unauthorized
    })
    vi.stubGlobal('fetch', fetch)

    const outs = await Promise.all(['/a', '/b', '/c', '/d'].map((p) => request('GET', p)))

    expect(outs.map((o) => o.path)).toEqual(['/a', '/b', '/c', '/d'])
    const refreshes = fetch.calls.filter((c) => c.path === '/auth/refresh')
    expect(refreshes).toHaveLength(1)
    // each call went out twice: once refused, once with the refreshed token
    for (const p of ['/a', '/b', '/c', '/d']) {
      expect(fetch.calls.filter((c) => c.path === p).map((c) => c.token)).toEqual(['access-1', 'access-2'])
    }
    expect(loggedOut).toBe(0)
    expect(isSignedIn()).toBe(true)
  })

  it('retries a 401 only once: a second 401 ends the session', async () => {
    setSession(pair(1))
    const fetch = scriptedFetch(async (call) => (call.path === '/auth/refresh' ? { body: pair(2) } : unauthorized))
    vi.stubGlobal('fetch', fetch)

    const err = await request('GET', '/projects').catch((e) => e)

    expect(err).toBeInstanceOf(ApiError)
    expect(err.status).toBe(401)
    expect(fetch.calls.map((c) => `${c.path} ${c.token}`)).toEqual(['/projects access-1', '/auth/refresh ', '/projects access-2'])
    expect(loggedOut).toBe(1)
    expect(isSignedIn()).toBe(false)
    expect(getUser()).toBe(null)
  })

  it('a refused refresh clears the session and sends the user to login, without repeating the call', async () => {
    setSession(pair(1))
    const fetch = scriptedFetch(async (call) =>
      call.path === '/auth/refresh' ? { status: 401, body: { code: 'unauthorized', message: 'the session is revoked' } } : unauthorized,
    )
    vi.stubGlobal('fetch', fetch)

    const results = await Promise.allSettled([request('GET', '/a'), request('GET', '/b')])

    expect(results.map((r) => r.status)).toEqual(['rejected', 'rejected'])
    expect(results.map((r) => r.reason.status)).toEqual([401, 401])
    expect(fetch.calls.filter((c) => c.path === '/auth/refresh')).toHaveLength(1)
    expect(fetch.calls.filter((c) => c.path === '/a')).toHaveLength(1)
    expect(fetch.calls.filter((c) => c.path === '/b')).toHaveLength(1)
    expect(loggedOut).toBeGreaterThanOrEqual(1)
    expect(getToken()).toBe('')
    expect(isSignedIn()).toBe(false)
  })

  it('an unreachable server during refresh keeps the session for the next try', async () => {
    setSession(pair(1))
    const fetch = scriptedFetch(async (call) => (call.path === '/auth/refresh' ? new TypeError('Failed to fetch') : unauthorized))
    vi.stubGlobal('fetch', fetch)

    const err = await request('GET', '/projects').catch((e) => e)

    expect(err.status).toBe(0)
    expect(err.code).toBe('unavailable')
    expect(loggedOut).toBe(0)
    expect(isSignedIn()).toBe(true)
  })

  it('refreshes shortly before expiry, before sending the call', async () => {
    setSession(pair(1, Math.floor(REFRESH_MARGIN_MS / 1000) - 5)) // expires inside the margin
    const srv = fakeAuthServer()
    vi.stubGlobal('fetch', srv.fetch)

    const out = await request('GET', '/projects')

    expect(out.token).toBe('access-2')
    expect(srv.fetch.calls.map((c) => `${c.path} ${c.token}`)).toEqual(['/auth/refresh ', '/projects access-2'])
    // the new token is good for its whole lifetime: the next call does not refresh
    await request('GET', '/servers')
    expect(srv.fetch.calls.filter((c) => c.path === '/auth/refresh')).toHaveLength(1)
  })

  it('a tab without an access token (a new tab, or after a restart) refreshes from the cookie first', async () => {
    localStorage.setItem('fabu.user', JSON.stringify({ id: 'u1', username: 'admin', role: 'admin' }))
    expect(isSignedIn()).toBe(true)
    const srv = fakeAuthServer()
    vi.stubGlobal('fetch', srv.fetch)

    const out = await request('GET', '/projects')

    expect(out.token).toBe('access-2')
    expect(srv.fetch.calls.map((c) => `${c.path} ${c.token}`)).toEqual(['/auth/refresh ', '/projects access-2'])
  })

  it('a 401 without a signed-in user (no refresh cookie to try) ends the session at once', async () => {
    sessionStorage.setItem('fabu.token', 'old-token')
    const fetch = scriptedFetch(async () => unauthorized)
    vi.stubGlobal('fetch', fetch)

    await expect(request('GET', '/projects')).rejects.toMatchObject({ status: 401 })
    expect(fetch.calls).toHaveLength(1)
    expect(loggedOut).toBe(1)
    expect(isSignedIn()).toBe(false)
  })

  it('calls without auth never refresh nor end the session', async () => {
    setSession(pair(1))
    const fetch = scriptedFetch(async () => ({ status: 401, body: { code: 'unauthorized', message: 'wrong username or password' } }))
    vi.stubGlobal('fetch', fetch)

    await expect(request('POST', '/auth/login', { username: 'a', password: 'b' }, { auth: false })).rejects.toMatchObject({
      status: 401,
      message: 'wrong username or password',
    })
    expect(fetch.calls).toHaveLength(1)
    expect(fetch.calls[0].token).toBe('')
    expect(loggedOut).toBe(0)
  })
})

describe('login, logout and lockout', () => {
  it('login keeps the access token in sessionStorage, only the user in localStorage, and never a refresh token', async () => {
    // an API client's answer would carry refresh_token; the page must not keep it anywhere
    const fetch = scriptedFetch(async () => ({ body: { ...pair(7), refresh_token: 'refresh-7' } }))
    vi.stubGlobal('fetch', fetch)
    await api.login('admin', 'secret-password')
    expect(fetch.calls[0]).toMatchObject({ method: 'POST', path: '/auth/login', token: '', body: { username: 'admin', password: 'secret-password' } })
    expect(getToken()).toBe('access-7')
    expect(sessionStorage.getItem('fabu.token')).toBe('access-7')
    expect(localStorage.keys()).toEqual(['fabu.user'])
    const stored = [...sessionStorage.keys().map((k) => sessionStorage.getItem(k)), ...localStorage.keys().map((k) => localStorage.getItem(k))]
    expect(stored.join('\n')).not.toContain('refresh-7')
    expect(getUser()).toEqual({ id: 'u1', username: 'admin', role: 'admin' })
  })

  it('logout sends the bearer (the server ends its session and deletes the cookie), then forgets it', async () => {
    setSession(pair(3))
    const fetch = scriptedFetch(async () => ({ status: 204 }))
    vi.stubGlobal('fetch', fetch)
    await api.logout()
    expect(fetch.calls).toEqual([{ method: 'POST', path: '/auth/logout', token: 'access-3', body: undefined }])
    expect(isSignedIn()).toBe(false)
    expect(localStorage.keys()).toEqual([])
    expect(sessionStorage.keys()).toEqual([])
  })

  it('logout refreshes an expiring access token first, so the server knows which session to end', async () => {
    setSession(pair(1, 10))
    const srv = fakeAuthServer()
    vi.stubGlobal('fetch', srv.fetch)
    await api.logout()
    expect(srv.fetch.calls.map((c) => `${c.path} ${c.token}`)).toEqual(['/auth/refresh ', '/auth/logout access-2'])
    expect(isSignedIn()).toBe(false)
  })

  it('logout forgets the session even when fabu cannot be reached', async () => {
    setSession(pair(3))
    vi.stubGlobal('fetch', scriptedFetch(async () => new TypeError('Failed to fetch')))
    await api.logout()
    expect(isSignedIn()).toBe(false)
  })

  it('a 429 carries Retry-After, shown in whole minutes', async () => {
    const fetch = scriptedFetch(async () => ({
      status: 429,
      headers: { 'Retry-After': '754' },
      body: { code: 'rate_limited', message: 'too many failed sign-ins for this user; try again in 12m34s' },
    }))
    vi.stubGlobal('fetch', fetch)
    const err = await api.login('admin', 'wrong').catch((e) => e)
    expect(err.status).toBe(429)
    expect(err.retryAfter).toBe(754)
    expect(retryMinutes(err.retryAfter)).toBe(13)
    expect(retryMinutes(3)).toBe(1)
    expect(retryMinutes(0)).toBe(1)
    expect(isSignedIn()).toBe(false)
  })
})

describe('the live-log WebSocket', () => {
  const loc = { protocol: 'https:', host: 'fabu.example' }

  it('carries the stored access token while it is fresh', () => {
    setSession(pair(1))
    expect(logSocketURL('r1', 5, loc)).toBe('wss://fabu.example/api/v1/runs/r1/logs/ws?after=5&access_token=access-1')
  })

  it('refreshes an expiring token before a (re)connect', async () => {
    setSession(pair(1, 10))
    const srv = fakeAuthServer()
    vi.stubGlobal('fetch', srv.fetch)
    const sockets = []
    class FakeSocket {
      constructor(url) {
        this.url = url
        sockets.push(this)
      }
      close() {}
    }
    const timers = []
    const stream = new LogStream({
      url: (after) => logSocketURL('r1', after, loc),
      WebSocket: FakeSocket,
      setTimer: (fn) => timers.push(fn),
      clearTimer: () => {},
    }).start()

    await vi.waitFor(() => expect(sockets).toHaveLength(1))
    expect(sockets[0].url).toBe('wss://fabu.example/api/v1/runs/r1/logs/ws?after=0&access_token=access-2')
    expect(srv.fetch.calls.filter((c) => c.path === '/auth/refresh')).toHaveLength(1)

    // The token is about to expire again when the socket drops: the reconnect refreshes first.
    setSession({ ...pair(2, 10) })
    sockets[0].onclose()
    timers.shift()()
    await vi.waitFor(() => expect(sockets).toHaveLength(2))
    expect(sockets[1].url).toContain('access_token=access-3')
    stream.close()
  })
})

describe('sign-in through a provider', () => {
  it('builds the start URL with the path to return to, and nothing else', () => {
    expect(api.oauthStartURL('gitlab', '/runs/1?tab=log')).toBe('/api/v1/auth/oauth/gitlab/start?redirect=%2Fruns%2F1%3Ftab%3Dlog')
    expect(api.oauthStartURL('github')).toBe('/api/v1/auth/oauth/github/start')
  })

  it('trades the one-time code for a session by POST, without a bearer token', async () => {
    const fetch = scriptedFetch(async (call) =>
      call.path === '/auth/oauth/exchange' && call.body.code === 'one-time' ? { body: { ...pair(1), redirect: '/servers' } } : unauthorized,
    )
    vi.stubGlobal('fetch', fetch)
    const out = await api.oauthExchange('one-time')
    expect(out.redirect).toBe('/servers')
    expect(fetch.calls).toEqual([{ method: 'POST', path: '/auth/oauth/exchange', token: '', body: { code: 'one-time' } }])
    expect(getToken()).toBe('access-1')
    expect(getUser().username).toBe('admin')
  })

  it('keeps no session when the code is refused', async () => {
    vi.stubGlobal('fetch', scriptedFetch(async () => ({ status: 401, body: { code: 'unauthorized', message: 'this sign-in has expired' } })))
    await expect(api.oauthExchange('stale')).rejects.toMatchObject({ status: 401, message: 'this sign-in has expired' })
    expect(isSignedIn()).toBe(false)
  })
})

describe('updateProject', () => {
  it('reads the project again and sends it back with only the change applied', async () => {
    setSession(pair(1))
    const stored = { id: 'p 1', name: 'shop', deploy_path: '/srv/new', git_actions: { tag: 'v{{run}}' }, build_script: 'build' }
    const fetch = scriptedFetch(async (call) => (call.method === 'GET' ? { body: stored } : { body: { ...call.body, saved: true } }))
    vi.stubGlobal('fetch', fetch)

    const out = await updateProject('p 1', { build_script: 'build:prod', git_actions: undefined })

    expect(fetch.calls.map((c) => `${c.method} ${c.path}`)).toEqual(['GET /projects/p%201', 'PUT /projects/p%201'])
    // what another page changed (deploy_path) is kept; an undefined key is left out of the body
    expect(fetch.calls[1].body).toEqual({ id: 'p 1', name: 'shop', deploy_path: '/srv/new', build_script: 'build:prod' })
    expect(out.saved).toBe(true)
  })
})
