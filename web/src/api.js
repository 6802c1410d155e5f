// The one client for fabu's REST API (docs/architecture.md, "HTTP"). Every call goes through
// request(): it adds the bearer token, decodes JSON and turns {code,message} error bodies into
// ApiError.
//
// A login holds two tokens (services/auth): a short-lived access token (an EdDSA JWT, about
// 15 minutes) sent as the bearer, and a refresh token that buys a new pair once and only once.
// The refresh token never reaches this code: the server keeps it in an HttpOnly, SameSite=Strict
// cookie that only POST /auth/refresh receives, so a script injected into the page cannot
// steal the long-lived half of a login.
//
// The access token lives in sessionStorage, as MSAL.js keeps tokens by default: it survives a
// reload of the tab (no refresh, and so no rotation, per reload), is gone when the tab
// closes, and other tabs get their own from the cookie. localStorage keeps only the signed-in
// user, which tells a new tab that the browser holds a session worth refreshing.
//
// request() refreshes shortly before the access token expires and, once, when a call answers
// 401. Refreshes are single-flight: parallel calls wait for the same refresh, and tabs of the
// same browser take turns through a Web Lock, because presenting a refresh token a second time
// is taken as theft and revokes the whole login. When the refresh itself is refused the
// session is cleared and the handler the app installs sends the user to login.

const TOKEN_KEY = 'fabu.token' // the access token, in sessionStorage (e2e tests read it under this name)
const EXPIRES_KEY = 'fabu.expires' // when the access token expires, ms since the epoch, local clock; sessionStorage
const USER_KEY = 'fabu.user' // the signed-in user, in localStorage; no secret
export const API_BASE = '/api/v1'

// Versions before the refresh cookie kept the tokens in localStorage; they are forgotten.
for (const k of ['fabu.token', 'fabu.refresh', 'fabu.expires']) globalThis.localStorage?.removeItem(k)

// REFRESH_MARGIN_MS: an access token this close to its expiry is refreshed before it is used.
export const REFRESH_MARGIN_MS = 60_000

export class ApiError extends Error {
  constructor(status, code, message, retryAfter = 0) {
    super(message || code || `HTTP ${status}`)
    this.name = 'ApiError'
    this.status = status
    this.code = code
    this.retryAfter = retryAfter // seconds, from Retry-After on 429 and 503
  }
}

export function getToken() {
  return sessionStorage.getItem(TOKEN_KEY) || ''
}

export function getUser() {
  try {
    return JSON.parse(localStorage.getItem(USER_KEY) || 'null')
  } catch {
    return null
  }
}

// hasSession: this browser signed in and may hold the refresh cookie.
function hasSession() {
  return getUser() !== null
}

// setSession stores what a login or a refresh returned: {access_token|token, expires_in,
// user}. A refresh_token in it is ignored: the browser keeps that as a cookie. A bare access
// token (setSession(token, user)) is still accepted.
export function setSession(tokens, user) {
  const t = typeof tokens === 'string' ? { access_token: tokens, user } : tokens
  sessionStorage.setItem(TOKEN_KEY, t.access_token || t.token)
  if (t.expires_in > 0) sessionStorage.setItem(EXPIRES_KEY, String(Date.now() + t.expires_in * 1000))
  else sessionStorage.removeItem(EXPIRES_KEY)
  const u = t.user || user || getUser()
  if (u) localStorage.setItem(USER_KEY, JSON.stringify(u))
}

export function clearSession() {
  for (const k of [TOKEN_KEY, EXPIRES_KEY]) sessionStorage.removeItem(k)
  localStorage.removeItem(USER_KEY)
}

// isSignedIn: the browser holds a session, possibly one whose access token must be refreshed.
export function isSignedIn() {
  return !!(getToken() || hasSession())
}

function expiresAt() {
  const v = Number(sessionStorage.getItem(EXPIRES_KEY))
  return Number.isFinite(v) && v > 0 ? v : 0
}

// needsRefresh: the access token is missing or expires within REFRESH_MARGIN_MS, and the
// refresh cookie could replace it.
function needsRefresh() {
  if (!hasSession()) return false
  const exp = expiresAt()
  return !getToken() || (exp > 0 && exp - Date.now() < REFRESH_MARGIN_MS)
}

let unauthorizedHandler = () => {}

// onUnauthorized installs what happens when the session is over: a call answered 401 and
// refreshing did not help.
export function onUnauthorized(fn) {
  unauthorizedHandler = fn
}

function sessionOver() {
  clearSession()
  unauthorizedHandler()
}

async function send(method, path, body, token) {
  const headers = { Accept: 'application/json' }
  if (body !== undefined) headers['Content-Type'] = 'application/json'
  if (token) headers.Authorization = `Bearer ${token}`
  let res
  try {
    res = await fetch(API_BASE + path, {
      method,
      headers,
      credentials: 'same-origin', // the refresh cookie, on the one route it is scoped to
      body: body === undefined ? undefined : JSON.stringify(body),
    })
  } catch (err) {
    throw new ApiError(0, 'unavailable', `network error: ${err.message}`)
  }
  const text = await res.text()
  let data = null
  if (text) {
    try {
      data = JSON.parse(text)
    } catch {
      data = null
    }
  }
  if (!res.ok) {
    const code = (data && data.code) || `http_${res.status}`
    const message = (data && data.message) || text.trim() || res.statusText
    const retryAfter = Number(res.headers?.get?.('Retry-After')) || 0
    throw new ApiError(res.status, code, message, retryAfter)
  }
  return data
}

let refreshing = null

// refreshSession trades the refresh cookie for a new access token (and the server sets a new
// cookie). Concurrent callers share one refresh. It resolves true when a fresh access token is
// stored, false when the session is over (the refresh was refused; the session is cleared and
// the app told), and throws when fabu could not be reached (the session is kept: the next
// call tries again).
export function refreshSession() {
  if (!refreshing) {
    const stale = getToken()
    refreshing = withRefreshLock(() => doRefresh(stale)).finally(() => {
      refreshing = null
    })
  }
  return refreshing
}

// withRefreshLock runs fn while no other tab of this browser refreshes.
function withRefreshLock(fn) {
  const locks = globalThis.navigator?.locks
  return locks ? locks.request('fabu.auth.refresh', fn) : fn()
}

async function doRefresh(stale) {
  if (!hasSession()) {
    sessionOver()
    return false
  }
  // Someone refreshed while this call waited for the lock.
  if (getToken() !== stale && !needsRefresh()) return true
  let out
  try {
    out = await send('POST', '/auth/refresh', undefined, '')
  } catch (err) {
    if (err.status === 401 || err.status === 400 || err.status === 403) {
      sessionOver()
      return false
    }
    throw err
  }
  setSession(out)
  return true
}

// request calls the API. With auth (the default) it sends the access token, refreshing it
// first when it is about to expire, and on a 401 refreshes once and repeats the call.
export async function request(method, path, body, { auth = true } = {}) {
  if (!auth) return send(method, path, body, '')
  if (needsRefresh()) await refreshSession()
  const token = getToken()
  try {
    return await send(method, path, body, token)
  } catch (err) {
    if (err.status !== 401 || !hasSession()) {
      if (err.status === 401) sessionOver()
      throw err
    }
    // Another call may have refreshed while this one was on the way.
    if (getToken() === token && !(await refreshSession())) throw err
    try {
      return await send(method, path, body, getToken())
    } catch (again) {
      if (again.status === 401) sessionOver()
      throw again
    }
  }
}

// freshToken is a usable access token, refreshed first if it is about to expire.
export async function freshToken() {
  if (needsRefresh()) await refreshSession()
  return getToken()
}

const enc = encodeURIComponent

function query(params) {
  const q = new URLSearchParams()
  for (const [k, v] of Object.entries(params)) {
    if (v !== undefined && v !== null && v !== '') q.set(k, String(v))
  }
  const s = q.toString()
  return s ? `?${s}` : ''
}

export const api = {
  async login(username, password) {
    const out = await request('POST', '/auth/login', { username, password }, { auth: false })
    setSession(out)
    return out
  },
  // logout ends the login on the server (its session: the access token and every refresh
  // token) and forgets it here; the answer deletes the refresh cookie. An expiring access
  // token is refreshed first, so the server can tell which session to end. A server that
  // cannot be reached does not keep the browser signed in.
  async logout() {
    if (needsRefresh()) await refreshSession().catch(() => false)
    const token = getToken()
    const signedIn = isSignedIn()
    clearSession()
    if (!signedIn) return
    try {
      await send('POST', '/auth/logout', undefined, token)
    } catch {
      /* the session is gone here either way */
    }
  },
  changePassword: (old, next) => request('POST', '/auth/password', { old, new: next }),
  // Sign-in through GitLab or GitHub (services/auth/oauth.go). The browser goes to the start
  // URL; the callback sends it back to /login with a one-time code in the fragment, which
  // oauthExchange trades, with the flow's HttpOnly cookie, for the session's tokens.
  providers: () => request('GET', '/auth/providers', undefined, { auth: false }),
  oauthStartURL: (provider, redirect) => `${API_BASE}/auth/oauth/${enc(provider)}/start${query({ redirect })}`,
  async oauthExchange(code) {
    const out = await request('POST', '/auth/oauth/exchange', { code }, { auth: false })
    setSession(out)
    return out
  },
  oauthLink: (provider) => request('POST', `/auth/oauth/${enc(provider)}/link`),
  listIdentities: () => request('GET', '/auth/identities'),
  unlinkIdentity: (provider) => request('DELETE', `/auth/identities/${enc(provider)}`),
  listAPITokens: () => request('GET', '/auth/api-tokens'),
  createAPIToken: (t) => request('POST', '/auth/api-tokens', t),
  revokeAPIToken: (id) => request('DELETE', `/auth/api-tokens/${enc(id)}`),
  me: () => request('GET', '/me'),

  listServers: () => request('GET', '/servers'),
  getServer: (id) => request('GET', `/servers/${enc(id)}`),
  createServer: (s) => request('POST', '/servers', s),
  deleteServer: (id) => request('DELETE', `/servers/${enc(id)}`),

  listProjects: () => request('GET', '/projects'),
  getProject: (id) => request('GET', `/projects/${enc(id)}`),
  createProject: (p) => request('POST', '/projects', p),
  deleteProject: (id) => request('DELETE', `/projects/${enc(id)}`),

  startRun: (projectId, ref) => request('POST', `/projects/${enc(projectId)}/runs`, ref ? { ref } : {}),
  listRuns: ({ projectId, limit } = {}) => request('GET', `/runs${query({ project_id: projectId, limit })}`),
  getRun: (id) => request('GET', `/runs/${enc(id)}`),
  cancelRun: (id) => request('POST', `/runs/${enc(id)}/cancel`),
  rollbackRun: (id) => request('POST', `/runs/${enc(id)}/rollback`),
  runLogs: (id, after, limit = 1000) => request('GET', `/runs/${enc(id)}/logs${query({ after, limit })}`),

  publicKey: () => request('GET', '/ssh/public-key'),
}

// listOf accepts either a bare array or an object wrapping one ({items:[…]}, {servers:[…]}),
// so list pages don't depend on the envelope.
export function listOf(data, key) {
  if (Array.isArray(data)) return data
  if (data && Array.isArray(data[key])) return data[key]
  if (data && Array.isArray(data.items)) return data.items
  return []
}

// logSocketURL is the live-log WebSocket for a run, resuming after line `after`, carrying the
// access token. When that token is about to expire it returns a promise of the URL with a
// refreshed one instead (LogStream accepts both), so every (re)connect presents a valid token.
export function logSocketURL(runId, after, loc = window.location) {
  const proto = loc.protocol === 'https:' ? 'wss:' : 'ws:'
  const url = (token) => `${proto}//${loc.host}${API_BASE}/runs/${enc(runId)}/logs/ws${query({ after, access_token: token })}`
  return needsRefresh() ? freshToken().then(url) : url(getToken())
}

// retryMinutes turns a Retry-After in seconds into whole minutes to show, at least 1.
export function retryMinutes(seconds) {
  return Math.max(1, Math.ceil((Number(seconds) || 0) / 60))
}

// updateProject changes some settings of project id and returns the saved project. It reads
// the project again first, so that what changed elsewhere since a page loaded it (servers,
// deploy path, another card of the page) is kept, not overwritten with the page's copy.
// A key of change set to undefined is left out, which keeps the stored value.
export async function updateProject(id, change) {
  const path = `/projects/${encodeURIComponent(id)}`
  const current = await request('GET', path)
  return request('PUT', path, { ...current, ...change })
}
