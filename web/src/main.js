import { createApp } from 'vue'
import 'element-plus/theme-chalk/base.css'
// Services called from scripts (not templates) need their styles imported by hand.
import 'element-plus/es/components/message/style/css'
import 'element-plus/es/components/message-box/style/css'
import App from './App.vue'
import { router } from './router.js'
import { i18n } from './i18n.js'
import { onUnauthorized } from './api.js'
import './style.css'

onUnauthorized(() => {
  const current = router.currentRoute.value
  if (current.name !== 'login') {
    router.replace({ name: 'login', query: { redirect: current.fullPath } })
  }
})

createApp(App).use(router).use(i18n).mount('#app')
