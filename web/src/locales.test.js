import { describe, expect, it } from 'vitest'
import { baseCompile } from '@intlify/message-compiler'
import en from './locales/en.js'
import zh from './locales/zh.js'

// leaves lists every message of a locale as [key, text].
function leaves(obj, prefix = '') {
  return Object.entries(obj).flatMap(([k, v]) => (typeof v === 'object' ? leaves(v, `${prefix}${k}.`) : [[`${prefix}${k}`, v]]))
}

// vue-i18n reads "@", "{", "}" and "|" as syntax: a message that does not compile renders
// nothing, and takes the rest of its component with it (a hint with "user@host" once hid
// the whole Git URL field).
describe.each([['en', en], ['zh', zh]])('%s messages', (_, messages) => {
  it('every message compiles', () => {
    const broken = []
    for (const [key, text] of leaves(messages)) {
      baseCompile(text, { onError: (e) => broken.push(`${key}: ${e.message}`) })
    }
    expect(broken).toEqual([])
  })
})
