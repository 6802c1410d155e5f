import { describe, expect, it } from 'vitest'
import { checkRows, commandText, errorField, moveRow, newRow, parseEnv, parseSecretNames, toRows } from './pipeline.js'

const t = (key, args) => (args ? `${key} ${JSON.stringify(args)}` : key)

describe('commandText', () => {
  it('shows a string as it is and quotes list arguments that need it', () => {
    expect(commandText('npm run build')).toBe('npm run build')
    expect(commandText(['sh', '-c', "echo 'hi there'"])).toBe(`sh -c 'echo '\\''hi there'\\'''`)
    expect(commandText(['make', ''])).toBe("make ''")
    expect(commandText(undefined)).toBe('')
  })
})

describe('parseEnv', () => {
  it('reads NAME=value lines, keeping = in values and skipping blank lines', () => {
    expect(parseEnv('A=1\n\n B_2=x=y \n', t)).toEqual({ env: { A: '1', B_2: 'x=y' } })
  })
  it('names the bad line', () => {
    expect(parseEnv('A=1\n2X=3', t).error).toBe('build.envLine {"n":2}')
    expect(parseEnv('novalue', t).error).toBe('build.envLine {"n":1}')
  })
  it('refuses what fabu sets itself', () => {
    expect(parseEnv('FABU_COMMIT=x', t).error).toBe('build.envReserved {"name":"FABU_COMMIT"}')
    expect(parseEnv('HOME=/tmp', t).error).toBe('build.envReserved {"name":"HOME"}')
    expect(parseEnv('PATH=/tmp', t).error).toBe('build.envReserved {"name":"PATH"}')
    expect(parseEnv('LD_PRELOAD=/tmp/x.so', t).error).toBe('build.envReserved {"name":"LD_PRELOAD"}')
    expect(parseEnv('PATHS=a\nXLD_A=b', t).env).toEqual({ PATHS: 'a', XLD_A: 'b' })
  })
})

describe('checkRows', () => {
  it('turns rows into stages, keeping a list command that was not edited', () => {
    const rows = toRows([{ name: 'install' }, { name: 'test', run: ['npm', 'test'], timeout: '10m', env: { CI: '1' }, dir: 'web' }])
    const { errors, stages } = checkRows(rows, t)
    expect(errors).toEqual({})
    expect(stages).toEqual([{ name: 'install' }, { name: 'test', run: ['npm', 'test'], dir: 'web', env: { CI: '1' }, timeout: '10m' }])
  })
  it('stores an edited command as typed', () => {
    const rows = toRows([{ name: 'test', run: ['npm', 'test'] }])
    rows[0].command = 'npm test -- --ci'
    expect(checkRows(rows, t).stages).toEqual([{ name: 'test', run: 'npm test -- --ci' }])
  })
  it('marks bad names, duplicates, timeouts, dirs and variables by row', () => {
    const rows = [newRow('ok'), newRow('bad name'), newRow('ok'), newRow('t'), newRow('d'), newRow('e')]
    rows[3].timeout = 'soon'
    rows[4].dir = '../up'
    rows[5].env = 'not a line'
    const { errors } = checkRows(rows, t)
    expect(Object.keys(errors).sort()).toEqual(
      [`${rows[1].key}.name`, `${rows[2].key}.name`, `${rows[3].key}.timeout`, `${rows[4].key}.dir`, `${rows[5].key}.env`].sort(),
    )
    expect(errors[`${rows[2].key}.name`]).toBe('build.stageDuplicate {"name":"ok"}')
  })
  it('refuses a shell handed a string, as the builder does', () => {
    for (const c of ["sh -c 'make all'", "/bin/bash -ec 'x'", 'dash -c x']) {
      const r = newRow('x')
      r.command = c
      expect(checkRows([r], t).errors).toEqual({ [`${r.key}.command`]: 'build.noShellC' })
    }
    const ok = newRow('x')
    ok.command = 'sh build.sh'
    expect(checkRows([ok], t).errors).toEqual({})
  })
  it('accepts Go durations', () => {
    for (const d of ['90s', '10m', '1h30m', '1.5h', '500ms']) {
      const r = newRow('x')
      r.timeout = d
      expect(checkRows([r], t).errors).toEqual({})
    }
  })
})

describe('moveRow', () => {
  it('moves a row and leaves the list alone for moves out of range', () => {
    expect(moveRow(['a', 'b', 'c'], 0, 2)).toEqual(['b', 'c', 'a'])
    expect(moveRow(['a', 'b', 'c'], 2, 0)).toEqual(['c', 'a', 'b'])
    const list = ['a', 'b']
    expect(moveRow(list, 1, 2)).toBe(list)
    expect(moveRow(list, -1, 0)).toBe(list)
  })
})

describe('errorField', () => {
  it.each([
    ['project shop: pipeline stages[2].run: want a string or a list of strings', { field: 'stage', stage: 2, sub: 'run' }],
    ['project shop: pipeline stages[0]: name "a b": use 1-64 of A-Z a-z 0-9 . _ -', { field: 'stage', stage: 0, sub: 'name' }],
    ['project shop: pipeline stages[1].env: variable name "1X": use letters', { field: 'stage', stage: 1, sub: 'env' }],
    ['project shop: build_profile "-x": use letters, digits and . _ , -', { field: 'build_profile' }],
    ['project shop: build_env: variable HOME is set by fabu and cannot be declared', { field: 'build_env' }],
    ['project shop: pipeline artifact: give exactly one of dir and file', { field: 'artifact' }],
    ['project shop: pipeline: unknown recipe "x"', { field: 'pipeline' }],
    ['project shop: keep_releases 0 is not 1-100', { field: '' }],
  ])('%s', (msg, want) => {
    expect(errorField(msg)).toEqual(want)
  })
})

describe('stage images', () => {
  it('keeps the image a stored stage runs in through the editor', () => {
    const rows = toRows([{ name: 'test', run: ['npm', 'test'], image: 'node:20' }, { name: 'build', run: 'npm run build' }])
    expect(rows[0].image).toBe('node:20')
    const { errors, stages } = checkRows(rows, t)
    expect(errors).toEqual({})
    expect(stages).toEqual([{ name: 'test', run: ['npm', 'test'], image: 'node:20' }, { name: 'build', run: 'npm run build' }])
  })
  it.each(['--privileged', 'node:20 -v /:/h', 'Node:20'])('refuses image %j', (image) => {
    const row = { ...newRow('a'), command: 'make', image }
    expect(checkRows([row], t).errors).toEqual({ [`${row.key}.image`]: 'build.imageRef' })
  })
})

describe('stage secrets', () => {
  it('keeps the secrets a stored stage declares through the editor', () => {
    const rows = toRows([{ name: 'install', run: 'npm ci', secrets: ['NPM_TOKEN', 'DEPLOY_KEY'] }, { name: 'build', run: 'npm run build' }])
    expect(rows[0].secrets).toBe('NPM_TOKEN DEPLOY_KEY')
    const { errors, stages } = checkRows(rows, t)
    expect(errors).toEqual({})
    expect(stages).toEqual([{ name: 'install', run: 'npm ci', secrets: ['NPM_TOKEN', 'DEPLOY_KEY'] }, { name: 'build', run: 'npm run build' }])
  })
  it.each([
    ['A, B  C', { names: ['A', 'B', 'C'] }],
    ['', { names: [] }],
    ['1X', { error: 'build.secretName', name: '1X' }],
    ['FABU_RUN', { error: 'build.secretReserved', name: 'FABU_RUN' }],
    ['PATH', { error: 'build.secretReserved', name: 'PATH' }],
    ['A A', { error: 'build.secretTwice', name: 'A' }],
  ])('parseSecretNames(%j)', (text, want) => {
    expect(parseSecretNames(text)).toEqual(want)
  })
  it('marks a bad name next to the stage', () => {
    const row = { ...newRow('a'), command: 'make', secrets: 'bad-name' }
    expect(checkRows([row], t).errors).toEqual({ [`${row.key}.secrets`]: 'build.secretName {"name":"bad-name"}' })
  })
})
