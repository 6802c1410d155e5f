import { describe, expect, it } from 'vitest'
import { etaSeconds, formatEta, formatMs, stageElapsedMs, steadyProgress } from './format.js'

const t = (key, args) => (key === 'run.eta' ? `about ${args.left}` : key === 'run.etaDue' ? 'any moment' : key)

describe('formatMs', () => {
  it.each([
    [null, '—'],
    [undefined, '—'],
    [0, '0ms'],
    [850, '850ms'],
    [4260, '4.2s'],
    [9999, '9.9s'],
    [10_000, '10s'],
    [65_400, '1m 5s'],
    [3_723_000, '1h 2m 3s'],
    [-5, '0ms'],
  ])('%s ms is %s', (ms, want) => {
    expect(formatMs(ms)).toBe(want)
  })
})

describe('stageElapsedMs', () => {
  const now = Date.parse('2026-03-01T10:01:00Z')
  it('is the recorded duration of a stage that ended', () => {
    expect(stageElapsedMs({ status: 'succeeded', started_at: '2026-03-01T10:00:00Z', duration_ms: 4200 }, now)).toBe(4200)
    expect(stageElapsedMs({ status: 'failed', started_at: '2026-03-01T10:00:00Z', duration_ms: 10 }, now)).toBe(10)
  })
  it('ticks while the stage runs', () => {
    expect(stageElapsedMs({ status: 'running', started_at: '2026-03-01T10:00:30Z' }, now)).toBe(30_000)
    expect(stageElapsedMs({ status: 'running', started_at: '2026-03-01T10:00:30Z' }, now + 1000)).toBe(31_000)
  })
  it('is null before the stage started', () => {
    expect(stageElapsedMs({ status: 'pending', started_at: null, expected_ms: 5000 }, now)).toBeNull()
  })
})

describe('etaSeconds', () => {
  const now = Date.parse('2026-03-01T10:00:00Z')
  it('counts down to the estimated finish', () => {
    const run = { status: 'building', eta_seconds: 90, estimated_finish_at: '2026-03-01T10:01:30Z' }
    expect(etaSeconds(run, now)).toBe(90)
    expect(etaSeconds(run, now + 10_500)).toBe(80)
  })
  it('never goes below zero for a run late on its estimate', () => {
    expect(etaSeconds({ status: 'deploying', estimated_finish_at: '2026-03-01T09:59:00Z' }, now)).toBe(0)
  })
  it('falls back to eta_seconds', () => {
    expect(etaSeconds({ status: 'building', eta_seconds: 12 }, now)).toBe(12)
  })
  it('is null without history or once the run ended', () => {
    expect(etaSeconds({ status: 'building' }, now)).toBeNull()
    expect(etaSeconds({ status: 'succeeded', eta_seconds: 5, estimated_finish_at: '2026-03-01T10:01:30Z' }, now)).toBeNull()
    expect(etaSeconds(null, now)).toBeNull()
  })
})

describe('formatEta', () => {
  it('says the time left, or that it is due', () => {
    expect(formatEta(80, t)).toBe('about 1m 20s')
    expect(formatEta(0, t)).toBe('any moment')
    expect(formatEta(null, t)).toBe('')
  })
})

describe('steadyProgress', () => {
  it('never goes backwards while the run is under way', () => {
    expect(steadyProgress(40, 35, 'building')).toBe(40)
    expect(steadyProgress(40, 45, 'deploying')).toBe(45)
  })
  it('shows the final value once the run ended', () => {
    expect(steadyProgress(80, 40, 'failed')).toBe(40)
    expect(steadyProgress(80, 100, 'succeeded')).toBe(100)
  })
  it('stays within 0-100', () => {
    expect(steadyProgress(undefined, 150, 'building')).toBe(100)
    expect(steadyProgress(-3, undefined, 'building')).toBe(0)
  })
})
