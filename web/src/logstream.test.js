import { describe, it, expect, beforeEach } from 'vitest'
import { LogStream } from './logstream.js'

// FakeSocket records every socket the stream opens, so the test can drive the server side.
class FakeSocket {
  static all = []
  constructor(url) {
    this.url = url
    this.closed = false
    FakeSocket.all.push(this)
  }
  open() {
    this.onopen && this.onopen()
  }
  send(obj) {
    this.onmessage && this.onmessage({ data: JSON.stringify(obj) })
  }
  drop() {
    this.onclose && this.onclose()
  }
  close() {
    this.closed = true
  }
}

function line(n, stream = 'stdout') {
  return { type: 'line', n, ts: '2025-01-01T00:00:00Z', stream, text: `line ${n}` }
}

function harness(extra = {}) {
  const got = { lines: [], statuses: [], ends: [], states: [], delays: [] }
  const timers = []
  const s = new LogStream({
    url: (after) => `ws://x/api/v1/runs/r1/logs/ws?after=${after}`,
    WebSocket: FakeSocket,
    onLine: (l) => got.lines.push(l),
    onStatus: (st) => got.statuses.push(st),
    onEnd: (e) => got.ends.push(e),
    onState: (st) => got.states.push(st),
    setTimer: (fn, ms) => {
      timers.push({ fn, ms })
      got.delays.push(ms)
      return timers.length
    },
    clearTimer: () => {},
    ...extra,
  })
  const fire = () => timers.shift().fn()
  return { s, got, timers, fire }
}

describe('LogStream', () => {
  beforeEach(() => {
    FakeSocket.all = []
  })

  it('reconnects after the last line seen and drops repeated lines', () => {
    const { s, got, timers, fire } = harness()
    s.start()
    expect(FakeSocket.all).toHaveLength(1)
    expect(FakeSocket.all[0].url).toMatch(/after=0$/)
    const first = FakeSocket.all[0]
    first.open()
    first.send(line(1))
    first.send(line(2, 'stderr'))
    first.send({ type: 'status', status: 'building', progress: 30 })
    first.drop()

    expect(timers).toHaveLength(1)
    fire()
    expect(FakeSocket.all).toHaveLength(2)
    const second = FakeSocket.all[1]
    expect(second.url).toMatch(/after=2$/)
    second.open()
    // A server that replays from an older point must not produce duplicates.
    second.send(line(2, 'stderr'))
    second.send(line(3))
    second.send({ type: 'end', status: 'succeeded' })

    expect(got.lines.map((l) => l.n)).toEqual([1, 2, 3])
    expect(got.lines[1].stream).toBe('stderr')
    expect(got.statuses).toEqual([{ status: 'building', progress: 30 }])
    expect(got.ends).toEqual([{ status: 'succeeded' }])
    expect(second.closed).toBe(true)
    expect(got.states).toEqual(['connecting', 'live', 'reconnecting', 'reconnecting', 'live', 'ended'])
  })

  it('does not reconnect after end or close', () => {
    const { s, timers } = harness()
    s.start()
    FakeSocket.all[0].send({ type: 'end', status: 'failed' })
    FakeSocket.all[0].drop()
    expect(timers).toHaveLength(0)

    const h2 = harness()
    h2.s.start()
    h2.s.close()
    FakeSocket.all.at(-1).drop()
    expect(h2.timers).toHaveLength(0)
    expect(FakeSocket.all.at(-1).closed).toBe(true)
  })

  it('backs off between failed attempts and resets once connected', () => {
    const { s, got, fire } = harness({ minDelay: 100, maxDelay: 350 })
    s.start()
    FakeSocket.all.at(-1).drop()
    fire()
    FakeSocket.all.at(-1).drop()
    fire()
    FakeSocket.all.at(-1).drop()
    fire()
    FakeSocket.all.at(-1).open()
    FakeSocket.all.at(-1).drop()
    // Delays so far: 100, 200, 350 (capped); after a successful open it starts over at 100.
    expect(got.delays).toEqual([100, 200, 350, 100])
    expect(FakeSocket.all).toHaveLength(4)
  })

  it('starts after a given line number', () => {
    const { s, got } = harness({ after: 5 })
    s.start()
    expect(FakeSocket.all[0].url).toMatch(/after=5$/)
    FakeSocket.all[0].send(line(5))
    FakeSocket.all[0].send(line(6))
    expect(got.lines.map((l) => l.n)).toEqual([6])
  })
})
