// LogStream follows a run's log over the live WebSocket
// (GET /api/v1/runs/:id/logs/ws?after=N). It only observes: opening, closing or reconnecting
// never changes the run. After a disconnect it reconnects with after=<last line seen>, and it
// drops any line it has already delivered, so no line is shown twice or lost. It stops for
// good once the server sends {"type":"end"} or close() is called.

export const FINAL_STATUSES = ['succeeded', 'failed', 'cancelled']

export class LogStream {
  // opts: url(after) → string, or a promise of one (e.g. after refreshing the access token
  // the URL carries); onLine(line); onStatus({status, progress, eta_seconds,
  // estimated_finish_at}) (the estimate only when the server has one); onEnd({status});
  // onState('connecting'|'live'|'reconnecting'|'ended'|'closed');
  // WebSocket (constructor, default globalThis.WebSocket); minDelay/maxDelay (ms);
  // after (start after this line number, default 0); setTimer/clearTimer for tests.
  constructor(opts) {
    this.opts = opts
    this.WS = opts.WebSocket || globalThis.WebSocket
    this.last = opts.after || 0
    this.minDelay = opts.minDelay ?? 500
    this.maxDelay = opts.maxDelay ?? 8000
    this.delay = this.minDelay
    this.setTimer = opts.setTimer || ((fn, ms) => setTimeout(fn, ms))
    this.clearTimer = opts.clearTimer || ((t) => clearTimeout(t))
    this.ws = null
    this.timer = null
    this.done = false
    this.attempts = 0
  }

  start() {
    this.connect()
    return this
  }

  state(s) {
    if (this.opts.onState) this.opts.onState(s)
  }

  connect() {
    if (this.done) return
    this.attempts++
    this.state(this.attempts === 1 ? 'connecting' : 'reconnecting')
    let url
    try {
      url = this.opts.url(this.last)
    } catch {
      this.scheduleReconnect()
      return
    }
    if (url && typeof url.then === 'function') {
      url.then(
        (u) => this.open(u),
        () => this.scheduleReconnect(),
      )
      return
    }
    this.open(url)
  }

  open(url) {
    if (this.done) return
    let ws
    try {
      ws = new this.WS(url)
    } catch {
      this.scheduleReconnect()
      return
    }
    this.ws = ws
    ws.onopen = () => {
      if (ws !== this.ws) return
      this.delay = this.minDelay
      this.state('live')
    }
    ws.onmessage = (ev) => {
      if (ws !== this.ws) return
      this.handle(ev.data)
    }
    ws.onerror = () => {
      // onclose follows and schedules the reconnect.
    }
    ws.onclose = () => {
      if (ws !== this.ws) return
      this.ws = null
      this.scheduleReconnect()
    }
  }

  handle(raw) {
    let msg
    try {
      msg = JSON.parse(raw)
    } catch {
      return
    }
    switch (msg.type) {
      case 'line':
        this.accept(msg)
        break
      case 'status':
        if (this.opts.onStatus) {
          this.opts.onStatus({ status: msg.status, progress: msg.progress, eta_seconds: msg.eta_seconds, estimated_finish_at: msg.estimated_finish_at })
        }
        break
      case 'end':
        this.finish()
        if (this.opts.onEnd) this.opts.onEnd({ status: msg.status })
        break
    }
  }

  // accept delivers one line unless a line with that number or a later one was delivered
  // already; it also takes lines fetched over REST while the socket is down.
  accept(l) {
    if (typeof l.n !== 'number' || l.n <= this.last) return false
    this.last = l.n
    if (this.opts.onLine) this.opts.onLine({ n: l.n, ts: l.ts, stream: l.stream, text: l.text })
    return true
  }

  finish() {
    this.done = true
    const ws = this.ws
    this.ws = null
    if (ws) {
      try {
        ws.close()
      } catch {
        /* already closed */
      }
    }
    this.state('ended')
  }

  scheduleReconnect() {
    if (this.done) return
    this.state('reconnecting')
    const d = this.delay
    this.delay = Math.min(this.delay * 2, this.maxDelay)
    this.timer = this.setTimer(() => {
      this.timer = null
      this.connect()
    }, d)
  }

  close() {
    if (this.done) return
    this.done = true
    if (this.timer) this.clearTimer(this.timer)
    const ws = this.ws
    this.ws = null
    if (ws) {
      try {
        ws.close()
      } catch {
        /* already closed */
      }
    }
    this.state('closed')
  }
}
