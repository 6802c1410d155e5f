import { createRouter, createWebHistory } from 'vue-router'
import { isSignedIn } from './api.js'

// History mode: the Go server answers unknown non-API paths with index.html.
export const router = createRouter({
  history: createWebHistory('/'),
  routes: [
    { path: '/login', name: 'login', component: () => import('./views/LoginView.vue'), meta: { public: true } },
    { path: '/', redirect: '/projects' },
    { path: '/projects', name: 'projects', component: () => import('./views/ProjectsView.vue') },
    { path: '/projects/:id', name: 'project', component: () => import('./views/ProjectView.vue'), props: true },
    { path: '/servers', name: 'servers', component: () => import('./views/ServersView.vue') },
    { path: '/servers/:id/terminal', name: 'terminal', component: () => import('./views/TerminalView.vue'), props: true },
    { path: '/runs/:id', name: 'run', component: () => import('./views/RunView.vue'), props: true },
    // A bookmarkable deploy link: it shows what would deploy; only its Confirm button starts a run.
    { path: '/deploy/:project', name: 'deploy-link', component: () => import('./views/DeployLinkView.vue'), props: true },
    { path: '/tickets', name: 'tickets', component: () => import('./views/TicketsView.vue') },
    { path: '/tickets/:id', name: 'ticket', component: () => import('./views/TicketView.vue'), props: true },
    { path: '/deliveries', name: 'deliveries', component: () => import('./views/DeliveriesView.vue') },
    { path: '/audit', name: 'audit', component: () => import('./views/AuditView.vue') },
    { path: '/connections', name: 'connections', component: () => import('./views/ConnectionsView.vue') },
    { path: '/connections/:id/repos', name: 'connection-repos', component: () => import('./views/ConnectionReposView.vue'), props: true },
    { path: '/account', name: 'account', component: () => import('./views/AccountView.vue') },
    { path: '/users', name: 'users', component: () => import('./views/UsersView.vue') },
    { path: '/:rest(.*)*', redirect: '/projects' },
  ],
})

router.beforeEach((to) => {
  if (!to.meta.public && !isSignedIn()) {
    return { name: 'login', query: to.fullPath !== '/' ? { redirect: to.fullPath } : {} }
  }
  if (to.name === 'login' && isSignedIn()) {
    return { path: '/projects' }
  }
})
