// Small display helpers shared by the views.

export const FINAL = ['succeeded', 'failed', 'cancelled']

export function isFinal(status) {
  return FINAL.includes(status)
}

export function statusType(status) {
  switch (status) {
    case 'succeeded':
      return 'success'
    case 'failed':
      return 'danger'
    case 'cancelled':
      return 'info'
    case 'building':
    case 'deploying':
      return 'primary'
    case 'requested':
    case 'queued':
      return 'warning'
    default:
      return 'info'
  }
}

export function formatTime(ts, locale) {
  if (!ts) return '—'
  const d = new Date(ts)
  if (Number.isNaN(d.getTime())) return '—'
  return d.toLocaleString(locale === 'zh' ? 'zh-CN' : 'en-GB', { hour12: false })
}

export function formatClock(ts) {
  if (!ts) return ''
  const d = new Date(ts)
  if (Number.isNaN(d.getTime())) return ''
  return d.toTimeString().slice(0, 8)
}

// duration between two timestamps (end defaults to now), as "1h 2m 3s" / "4m 5s" / "6s".
export function formatDuration(start, end, now = Date.now()) {
  if (!start) return '—'
  const a = new Date(start).getTime()
  const b = end ? new Date(end).getTime() : now
  if (Number.isNaN(a) || Number.isNaN(b)) return '—'
  let s = Math.max(0, Math.round((b - a) / 1000))
  const h = Math.floor(s / 3600)
  s -= h * 3600
  const m = Math.floor(s / 60)
  s -= m * 60
  if (h) return `${h}h ${m}m ${s}s`
  if (m) return `${m}m ${s}s`
  return `${s}s`
}

export function shortSha(sha) {
  return sha ? sha.slice(0, 10) : ''
}

export function clampProgress(p) {
  const n = Number(p) || 0
  return Math.min(100, Math.max(0, Math.round(n)))
}

// copyText copies to the clipboard, falling back to a hidden textarea where the Clipboard API
// is missing (plain-http origins other than localhost).
export async function copyText(text) {
  if (navigator.clipboard && window.isSecureContext) {
    await navigator.clipboard.writeText(text)
    return
  }
  const ta = document.createElement('textarea')
  ta.value = text
  ta.setAttribute('readonly', '')
  ta.style.position = 'fixed'
  ta.style.opacity = '0'
  document.body.appendChild(ta)
  ta.select()
  const ok = document.execCommand('copy')
  document.body.removeChild(ta)
  if (!ok) throw new Error('copy failed')
}

// Durations and estimates of runs (GET /runs/:id: stages with duration_ms and expected_ms,
// eta_seconds and estimated_finish_at learnt from history).

// formatMs shows a duration in milliseconds: "850ms", "4.2s", "1m 5s", "1h 2m 3s"; "—" when
// there is none.
export function formatMs(ms) {
  if (ms === null || ms === undefined || Number.isNaN(Number(ms))) return '—'
  const n = Math.max(0, Number(ms))
  if (n < 1000) return `${Math.round(n)}ms`
  if (n < 10_000) return `${(Math.floor(n / 100) / 10).toFixed(1)}s`
  let sec = Math.round(n / 1000)
  const h = Math.floor(sec / 3600)
  sec -= h * 3600
  const m = Math.floor(sec / 60)
  sec -= m * 60
  if (h) return `${h}h ${m}m ${sec}s`
  if (m) return `${m}m ${sec}s`
  return `${sec}s`
}

// stageElapsedMs is how long a stage ran: its recorded duration once it ended, the time
// since it started while it runs (now in ms since the epoch), null before it started.
export function stageElapsedMs(stage, now = Date.now()) {
  if (!stage || !stage.started_at || stage.status === 'pending') return null
  if (stage.status !== 'running') return stage.duration_ms ?? 0
  const start = new Date(stage.started_at).getTime()
  return Number.isNaN(start) ? null : Math.max(0, now - start)
}

// etaSeconds is the time left of a run under way, counted down from its estimated finish
// (so it ticks between answers from the server), or null when there is no estimate. A run
// late on its estimate has 0 left, never a negative time.
export function etaSeconds(run, now = Date.now()) {
  if (!run || isFinal(run.status)) return null
  if (run.estimated_finish_at) {
    const end = new Date(run.estimated_finish_at).getTime()
    if (!Number.isNaN(end)) return Math.max(0, Math.ceil((end - now) / 1000))
  }
  return typeof run.eta_seconds === 'number' ? Math.max(0, run.eta_seconds) : null
}

// formatEta shows the time left: "about 1m 20s", or "any moment" once it is due.
export function formatEta(seconds, t) {
  if (seconds === null || seconds === undefined) return ''
  if (seconds <= 0) return t('run.etaDue')
  return t('run.eta', { left: formatMs(seconds * 1000) })
}

// steadyProgress keeps a run's percentage from going backwards while the run is under way
// (an estimate can drop when the run meets a stage its history never saw): it shows the
// higher of what was shown and what came, and exactly what came once the run has ended.
export function steadyProgress(shown, next, status) {
  const n = clampProgress(next)
  if (isFinal(status)) return n
  return Math.max(clampProgress(shown), n)
}
