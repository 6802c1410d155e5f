// The web terminal's wire format (GET /api/v1/servers/:id/terminal, a WebSocket; see
// services/gateway/terminal.go): keys go as binary frames, a window size as
// {"type":"resize",rows,cols}; the screen comes as binary frames, the end as
// {"type":"exit",status} or {"type":"error",message}. A socket is one shell: nothing here
// reconnects, since a new socket is a new login on the server.

import { API_BASE } from './api.js'

// terminalURL is the terminal socket of server id for a window of rows × cols, carrying the
// access token (browsers cannot set headers on a WebSocket).
export function terminalURL(id, rows, cols, token, loc = window.location) {
  const proto = loc.protocol === 'https:' ? 'wss:' : 'ws:'
  const q = new URLSearchParams({ rows: String(rows), cols: String(cols), access_token: token })
  return `${proto}//${loc.host}${API_BASE}/servers/${encodeURIComponent(id)}/terminal?${q}`
}

// preflight asks whether a terminal may open, without opening one: the gateway answers a
// request that is no upgrade with 400 once it has checked the caller's permission and its
// own key, so a refusal (403) or a missing key (503) can be shown with its message — a
// refused WebSocket handshake tells the page nothing.
export async function preflight(id, token, fetchImpl = fetch) {
  const res = await fetchImpl(`${API_BASE}/servers/${encodeURIComponent(id)}/terminal`, {
    headers: { Authorization: `Bearer ${token}` },
  })
  if (res.status === 400) return { ok: true }
  let message = `HTTP ${res.status}`
  try {
    const body = await res.json()
    if (body && body.message) message = body.message
  } catch {
    /* not JSON: keep the status */
  }
  return { ok: false, status: res.status, message }
}

// parseControl reads a text frame from the server; null when it is not one we know.
export function parseControl(text) {
  let f
  try {
    f = JSON.parse(text)
  } catch {
    return null
  }
  if (!f || typeof f !== 'object') return null
  if (f.type === 'exit') return { type: 'exit', status: Number.isInteger(f.status) ? f.status : null }
  if (f.type === 'error') return { type: 'error', message: String(f.message || '') }
  return null
}

// resizeFrame is the text frame that tells the server the window's size.
export function resizeFrame(rows, cols) {
  return JSON.stringify({ type: 'resize', rows, cols })
}
