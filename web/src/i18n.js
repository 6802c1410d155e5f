import { createI18n } from 'vue-i18n'
import en from './locales/en.js'
import zh from './locales/zh.js'

const LANG_KEY = 'fabu.lang'
export const LANGS = [
  { code: 'zh', label: '中文' },
  { code: 'en', label: 'English' },
]

// initialLocale: the remembered choice, else the browser's language (Chinese for any zh-*).
export function initialLocale(stored = safeGet(LANG_KEY), nav = globalThis.navigator?.language) {
  if (stored === 'zh' || stored === 'en') return stored
  return (nav || '').toLowerCase().startsWith('zh') ? 'zh' : 'en'
}

function safeGet(key) {
  try {
    return localStorage.getItem(key)
  } catch {
    return null
  }
}

export const i18n = createI18n({
  legacy: false,
  locale: initialLocale(),
  fallbackLocale: 'en',
  messages: { en, zh },
})

export function setLocale(code) {
  i18n.global.locale.value = code
  localStorage.setItem(LANG_KEY, code)
  document.documentElement.lang = code === 'zh' ? 'zh-CN' : 'en'
}
