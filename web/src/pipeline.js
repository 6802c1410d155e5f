// The project's pipeline as the build settings editor (components/ProjectBuild.vue) edits it.
// A pipeline is stored as JSON in the form of .fabu.yml: {recipe, profile, env, stages,
// artifact, caches}; the gateway checks its shape (services/gateway/projects.go) and the
// builder applies every rule when a run starts. Fields the editor does not show (recipe,
// profile, env of the pipeline) are kept as they are.

// RECIPE_STAGES are the stages each project type builds with when no pipeline says
// otherwise (services/builder/pipeline/recipe.go); a stage of one of these names without a
// command takes the recipe's command. Java's stage is "package" with Maven, "build" with
// Gradle.
export const RECIPE_STAGES = {
  static: [],
  'java-jar': ['package'],
  'java-war': ['package'],
  frontend: ['install', 'build'],
  nodejs: ['install'],
  docker: ['build'], // the builder pushes after the stages
}

const STAGE_NAME = /^[A-Za-z0-9._-]{1,64}$/
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,127}$/
const DURATION = /^(\d+(\.\d+)?(ns|us|µs|ms|s|m|h))+$/
// SHELL_C: the builder refuses a shell handed a string (sh -c …; execx.IsShellString).
const SHELL_C = /^(\S*\/)?(sh|bash|dash|zsh|ash|ksh|mksh|fish)\s+-[A-Za-z]*c/

// commandText shows a stage's run (a string, or a list taken as argv) as one line that
// splits back into the same argv: arguments with spaces or quotes are single-quoted.
export function commandText(run) {
  if (run === undefined || run === null) return ''
  if (typeof run === 'string') return run
  return run.map((a) => (a === '' || /[\s"'\\$`]/.test(a) ? `'${a.replace(/'/g, `'\\''`)}'` : a)).join(' ')
}

// envText and parseEnv convert a map of variables to "NAME=value" lines and back.
export function envText(env) {
  return Object.entries(env || {})
    .map(([k, v]) => `${k}=${v}`)
    .join('\n')
}

// reservedEnv reports whether a build may not declare the variable name: fabu sets HOME,
// PATH and FABU_*, and LD_* changes how every program is loaded (the server's rule,
// libs/cmdline.ReservedEnv).
export function reservedEnv(name) {
  return name === 'HOME' || name === 'PATH' || name.startsWith('FABU_') || name.startsWith('LD_')
}

// parseEnv returns {env} or {error} naming the bad line.
export function parseEnv(text, t) {
  const env = {}
  const lines = (text || '').split('\n')
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i].trim()
    if (!line) continue
    const eq = line.indexOf('=')
    const name = eq < 0 ? line : line.slice(0, eq)
    if (eq < 0 || !ENV_NAME.test(name)) return { error: t('build.envLine', { n: i + 1 }) }
    if (reservedEnv(name)) return { error: t('build.envReserved', { name }) }
    env[name] = line.slice(eq + 1)
  }
  return { env }
}

// toRows turns a stored pipeline's stages into editor rows.
export function toRows(stages) {
  return (stages || []).map((s) => ({
    key: nextKey(),
    name: s.name || '',
    run: s.run,
    command: commandText(s.run),
    dir: s.dir || '',
    env: envText(s.env),
    timeout: s.timeout || '',
    secrets: (s.secrets || []).join(' '), // names of build secrets the stage receives
    image: s.image || '', // the container image the stage runs in; '' runs it in the sandbox
  }))
}

let keys = 0
export function nextKey() {
  keys += 1
  return `s${keys}`
}

export function newRow(name = '') {
  return { key: nextKey(), name, run: undefined, command: '', dir: '', env: '', timeout: '', secrets: '', image: '' }
}

// checkRows validates the rows as the gateway and the builder would, so most mistakes show
// next to their field before saving. It returns {errors: {"<key>.<field>": message}} and,
// without errors, the stages to store.
// IMAGE is a stage's container image as libs/container ValidImageRef accepts it.
const IMAGE = /^[a-z0-9]([a-z0-9._-]*[a-z0-9])?(:[0-9]{1,5})?(\/[a-z0-9]([a-z0-9._-]*[a-z0-9])?)*(:[A-Za-z0-9_][A-Za-z0-9._-]{0,127})?(@sha256:[0-9a-f]{64})?$/

export function checkRows(rows, t) {
  const errors = {}
  const stages = []
  const seen = new Set()
  for (const r of rows) {
    const name = r.name.trim()
    if (!STAGE_NAME.test(name)) errors[`${r.key}.name`] = t('build.stageName')
    else if (seen.has(name)) errors[`${r.key}.name`] = t('build.stageDuplicate', { name })
    seen.add(name)
    if (r.timeout.trim() && !DURATION.test(r.timeout.trim())) errors[`${r.key}.timeout`] = t('build.timeoutFormat')
    const dir = r.dir.trim()
    if (dir && (dir.startsWith('/') || dir.split('/').includes('..'))) errors[`${r.key}.dir`] = t('build.dirInside')
    const env = parseEnv(r.env, t)
    if (env.error) errors[`${r.key}.env`] = env.error
    if (SHELL_C.test(r.command.trim())) errors[`${r.key}.command`] = t('build.noShellC')
    const st = { name }
    // An unchanged command keeps the form it was stored in (a list stays a list).
    const command = r.command.trim()
    if (command) st.run = r.run !== undefined && command === commandText(r.run).trim() ? r.run : command
    if (dir) st.dir = dir
    if (env.env && Object.keys(env.env).length) st.env = env.env
    if (r.timeout.trim()) st.timeout = r.timeout.trim()
    const secrets = parseSecretNames(r.secrets)
    if (secrets.error) errors[`${r.key}.secrets`] = t(secrets.error, { name: secrets.name })
    else if (secrets.names.length) st.secrets = secrets.names
    const image = (r.image || '').trim()
    if (image && !IMAGE.test(image)) errors[`${r.key}.image`] = t('build.imageRef')
    else if (image) st.image = image
    stages.push(st)
  }
  return { errors, stages }
}

// parseSecretNames reads a stage's declared secrets, separated by spaces or commas: names
// as the gateway accepts them (not HOME, PATH, FABU_* or LD_*), each once. It returns {names} or
// {error, name} with the key of the message.
export function parseSecretNames(text) {
  const names = []
  for (const name of (text || '').split(/[\s,]+/).filter(Boolean)) {
    if (!ENV_NAME.test(name)) return { error: 'build.secretName', name }
    if (reservedEnv(name)) return { error: 'build.secretReserved', name }
    if (names.includes(name)) return { error: 'build.secretTwice', name }
    names.push(name)
  }
  return { names }
}

// moveRow moves the row at from to to, returning a new list.
export function moveRow(rows, from, to) {
  if (from === to || from < 0 || to < 0 || from >= rows.length || to >= rows.length) return rows
  const out = rows.slice()
  const [r] = out.splice(from, 1)
  out.splice(to, 0, r)
  return out
}

// errorField finds which field a gateway error message is about. The gateway's messages
// name it: "project P: build_profile …", "project P: pipeline stages[2].run: …",
// "project P: pipeline artifact: …". It returns {field, stage, sub} (stage is the index in
// the list that was sent, sub the stage's field) or {field: ''} when it names none.
export function errorField(message) {
  const m = /pipeline stages\[(\d+)\](?:\.(\w+))?/.exec(message || '')
  if (m) return { field: 'stage', stage: Number(m[1]), sub: m[2] || 'name' }
  for (const f of ['build_profile', 'build_script', 'build_output_dir', 'build_image', 'build_env']) {
    if ((message || '').includes(`: ${f}`)) return { field: f }
  }
  if (/pipeline artifact/.test(message || '')) return { field: 'artifact' }
  if (/pipeline caches/.test(message || '')) return { field: 'caches' }
  if (/pipeline/.test(message || '')) return { field: 'pipeline' }
  return { field: '' }
}
